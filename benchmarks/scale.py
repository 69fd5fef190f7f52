"""Scale: the whole graph at 2M and 20M ratings (100M with --with-100m) on pandas, Spark local[2] and a Spark cluster.

`python benchmarks/scale.py [--with-100m] [--ratings N ...] [--shapes S ...] [--modes M ...]` fills the embedded
source database with `demo_data(N, shape=S)` once per size and shape (bench.py's generation child; the shapes are
"demo", `make run`'s, where most users rate one or two courses, and "even", one user per 10 ratings, 80% of a user's
ratings in one language, 2% of courses without a language), then runs, for each mode, from empty targets (the
date forgotten as `python -m workflow invalidate --date D` does: its targets and warehouse marker removed):

    luigi --module workflow RecommendationsTask --date D --local-scheduler --workers 1 --engine-name E

- pandas: the default engine;
- spark local[2]: SPARK_MASTER=local[2], 1g of driver memory (`[spark] driver-memory`, see engine_runs.py);
- spark standalone: a master and 2 workers (1 core, 1g each) on 127.0.0.1 (workflow.devspark), started before
  the run and stopped after it whatever happens; 1g of driver and executor memory.

Seconds are wall time from spawn to exit (Python, imports and the Spark session's start included; the cluster's
start is not). Peak MB is the largest sum of resident memory, sampled from /proc every 50 ms (measure.py's TreePeak:
one scan of /proc per sample for all the trees), of the luigi process's tree (Python,
the driver JVM, in local mode its executors, and their Python workers) plus, in standalone mode, of the cluster
daemons' trees (the master, the workers and their executors); the database server is not counted. Spill is summed
over the transform tasks' run records. "rows = pandas" compares an md5 of the date's warehouse rows (user_id, rank,
course_id, rating bit for bit), computed in SQL, with the pandas mode's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bench
import engine_runs
import sqlalchemy as sa
from measure import TreePeak

from workflow import cli, databases, devspark
from workflow.errors import SourceDataError, WorkflowError
from workflow.io import postgres
from workflow.paths import output_dir
from workflow.pipelines.courses import PIPELINE as COURSES_PIPELINE
from workflow.pipelines.courses.demo import SHAPES

SIZES = (2_000_000, 20_000_000)
LARGE_SIZE = 100_000_000
CLUSTER = {"workers": 2, "worker_cores": 1, "worker_memory": "1g"}
# The date's rows in a fixed order, hashed per bucket of users (so no string nears PostgreSQL's 1 GB limit at
# 100M ratings), then the buckets' digests hashed in order. Ratings enter as their 8 bytes: equal means bit for bit.
CHECKSUM = sa.text("""
WITH buckets AS (
    SELECT user_id % 256 AS bucket, count(*) AS n, md5(string_agg(
        concat_ws(',', user_id, rank, course_id, encode(float8send(rating), 'hex')), ';' ORDER BY user_id, rank
    )) AS digest
    FROM daily_recommendations WHERE recommendation_date = :d GROUP BY 1
)
SELECT coalesce(sum(n), 0), md5(coalesce(string_agg(digest, '' ORDER BY bucket), '')) FROM buckets
""")
LOADED = sa.text("SELECT n_recommendations FROM recommendation_loads WHERE recommendation_date = :d")


@dataclass(frozen=True)
class Mode:
    """How one run is made: its engine, and its Spark master (None: a standalone cluster started for it)."""

    engine: str
    name: str
    master: str | None = None


MODES = (Mode("pandas", "pandas"), Mode("spark", "local[2]", "local[2]"), Mode("spark", "standalone"))


@dataclass(frozen=True)
class Result:
    """One mode's run at one size and shape: its sample, or why it failed, and a checksum of the warehouse rows."""

    ratings: int
    shape: str
    mode: Mode
    sample: bench.Sample | None
    rows: tuple[int, str] | None
    error: str | None = None


def forget(date: dt.date) -> None:
    """Forget the date as `python -m workflow invalidate --date D` does (its line goes to stderr)."""
    with contextlib.redirect_stdout(sys.stderr):
        cli.invalidate(argparse.Namespace(date=date, to=None))


def warehouse_rows(date: dt.date) -> tuple[int, str] | None:
    """Return the date's warehouse rows (count, md5), or None when the date has no load marker."""
    with postgres.connect(databases.warehouse_url()) as connection:
        if connection.execute(LOADED, {"d": date}).first() is None:
            return None
        count, digest = connection.execute(CHECKSUM, {"d": date}).one()
    return int(count), digest


