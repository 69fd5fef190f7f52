"""Benchmark: the Luigi graph against a re-implementation of the case study's pandas pipeline.

`python benchmarks/bench.py [--ratings N] [--repeat K] [--engine pandas|spark] [--no-baseline]` fills the source
database with `demo_data(N)` and then measures, on the same databases and always in child processes of this one:

- ours, `total`: `luigi.build([RecommendationsTask(date)])` from empty targets (the date's parquet
  folder and its warehouse load marker removed first) to warehouse rows, in one child process;
- ours, per stage: the stage's targets removed, its dependencies left complete, then `luigi.build`
  in a fresh child of ExtractedCourses + ExtractedRatings (extract), of TopRecommendations, which
  reruns the five transform tasks (transform), or of RecommendationsTask (load);
- baseline, `total`: the case study's code (`read_sql`, cross join, `transform_recommendations`,
  `to_sql`) in one child, all in memory as the case study runs it (each user's `value_counts().idxmax()`
  is taken for all users at once, same pick, so that no Python loop over users slows it down);
- baseline, per stage: each stage in a fresh child, handed its input through parquet files in a
  temporary folder; reading and writing those hand-over files is not timed;
- the no-op rerun: `luigi --module workflow RecommendationsTask --date D --local-scheduler` spawned
  when everything is complete, timed from spawn to exit (Python start-up included), at least 3 times.

With `--engine spark` our graph's transforms run on Spark (SPARK_MASTER, local[2] unless set; 1g of driver
memory through `[spark] driver-memory`, see engine_runs.py), the baseline and the agreement check are skipped (the
case study's approach is pandas only: `--engine pandas` compares with it), and the table adds what Spark spilled,
summed over the run records of the transform tasks that the step ran.

Seconds are wall time measured inside the child around the work (interpreter start-up and imports
excluded; a Spark session's start is included), except for the no-op rerun. CPU seconds are the user and system
time of the child around the same work, with the children it waited for (Luigi's forked task processes); the
database server's are not counted (the Spark table has no CPU column). Peak MB is the largest sum
of resident memory of the child's whole process tree, sampled from /proc every 50 ms (measure.py's TreePeak,
counting a JVM's short-lived spawned children once: measure.tree_rss): the child, Luigi's forked task
processes with --workers 2, a Spark driver JVM and its Python workers, imported libraries included; the
database server's own memory is not counted. Before each measured step the databases are CHECKPOINTed.
Every figure is the median over the repeats.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb_peer
import engine_runs
import luigi
import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa
from agreement import Agreement, agreement_lines, compare, peer_agreement_line
from case_study import baseline_clean_courses, baseline_extract, baseline_load, baseline_transform
from measure import TreePeak

from workflow import config, databases
from workflow.errors import SourceDataError
from workflow.io import postgres
from workflow.paths import output_dir
from workflow.pipelines.courses import PIPELINE as COURSES_PIPELINE
from workflow.pipelines.courses import demo
from workflow.pipelines.courses.tasks import (
    AverageCourseRatings,
    CleanedCourses,
    CoursesToRecommend,
    ExtractedCourses,
    ExtractedRatings,
    RecommendationsTask,
    TopRecommendations,
    ValidRatings,
)

REPO = Path(__file__).resolve().parent.parent
STAGES = ("extract", "transform", "load")
STAGE_TARGETS = {
    "extract": (ExtractedCourses, ExtractedRatings),
    "transform": (CleanedCourses, ValidRatings, AverageCourseRatings, CoursesToRecommend, TopRecommendations),
}
BYTES_PER_CANDIDATE = 100  # the estimate of the baseline's memory per row of its cross join
LARGE_RATINGS = 2_000_000  # above this, one repeat by default
NOOP_RUNS = 3
NOT_ASKED = "baseline skipped: --no-baseline"
SPARK_SKIP = "baseline skipped: the case study's approach is pandas only (compare with it: make bench ENGINE=pandas)"
OK_STATUSES = (
    luigi.execution_summary.LuigiStatusCode.SUCCESS,
    luigi.execution_summary.LuigiStatusCode.SUCCESS_WITH_RETRY,
)


@dataclass(frozen=True)
class Sample:
    """One measurement: wall seconds, peak resident memory in MB, and what Spark spilled (MB in memory, on disk)."""

    seconds: float
    peak_mb: float
    spill_memory_mb: float = 0.0
    spill_disk_mb: float = 0.0
    cpu_seconds: float | None = None  # of the measured process and the children it waited for (not the database's)


def say(message: str) -> None:
    """Print a progress message on stderr (stdout carries only the results)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- what the child processes run ---------------------------------------------------------------------


