"""Benchmark: what a run costs outside its steps (process start, imports, scheduling, completeness checks).

`python benchmarks/fixed_cost.py [--date D] [--repeat 5] [--workers 1]` runs, on the data already in the source
(`make run` puts it there), `luigi --module workflow RecommendationsTask --date D --local-scheduler` in a child
process, timed from spawn to exit:

- a full run, from empty targets (the date's folder and its courses load marker removed first): its wall seconds,
  the seconds its steps took (the union of their run records' start-to-end intervals, so steps that overlap on
  several workers count once), and the rest, the time outside the steps;
- a no-op rerun right after it (every target complete), split into the interpreter's start and exit (`python -c
  pass`), the imports `luigi --module workflow` makes (`import luigi.cmdline, workflow`, timed inside a child) and
  the rest (luigi's parsing and scheduling, the completeness check and its connections, the exit's clean-up).

It prints the median of each figure over the repeats; the machine's other work moves single runs, so read medians.
Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from workflow import databases
from workflow.core import dated_load, outputs
from workflow.pipelines.courses import PIPELINE as COURSES_PIPELINE

REPO = Path(__file__).resolve().parent.parent


def luigi_command(date: dt.date, workers: int) -> list[str]:
    """Return the command line of the measured run."""
    luigi_bin = Path(sys.executable).parent / "luigi"
    command = [str(luigi_bin)] if luigi_bin.exists() else [sys.executable, "-m", "luigi"]
    return [*command, "--module", "workflow", "RecommendationsTask", "--date", f"{date}", "--local-scheduler",
            "--workers", str(workers)]  # fmt: skip


def timed(command: list[str]) -> float:
    """Run a command in the repository to its end; return its wall seconds (fail on a non-zero exit)."""
    return run(command)[0]


def run(command: list[str]) -> tuple[float, str]:
    """Run a command in the repository to its end; return its wall seconds and what it printed (fail on a non-zero
    exit)."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")
    return seconds, result.stdout


def import_seconds() -> float:
    """Return the seconds `luigi --module workflow`'s imports take, timed inside a child (its start and exit apart)."""
    code = "import time; t = time.perf_counter(); import luigi.cmdline, workflow; print(time.perf_counter() - t)"
    return float(run([sys.executable, "-c", code])[1])


def forget(date: dt.date) -> None:
    """Remove the date's targets and run records and its courses load marker, so the next run computes it all."""
    with outputs.exclusive(date) as folder:
        shutil.rmtree(folder, ignore_errors=True)
    dated_load.forget_load(databases.warehouse_url(), COURSES_PIPELINE.marker, date)


def steps_seconds(date: dt.date) -> float:
    """Return the seconds the date's steps ran (the union of their run records' intervals)."""
    intervals = sorted(
        (dt.datetime.fromisoformat(record["started_at"]), dt.datetime.fromisoformat(record["finished_at"]))
        for record in (json.loads(path.read_text()) for path in outputs.run_records_dirs(date)[0].glob("*.json"))
    )
    total, covered = 0.0, None  # covered: the end of the time counted so far
    for start, finish in intervals:
        begin = max(start, covered) if covered else start
        if finish > begin:
            total += (finish - begin).total_seconds()
            covered = finish
    return total


def median(values: list[float]) -> str:
    """Return the median of the values in seconds, with their range."""
    return f"{statistics.median(values):.3f} s ({min(values):.3f} to {max(values):.3f})"


def main(argv: list[str] | None = None) -> int:
    """Measure the runs and print the medians."""
    parser = argparse.ArgumentParser(prog="python benchmarks/fixed_cost.py", description=__doc__.splitlines()[0])
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)  # the newest day that is over
    parser.add_argument("--date", type=dt.date.fromisoformat, default=yesterday, help="the runs' date")
    parser.add_argument("--repeat", type=int, default=5, help="runs to take medians of")
    parser.add_argument("--workers", type=int, default=1, help="luigi workers of the runs")
    args = parser.parse_args(argv)

    figures: dict[str, list[float]] = {}
    for repeat in range(args.repeat):
        forget(args.date)
        wall = timed(luigi_command(args.date, args.workers))
        steps = steps_seconds(args.date)
        noop = timed(luigi_command(args.date, args.workers))
        start = timed([sys.executable, "-c", "pass"])
        imports = import_seconds()
        for name, value in {
            "full run": wall, "its steps": steps, "outside the steps": wall - steps,
            "no-op rerun": noop, "start and exit": start, "imports": imports, "the rest": noop - start - imports,
        }.items():  # fmt: skip
            figures.setdefault(name, []).append(value)
        print(f"repeat {repeat + 1} of {args.repeat}: full run {wall:.2f} s ({wall - steps:.2f} s outside the steps), "
              f"no-op rerun {noop:.2f} s", file=sys.stderr, flush=True)  # fmt: skip

    print(f"RecommendationsTask of {args.date}, {args.workers} worker(s); medians of {args.repeat} runs (range):")
    for name, indent in (("full run", 0), ("its steps", 2), ("outside the steps", 2), ("no-op rerun", 0),
                         ("start and exit", 2), ("imports", 2), ("the rest", 2)):  # fmt: skip
        print(f"  {' ' * indent}{name:<{22 - indent}} {median(figures[name])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