def run_mode(mode: Mode, ratings: int, shape: str, date: dt.date, workdir: Path) -> Result:
    """Run the whole graph from empty targets in one mode; return its measurement."""
    forget(date)
    bench.checkpoint()
    log_path = workdir / f"{ratings}-{shape}-{mode.name.replace('[', '').replace(']', '')}.log"
    cluster = None
    try:
        if mode.master is None and mode.engine == "spark":
            try:
                cluster = devspark.start(workdir / "spark", **CLUSTER)
            except devspark.SparkClusterError as error:
                bench.say(f"{ratings:,} {mode.name}: {error}")
                return Result(ratings, shape, mode, None, None, "no cluster")
            bench.say(f"cluster {cluster.master_url} up (pids {', '.join(map(str, cluster.pids))})")
        master = cluster.master_url if cluster else mode.master
        env = engine_runs.environment(mode.engine, workdir, master)
        command = bench.luigi_command(date, "--workers", "1", "--engine-name", mode.engine)
        others = cluster.pids if cluster else ()
        since = time.time()
        code, seconds, peak_mb = bench.spawn(command, log_path, env, sampler=lambda pid: TreePeak(pid, *others))
    finally:
        if cluster is not None:
            devspark.stop(cluster.folder)
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        bench.say(f"{ratings:,} {mode.name} failed (exit {code}):\n{tail}")
        return Result(ratings, shape, mode, None, None, f"exit {code}")
    spilled = engine_runs.spilled_mb(bench.STAGE_TARGETS["transform"], date, since)
    sample = bench.Sample(seconds, peak_mb, *spilled)
    rows = warehouse_rows(date)
    bench.say(f"{ratings:,} {shape} {mode.name}: {seconds:.1f} s, peak {peak_mb:.0f} MB, spilled {spilled[0]:.0f}/"
              f"{spilled[1]:.0f} MB, rows {rows}")  # fmt: skip
    return Result(ratings, shape, mode, sample, rows, None if rows else "no load marker")


def report(results: list[Result]) -> str:
    """Return the table: one line per size, shape and mode."""
    reference = {(r.ratings, r.shape): r.rows for r in results if r.mode.engine == "pandas" and r.rows}
    lines = [("ratings", "shape", "engine", "mode", "wall s", "peak MB", "spill MB mem/disk", "rows = pandas")]
    for r in results:
        cells = [f"{r.ratings:,}", r.shape, r.mode.engine, r.mode.name]
        if r.sample is None:
            lines.append((*cells, "failed", r.error or "", "", ""))
            continue
        spill = "-" if r.mode.engine == "pandas" else f"{r.sample.spill_memory_mb:.0f}/{r.sample.spill_disk_mb:.0f}"
        if r.rows is None:
            same = r.error or "n/a"
        elif r.mode.engine == "pandas":
            same = f"reference ({r.rows[0]:,} rows)"
        else:
            key = (r.ratings, r.shape)
            same = "n/a" if key not in reference else "yes" if r.rows == reference[key] else "NO"
        lines.append((*cells, f"{r.sample.seconds:.1f}", f"{r.sample.peak_mb:.0f}", spill, same))
    return bench.aligned(lines, left=4)


def run(args: argparse.Namespace) -> None:
    """Generate each size's data set, run every mode on it, and print the table (of what ran, even after a fault)."""
    databases.url_of(COURSES_PIPELINE.source)  # start the embedded server before checking which databases are in use
    bench.check_databases(allow_configured=False)
    output_dir().mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="scale-", dir=output_dir()))
    results: list[Result] = []
    try:
        for ratings in args.ratings:
            for shape in args.shapes:
                generation = bench.parse_args(["--ratings", str(ratings), "--date", f"{args.date}", "--shape", shape])
                start = time.perf_counter()
                data, _ = bench.run_child("generate", generation, workdir)
                bench.say(
                    f"source ({shape}): {data['ratings']:,} ratings by {data['users']:,} users of "
                    f"{data['courses']:,} courses ({time.perf_counter() - start:.0f} s to generate and load)"
                )
                for mode in (mode for mode in MODES if mode.name in args.modes):
                    results.append(run_mode(mode, ratings, shape, args.date, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        print(
            f"date {args.date}; --workers 1; Spark driver memory {engine_runs.DRIVER_MEMORY}; standalone: "
            f"{CLUSTER['workers']} workers of {CLUSTER['worker_cores']} core and {CLUSTER['worker_memory']} each"
        )
        print(report(results))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the parsed command line: the sizes to run."""
    parser = argparse.ArgumentParser(prog="python benchmarks/scale.py", description=__doc__.splitlines()[0])
    parser.add_argument("--with-100m", action="store_true", help="add 100M ratings (long: over 10 minutes a mode)")
    parser.add_argument("--ratings", type=int, nargs="+", help="the sizes instead (default 2M and 20M)")
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)  # the newest day that is over
    parser.add_argument("--date", type=dt.date.fromisoformat, default=yesterday, help="the run's date")
    parser.add_argument(
        "--shapes", nargs="+", choices=SHAPES, default=list(SHAPES), help="the data's shapes (default all)"
    )
    names = [mode.name for mode in MODES]
    parser.add_argument("--modes", nargs="+", choices=names, default=names, help="the modes to run (default all)")
    args = parser.parse_args(argv)
    args.ratings = [*(args.ratings or SIZES), *([LARGE_SIZE] if args.with_100m else [])]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a one-line error on failure."""
    try:
        run(parse_args(argv))
    except (ConnectionError, SourceDataError, WorkflowError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