class Clock:
    """The wall seconds and the CPU seconds (user and system, of this process and of the children it waited for, such
    as Luigi's forked workers) of a block: `with Clock() as clock: ...`, then `clock.figures`."""

    def __enter__(self) -> Clock:
        self.start, self.before = time.perf_counter(), os.times()
        return self

    def __exit__(self, *_: object) -> None:
        after = os.times()
        self.figures = {
            "seconds": time.perf_counter() - self.start,
            "cpu_seconds": sum(after[i] - self.before[i] for i in range(4)),  # user, system, children's user, system
        }


def timed(work: Callable[[], object]) -> dict:
    """Return the wall and CPU seconds that `work()` takes."""
    with Clock() as clock:
        work()
    return clock.figures


def luigi_build(tasks: list[luigi.Task], workers: int) -> None:
    """Run the tasks with a local scheduler and fail unless every one of them succeeded."""
    result = luigi.build(tasks, local_scheduler=True, workers=workers, detailed_summary=True)
    if result.status not in OK_STATUSES:
        raise RuntimeError(f"luigi run failed: {result.summary_text}")


def stage_tasks(stage: str, date: dt.date) -> list[luigi.Task]:
    """Return the tasks whose run makes up one stage of our graph ('total' is the whole graph)."""
    if stage == "extract":
        return [ExtractedCourses(date=date), ExtractedRatings(date=date)]
    if stage == "transform":
        return [TopRecommendations(date=date)]
    return [RecommendationsTask(date=date)]


def candidate_rows(courses: pd.DataFrame, ratings: pd.DataFrame) -> int:
    """Return the rows of the baseline's cross join: over users, the courses of their most-rated language."""
    languages = baseline_clean_courses(courses)["programming_language"]
    language_of = pd.Series(languages.to_numpy(), index=courses["course_id"].to_numpy())
    rated = pd.DataFrame(
        {"user_id": ratings["user_id"].to_numpy(), "language": ratings["course_id"].map(language_of).to_numpy()}
    )
    top = rated.value_counts().reset_index().drop_duplicates("user_id")
    return int(top["language"].map(languages.value_counts()).sum())


def child_generate(args: argparse.Namespace) -> dict:
    """Fill the source database with the synthetic data set and describe it."""
    start = time.perf_counter()
    courses, ratings = demo.demo_data(args.ratings, until=args.date, shape=args.shape)  # rated by the date's end
    demo.replace_source_tables(databases.url_of(COURSES_PIPELINE.source), courses, ratings)
    return {
        "seconds": time.perf_counter() - start,
        "courses": len(courses),
        "ratings": len(ratings),
        "users": int(ratings["user_id"].nunique()),
        "candidate_rows": candidate_rows(courses, ratings),
    }


def child_ours(stage: str, args: argparse.Namespace) -> dict:
    """Run one stage of our graph, or all of it, through Luigi."""
    return timed(lambda: luigi_build(stage_tasks(stage, args.date), args.workers))


def child_baseline_total(args: argparse.Namespace) -> dict:
    """Run the whole baseline in one process, in memory."""

    def work() -> None:
        courses, rating = baseline_extract(databases.url_of(COURSES_PIPELINE.source))
        baseline_load(databases.warehouse_url(), baseline_transform(courses, rating))

    return timed(work)


def child_baseline_extract(args: argparse.Namespace) -> dict:
    """Run the baseline's extraction and hand its tables over as parquet."""
    with Clock() as clock:
        courses, rating = baseline_extract(databases.url_of(COURSES_PIPELINE.source))
    courses.to_parquet(args.workdir / "baseline_courses.parquet")
    rating.to_parquet(args.workdir / "baseline_rating.parquet")
    return clock.figures


