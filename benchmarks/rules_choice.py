"""Which way to run the courses rules on Spark: the DataFrame API (a) or the pandas rules per user bucket (b).

`python benchmarks/rules_choice.py [--ratings 2000000,20000000] [--runs K] [--driver-memory 1g] [--buckets 64]`
writes `demo_data(N)` to parquet once, then runs each variant in a fresh child process (local[2]) from those
files to the top recommendations written as parquet: clean courses, validate ratings (valid and quarantine
written), averages, candidates and the top 3. It prints seconds (child spawn to exit, and the chain alone after
the session started), the peak resident memory of the child's whole process tree (Python, JVM, Python workers;
/proc sampled every 100 ms) and the bytes Spark spilled (in memory / on disk), and checks that both variants'
top rows are identical.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from measure import TreePeak

if TYPE_CHECKING:  # pyspark is imported in the child processes only
    from pyspark.sql import SparkSession

REPO = Path(__file__).resolve().parents[1]
UNTIL = dt.date(2024, 6, 30)
VARIANTS = {"a": "DataFrame API", "b": "applyInPandas"}
LANGUAGE_FILL, MIN_RATING, MAX_RATING, PER_USER = "R", 1.0, 5.0, 3
CHECKED = "user_id long, course_id long, rating double, rated_at timestamp, reason string"
TOP = "user_id long, course_id long, rating double, rank long"


def spark_session(driver_memory: str) -> SparkSession:
    """Return a local[2] SparkSession bound to 127.0.0.1 with the given driver memory and the engine's defaults
    (48 shuffle partitions, the serial collector)."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    builder = SparkSession.builder.master("local[2]").appName("rules-choice")
    for key, value in {"driver.memory": driver_memory, "sql.shuffle.partitions": "48", "sql.session.timeZone": "UTC",
                       "driver.host": "127.0.0.1", "driver.bindAddress": "127.0.0.1",
                       "driver.extraJavaOptions": "-XX:+UseSerialGC"}.items():  # fmt: skip
        builder = builder.config(f"spark.{key}", value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def spilled_bytes(spark: SparkSession) -> list[int] | None:
    """Return the bytes spilled, in memory (deserialized) and on disk, over all stages (the UI's REST API)."""
    context = spark.sparkContext
    try:
        url = f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}/stages"
        with urllib.request.urlopen(url, timeout=10) as response:
            stages = json.load(response)
    except (OSError, ValueError):
        return None
    return [sum(stage.get(f"{kind}BytesSpilled", 0) for stage in stages) for kind in ("memory", "disk")]


def variant_a(spark: SparkSession, data: Path, out: Path) -> None:
    """Run the chain with the DataFrame-API rules (spark_rules)."""
    from workflow.pipelines.courses import spark_rules  # noqa: PLC0415

    ratings = spark.read.parquet(str(data / "ratings.parquet"))
    courses, _ = spark_rules.clean_courses(spark.read.parquet(str(data / "courses.parquet")), LANGUAGE_FILL)
    courses.write.parquet(str(out / "courses"))
    courses = spark.read.parquet(str(out / "courses"))
    valid, quarantined = spark_rules.validate_ratings(ratings, courses.select("course_id"), MIN_RATING, MAX_RATING)
    quarantined.write.parquet(str(out / "quarantine"))
    valid.write.parquet(str(out / "valid"))
    valid = spark.read.parquet(str(out / "valid"))
    averages = spark_rules.average_course_ratings(valid)
    candidates = spark_rules.courses_to_recommend(valid, courses, averages, PER_USER, rated=ratings)
    spark_rules.top_recommendations(candidates, PER_USER).write.parquet(str(out / "top"))


def variant_b(spark: SparkSession, data: Path, out: Path, buckets: int) -> None:
    """Run the chain with the pandas rules per bucket of users (applyInPandas), averages broadcast in the closure."""
    from pyspark import StorageLevel  # noqa: PLC0415
    from pyspark.sql import functions as F  # noqa: N812, PLC0415

    from workflow.pipelines.courses import rules  # noqa: PLC0415

    courses, _ = rules.clean_courses(pd.read_parquet(data / "courses.parquet"), LANGUAGE_FILL)
    course_ids = courses["course_id"]
    bucket = F.pmod(F.xxhash64("user_id"), F.lit(buckets))

    def check(rows: pd.DataFrame) -> pd.DataFrame:
        """Return a bucket's rows, each with the first rule it breaks as `reason` (None when valid)."""
        valid, quarantined = rules.validate_ratings(rows, course_ids, MIN_RATING, MAX_RATING)
        valid = valid.assign(rated_at=pd.NaT, reason=None)
        return pd.concat([valid, quarantined[valid.columns]], ignore_index=True)

    ratings = spark.read.parquet(str(data / "ratings.parquet"))
    checked = ratings.groupBy(bucket).applyInPandas(check, CHECKED).persist(StorageLevel.DISK_ONLY)
    checked.where(F.col("reason").isNotNull()).write.parquet(str(out / "quarantine"))
    checked.where(F.col("reason").isNull()).select("user_id", "course_id", "rating").write.parquet(str(out / "valid"))
    valid = spark.read.parquet(str(out / "valid"))
    averages = valid.groupBy("course_id").agg(
        F.avg("rating").alias("average_rating"), F.count(F.lit(1)).cast("long").alias("n_ratings")
    )
    averages = averages.toPandas()
    language = courses[["course_id", "programming_language"]]

    def recommend(rows: pd.DataFrame) -> pd.DataFrame:
        """Return a bucket's users' top recommendations: valid rows rate, every row of the extract counts as rated."""
        rated = rows[["user_id", "course_id"]]
        valid = rated[rows["reason"].isna().to_numpy()]
        candidates = rules.courses_to_recommend(valid, language, averages, PER_USER, rated=rated)
        return rules.top_recommendations(candidates, PER_USER)

    checked = checked.select("user_id", "course_id", "reason")
    checked.groupBy(bucket).applyInPandas(recommend, TOP).write.parquet(str(out / "top"))
    checked.unpersist()


