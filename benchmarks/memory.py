"""Seconds and peak memory of our graph's stages alone, without the case study's baseline.

`python benchmarks/memory.py [--ratings N] [--repeat K]` measures what `benchmarks/bench.py` measures
for our graph (the same children, data set, targets removed and peaks of the whole process tree) but
skips the baseline, whose cross join takes many GB and minutes at 20M ratings, and the no-op rerun.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import bench
from bench import STAGES, Sample, median_sample, run_child, run_repeat, say

from workflow import databases
from workflow.core.outputs import output_dir
from workflow.errors import SourceDataError


def run(argv: list[str] | None = None) -> None:
    """Generate the data set, measure our graph's stages and print one line per stage."""
    args = bench.parse_args(argv)
    databases.source_url()  # start the embedded server before checking which databases are in use
    bench.check_databases(args.allow_configured_databases)
    output_dir().mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=output_dir()))
    samples: dict[str, list[Sample]] = {}
    try:
        data, _ = run_child("generate", args, workdir)
        say(f"source: {data['ratings']:,} ratings by {data['users']:,} users of {data['courses']:,} courses")
        for repeat in range(args.repeat):
            say(f"repeat {repeat + 1} of {args.repeat}")
            run_repeat(args, workdir, samples, baseline=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{data['ratings']:,} ratings; date {args.date}; workers {args.workers}; medians of {args.repeat} run(s)")
    print(f"{'stage':<10} {'seconds':>8} {'peak MB':>8}")
    for stage in (*STAGES, "total"):
        sample = median_sample(samples[f"ours-{stage}"])
        print(f"{stage:<10} {sample.seconds:>8.2f} {sample.peak_mb:>8.0f}")


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; print a one-line error on failure."""
    try:
        run(argv)
    except (ConnectionError, SourceDataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