def child_baseline_transform(args: argparse.Namespace) -> dict:
    """Run the baseline's transform on the handed-over tables and hand its result over as parquet."""
    courses = pd.read_parquet(args.workdir / "baseline_courses.parquet")
    rating = pd.read_parquet(args.workdir / "baseline_rating.parquet")
    with Clock() as clock:
        recommendations = baseline_transform(courses, rating)
    recommendations.to_parquet(args.workdir / "baseline_recommendations.parquet")
    return clock.figures


def child_baseline_load(args: argparse.Namespace) -> dict:
    """Run the baseline's load of the handed-over recommendations."""
    recommendations = pd.read_parquet(args.workdir / "baseline_recommendations.parquet")
    return timed(lambda: baseline_load(databases.warehouse_url(), recommendations))


def peer_settings() -> duckdb_peer.Settings:
    """Return the project's rule settings as the DuckDB peer takes them."""
    rules = config.rules()
    return duckdb_peer.Settings(rules.language_fill, rules.min_rating, rules.max_rating, rules.recommendations_per_user)


def child_peer_total(args: argparse.Namespace) -> dict:
    """Run the whole DuckDB peer in one process."""

    def work() -> None:
        courses, ratings = duckdb_peer.extract(databases.url_of(COURSES_PIPELINE.source), args.date)
        duckdb_peer.load(databases.warehouse_url(), duckdb_peer.transform(courses, ratings, peer_settings()))

    return timed(work)


def child_peer_extract(args: argparse.Namespace) -> dict:
    """Run the peer's extract and hand its tables over as parquet."""
    with Clock() as clock:
        courses, ratings = duckdb_peer.extract(databases.url_of(COURSES_PIPELINE.source), args.date)
    pq.write_table(courses, args.workdir / "peer_courses.parquet")
    pq.write_table(ratings, args.workdir / "peer_ratings.parquet")
    return clock.figures


def child_peer_transform(args: argparse.Namespace) -> dict:
    """Run the peer's transform on the handed-over tables and hand its result over as parquet."""
    courses = pq.read_table(args.workdir / "peer_courses.parquet")
    ratings = pq.read_table(args.workdir / "peer_ratings.parquet")
    with Clock() as clock:
        recommendations = duckdb_peer.transform(courses, ratings, peer_settings())
    pq.write_table(recommendations, args.workdir / "peer_recommendations.parquet")
    return clock.figures


def child_peer_load(args: argparse.Namespace) -> dict:
    """Run the peer's load of the handed-over recommendations."""
    recommendations = pq.read_table(args.workdir / "peer_recommendations.parquet")
    return timed(lambda: duckdb_peer.load(databases.warehouse_url(), recommendations))


CHILDREN: dict[str, Callable[[argparse.Namespace], dict]] = {
    "generate": child_generate,
    **{f"ours-{stage}": functools.partial(child_ours, stage) for stage in (*STAGES, "total")},
    "baseline-total": child_baseline_total,
    "baseline-extract": child_baseline_extract,
    "baseline-transform": child_baseline_transform,
    "baseline-load": child_baseline_load,
    "peer-total": child_peer_total,
    "peer-extract": child_peer_extract,
    "peer-transform": child_peer_transform,
    "peer-load": child_peer_load,
}


# --- the parent: preparing targets, spawning children ---------------------------------------------------


def spawn(
    command: list[str],
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    sampler: Callable[[int], TreePeak] = TreePeak,
) -> tuple[int, float, float]:
    """Run a command in the repository to its end; return its exit code, wall seconds and the peak resident MB of
    its process tree (or of whatever `sampler(pid)` samples)."""
    with open(log_path or os.devnull, "w") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        with sampler(process.pid) as peak:
            process.wait()
        seconds = time.perf_counter() - start
    return process.returncode, seconds, peak.peak_mb