def child(args: argparse.Namespace) -> None:
    """Run one variant's chain in this process and print its seconds and spilled bytes as JSON."""
    spark = spark_session(args.driver_memory)
    start = time.perf_counter()
    if args.child == "a":
        variant_a(spark, args.data, args.out)
    else:
        variant_b(spark, args.data, args.out, args.buckets)
    seconds = time.perf_counter() - start
    print(json.dumps({"chain_seconds": seconds, "spilled": spilled_bytes(spark)}), flush=True)
    spark.stop()


def run_child(variant: str, args: argparse.Namespace, data: Path, out: Path) -> dict:
    """Run a variant in a child process; return its figures, wall seconds and peak tree RSS (MB), or its error."""
    log_path = out.with_suffix(".log")
    command = [sys.executable, __file__, "--child", variant, "--data", str(data), "--out", str(out)]
    command += ["--driver-memory", args.driver_memory, "--buckets", str(args.buckets)]
    with open(log_path, "w") as log:
        start = time.perf_counter()
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        with TreePeak(process.pid, every=0.1) as peak:
            stdout = process.communicate()[0].decode()
        seconds = time.perf_counter() - start
    figures = {"seconds": seconds, "peak_mb": peak.peak_mb, "error": None}
    if process.returncode != 0:
        lines = [line for line in log_path.read_text().splitlines() if "Error" in line or "Exception" in line]
        lines.sort(key=lambda line: "OutOfMemory" not in line)  # an OOM first, else the first error
        return figures | {"error": f"exit {process.returncode}: {(lines or ['see log'])[0].strip()[:160]}"}
    return figures | json.loads(stdout.strip().splitlines()[-1])


def write_inputs(n_ratings: int, data: Path) -> int:
    """Write demo_data(n_ratings) as courses.parquet and ratings.parquet; return the number of ratings."""
    from workflow.pipelines.courses.demo import demo_data  # noqa: PLC0415

    courses, ratings = demo_data(n_ratings, until=UNTIL)
    data.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(courses, preserve_index=False), data / "courses.parquet")
    ratings = ratings.astype({"rating": "float64", "rated_at": "datetime64[us, UTC]"})
    pq.write_table(pa.Table.from_pandas(ratings, preserve_index=False), data / "ratings.parquet")
    return len(ratings)


def top_rows(out: Path) -> pd.DataFrame:
    """Return a variant's top recommendations in a canonical order."""
    top = pd.read_parquet(out / "top")[["user_id", "rank", "course_id", "rating"]]
    return top.sort_values(["user_id", "rank"], ignore_index=True)


def measure(n_ratings: int, args: argparse.Namespace, workdir: Path) -> list[str]:
    """Measure both variants on n_ratings demo ratings; return the table's lines."""
    data = workdir / f"data-{n_ratings}"
    n = write_inputs(n_ratings, data)
    lines, outputs = [], {}
    for variant, name in VARIANTS.items():
        runs = []
        for run in range(args.runs):
            out = workdir / f"out-{n_ratings}-{variant}-{run}"
            runs.append(run_child(variant, args, data, out))
            if not runs[-1]["error"]:
                shutil.rmtree(outputs.get(variant, out / "none"), ignore_errors=True)
                outputs[variant] = out
            print(f"  {n:,} {name} run {run + 1}: {runs[-1]}", file=sys.stderr, flush=True)
        ok = [figures for figures in runs if not figures["error"]]
        if not ok:
            lines.append(f"{n:>11,} {name:<14} failed after {runs[0]['seconds']:.0f} s, peak "
                         f"{runs[0]['peak_mb']:.0f} MB: {runs[0]['error']}")  # fmt: skip
            continue
        seconds, chain = (statistics.median(f[key] for f in ok) for key in ("seconds", "chain_seconds"))
        peak = statistics.median(f["peak_mb"] for f in ok)
        spilled = ok[-1]["spilled"]
        shown = "?" if spilled is None else "/".join(f"{size / 2**20:.0f}" for size in spilled)
        lines.append(f"{n:>11,} {name:<14} {seconds:>8.1f} {chain:>8.1f} {peak:>8.0f} {shown:>15}")
    if len(outputs) == 2:
        same = top_rows(outputs["a"]).equals(top_rows(outputs["b"]))
        lines.append(f"{'':>11} top rows {'identical' if same else 'DIFFER'} ({len(top_rows(outputs['a'])):,} rows)")
    shutil.rmtree(data)
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", action="append", help="N, repeatable or a comma list (default 2000000)")
    parser.add_argument("--runs", type=int, default=1, help="runs per variant; the median is shown")
    parser.add_argument("--driver-memory", default="1g", help="spark.driver.memory")
    parser.add_argument("--buckets", type=int, default=64, help="user buckets of variant (b)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.ratings = [int(n) for text in args.ratings or ["2000000"] for n in text.split(",") if n.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    """Measure each N (or, with --child, run one variant) and print the table."""
    args = parse_args(argv)
    if args.child:
        child(args)
        return 0
    workdir = REPO / "output" / f"bench-rules-choice-{os.getpid()}"
    lines = [f"driver memory {args.driver_memory}; {args.buckets} buckets; medians of {args.runs} run(s)"]
    lines.append(f"{'ratings':>11} {'variant':<14} {'seconds':>8} {'chain s':>8} {'peak MB':>8} {'spilled MB m/d':>15}")
    try:
        for n_ratings in args.ratings:
            lines += measure(n_ratings, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