def run_child(name: str, args: argparse.Namespace, workdir: Path) -> tuple[dict, float]:
    """Run one child of this module; return what it reported and its peak resident MB."""
    result_path = workdir / f"{name}.json"
    log_path = workdir / f"{name}.log"
    command = [sys.executable, __file__, "--child", name, "--workdir", str(workdir)]
    command += ["--date", f"{args.date}", "--ratings", str(args.ratings), "--workers", str(args.workers)]
    command += ["--shape", args.shape]
    command += ["--engine", args.engine]
    code, _, peak_mb = spawn(command, log_path, engine_runs.environment(args.engine, workdir))
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"benchmark step {name} failed (exit {code}):\n{tail}")
    return json.loads(result_path.read_text()), peak_mb


def forget_load(date: dt.date) -> None:
    """Delete the date's load marker, so the date counts as not loaded and its load runs again."""
    with postgres.connect(databases.warehouse_url()) as connection:
        if sa.inspect(connection).has_table("recommendation_loads"):
            query = sa.text("DELETE FROM recommendation_loads WHERE recommendation_date = :d")
            connection.execute(query, {"d": date})


def checkpoint() -> None:
    """Flush the databases' pending writes, so that no step pays for the checkpoint of the one before."""
    for url in dict.fromkeys((databases.url_of(COURSES_PIPELINE.source), databases.warehouse_url())):
        try:
            with postgres.connect(url) as connection:
                connection.exec_driver_sql("CHECKPOINT")
        except sa.exc.ProgrammingError:  # not a superuser on a configured server: measure without
            pass


def forget_stage(stage: str, date: dt.date) -> None:
    """Remove the outputs of one stage of our graph, or of all of it for 'total'."""
    if stage == "total":
        shutil.rmtree(output_dir() / f"{date:%Y-%m-%d}", ignore_errors=True)
    if stage in ("total", "load"):
        forget_load(date)
    for task_class in STAGE_TARGETS.get(stage, ()):
        target = Path(task_class(date=date).output().path)
        if target.is_dir():  # a Spark target: a folder of part files
            shutil.rmtree(target)
        target.unlink(missing_ok=True)


def measure(name: str, args: argparse.Namespace, workdir: Path, samples: dict[str, list[Sample]]) -> None:
    """Run one measured child and record its sample under its name."""
    checkpoint()
    since = time.time()
    result, peak_mb = run_child(name, args, workdir)
    spilled = engine_runs.spilled_mb(STAGE_TARGETS["transform"], args.date, since)
    samples.setdefault(name, []).append(Sample(result["seconds"], peak_mb, *spilled, result.get("cpu_seconds")))
    spill = f", spilled {spilled[0]:.0f}/{spilled[1]:.0f} MB" if args.engine == "spark" else ""
    say(f"{name}: {result['seconds']:.2f} s, peak {peak_mb:.0f} MB{spill}")


def run_repeat(
    args: argparse.Namespace, workdir: Path, samples: dict[str, list[Sample]], baseline: bool, peer: bool = False
) -> None:
    """Measure our graph and its stages, then the DuckDB peer's and the baseline's, once."""
    for stage in ("total", *STAGES):
        forget_stage(stage, args.date)
        measure(f"ours-{stage}", args, workdir, samples)
    if peer:
        for stage in ("total", *STAGES):
            measure(f"peer-{stage}", args, workdir, samples)
    if baseline:
        for stage in ("total", *STAGES):
            measure(f"baseline-{stage}", args, workdir, samples)


def luigi_command(date: dt.date, *options: str) -> list[str]:
    """Return the command line `luigi --module workflow RecommendationsTask --date D --local-scheduler [options]`."""
    luigi_bin = Path(sys.executable).parent / "luigi"
    command = [str(luigi_bin)] if luigi_bin.exists() else [sys.executable, "-m", "luigi"]
    return [*command, "--module", "workflow", "RecommendationsTask", "--date", f"{date}", "--local-scheduler", *options]


def noop_rerun(date: dt.date, env: dict[str, str] | None = None) -> Sample:
    """Time `luigi --module workflow RecommendationsTask` when everything is complete, start-up included."""
    command = luigi_command(date)
    code, seconds, peak_mb = spawn(command, env=env)
    if code != 0:
        raise RuntimeError(f"no-op rerun exited {code}: {' '.join(command)}")
    return Sample(seconds, peak_mb)


def baseline_skip_reason(rows: int) -> str | None:
    """Return why the baseline cannot run when its estimated cross join exceeds the available memory."""
    available = next(
        int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines() if "MemAvailable" in line
    )
    needed = rows * BYTES_PER_CANDIDATE
    if needed <= available:
        return None
    return (
        f"baseline skipped: its candidate table would hold ~{rows:,} rows (~{needed / 2**30:.0f} GiB at "
        f"{BYTES_PER_CANDIDATE} B/row), more than the {available / 2**30:.0f} GiB of memory available"
    )


# --- reporting ----------------------------------------------------------------------------------------------


def median_sample(samples: list[Sample] | None) -> Sample | None:
    """Return the medians of the seconds and of the peaks, or None without samples."""
    if not samples:
        return None
    fields = ("seconds", "peak_mb", "spill_memory_mb", "spill_disk_mb")
    cpu = [s.cpu_seconds for s in samples if s.cpu_seconds is not None]
    medians = (statistics.median(getattr(s, field) for s in samples) for field in fields)
    return Sample(*medians, statistics.median(cpu) if cpu else None)


def aligned(lines: list[tuple[str, ...]], left: int = 1) -> str:
    """Return rows of cells as text columns: the first `left` left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def table(rows: list[tuple[str, Sample | None, Sample | None]], missing: str, other: str = "baseline") -> str:
    """Return the results table: one row per stage, ours and the other (the baseline) side by side with their
    ratios."""
    header = ("stage", "ours s", "ours CPU s", "ours peak MB", f"{other} s", f"{other} CPU s", f"{other} peak MB",
              "ratio s", "ratio MB")  # fmt: skip
    lines = [header]
    for name, ours, theirs in rows:
        cells = [name, f"{ours.seconds:.2f}", cpu_cell(ours), f"{ours.peak_mb:.0f}"]
        if theirs is None:
            cells += [missing] * 5
        else:
            cells += [f"{theirs.seconds:.2f}", cpu_cell(theirs), f"{theirs.peak_mb:.0f}"]
            cells += [f"{theirs.seconds / ours.seconds:.1f}x", f"{theirs.peak_mb / ours.peak_mb:.1f}x"]
        lines.append(tuple(cells))
    return aligned(lines)


def cpu_cell(sample: Sample) -> str:
    """Return a sample's CPU seconds as a cell, or '-' where they were not measured (a spawned command)."""
    return "-" if sample.cpu_seconds is None else f"{sample.cpu_seconds:.2f}"


def spark_table(rows: list[tuple[str, Sample]]) -> str:
    """Return the results table of our graph alone: one row per stage with what Spark spilled."""
    lines = [("stage", "ours s", "ours peak MB", "spill memory MB", "spill disk MB")]
    for name, ours in rows:
        spill = [f"{ours.spill_memory_mb:.0f}", f"{ours.spill_disk_mb:.0f}"] if name != "no-op rerun" else ["-"] * 2
        lines.append((name, f"{ours.seconds:.2f}", f"{ours.peak_mb:.0f}", *spill))
    return aligned(lines)


def stage_rows(samples: dict[str, list[Sample]], other: str) -> list[tuple[str, Sample, Sample | None]]:
    """Return each stage's median sample of ours beside the other's (`baseline` or `peer`), the total last."""
    return [
        (stage, median_sample(samples[f"ours-{stage}"]), median_sample(samples.get(f"{other}-{stage}")))
        for stage in (*STAGES, "total")
    ]


def report(
    samples: dict[str, list[Sample]],
    noop: list[Sample],
    skip_reason: str | None,
    agreement: Agreement | None,
    peer_line: str = "",
) -> None:
    """Print the table and the agreement lines on stdout, then the table against the DuckDB peer."""
    rows = stage_rows(samples, "baseline")
    rows.append(("no-op rerun", median_sample(noop), None))
    if skip_reason == SPARK_SKIP:
        print(spark_table([(name, ours) for name, ours, _ in rows]))
    else:
        print(table(rows, "skipped" if skip_reason else "n/a"))
    if skip_reason:
        print(skip_reason)
    else:
        print("no-op rerun, baseline: n/a (the case study has no completeness check: a rerun repeats its total)")
    print("\n".join(agreement_lines(agreement)))
    if samples.get("peer-total"):
        print("\nagainst the DuckDB peer (benchmarks/duckdb_peer.py):")
        print(table(stage_rows(samples, "peer"), "n/a", other="duckdb"))
        print(peer_line)


# --- the command line ---------------------------------------------------------------------------------------


def check_databases(allow_configured: bool) -> None:
    """Refuse to overwrite databases that were configured rather than the embedded server's own."""
    server = databases.embedded_server()
    embedded = server.port() is not None and (databases.url_of(COURSES_PIPELINE.source), databases.warehouse_url()) == (
        server.url("datacamp_application"),
        server.url("dwh"),
    )
    if not embedded and not allow_configured:
        raise RuntimeError(
            "SOURCE_DATABASE_URL or DWH_DATABASE_URL is configured and the benchmark replaces the source tables: "
            "unset them to use the embedded server, or pass --allow-configured-databases"
        )


def run_benchmark(args: argparse.Namespace) -> None:
    """Generate the data set, measure both approaches, and print the results."""
    databases.url_of(COURSES_PIPELINE.source)  # start the embedded server before checking which databases are in use
    check_databases(args.allow_configured_databases)
    output_dir().mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=output_dir()))
    try:
        data, _ = run_child("generate", args, workdir)
        say(f"source: {data['ratings']:,} ratings by {data['users']:,} users of {data['courses']:,} courses")
        skip_reason = (
            SPARK_SKIP if args.engine == "spark"
            else NOT_ASKED if args.no_baseline
            else baseline_skip_reason(data["candidate_rows"])
        )  # fmt: skip
        if skip_reason:
            say(skip_reason)
        samples: dict[str, list[Sample]] = {}
        for repeat in range(args.repeat):
            say(f"repeat {repeat + 1} of {args.repeat}")
            run_repeat(args, workdir, samples, baseline=skip_reason is None, peer=args.engine == "pandas")
        environment = engine_runs.environment(args.engine, workdir)
        noop = [noop_rerun(args.date, environment) for _ in range(max(NOOP_RUNS, args.repeat))]
        agreement = None if skip_reason else compare(args.date, config.rules().recommendations_per_user)
        peer_line = peer_agreement_line(args.date) if args.engine == "pandas" else ""
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    engine = args.engine
    if engine == "spark":
        master = environment["SPARK_MASTER"]
        engine += f" {master}, driver memory {engine_runs.DRIVER_MEMORY}"
    print(
        f"{data['ratings']:,} ratings, {data['users']:,} users, {data['courses']:,} courses; date {args.date}; "
        f"engine {engine}; workers {args.workers}; medians of {args.repeat} run(s), no-op rerun of {len(noop)}"
    )
    report(samples, noop, skip_reason, agreement, peer_line)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the parsed command line, with --repeat defaulted from --ratings."""
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=2_000_000, help="ratings in the generated source")
    parser.add_argument("--shape", choices=demo.SHAPES, default="demo", help="the generated data's shape (demo.SHAPES)")
    parser.add_argument("--repeat", type=int, help="runs to take medians of (3 up to 2M ratings, 1 above)")
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)  # the newest day that is over
    parser.add_argument("--date", type=dt.date.fromisoformat, default=yesterday, help="the run's date")
    parser.add_argument("--workers", type=int, default=1, help="Luigi workers for our graph")
    parser.add_argument("--no-baseline", action="store_true", help="measure our graph only (its stages' peaks)")
    parser.add_argument("--engine", choices=engine_runs.ENGINES, default="pandas", help="the engine of our graph")
    parser.add_argument("--allow-configured-databases", action="store_true", help="use configured database URLs")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.ratings <= LARGE_RATINGS else 1
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or one of its measured steps when started as a child."""
    args = parse_args(argv)
    if args.child:
        result = CHILDREN[args.child](args)
        (args.workdir / f"{args.child}.json").write_text(json.dumps(result))
        return 0
    try:
        run_benchmark(args)
    except (ConnectionError, SourceDataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
