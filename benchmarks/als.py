"""ALS recommendations on demo data: seconds and peak memory of each engine, and both methods' quality figures.

`python benchmarks/als.py [--ratings 2000000,20000000] [--spark 2000000] [--quality 2000000]` writes
`demo_data(N)` to parquet once per size, then runs each measurement in a fresh child process: the pandas
als_recommendations (rank 10, 10 iterations, seed 42) from the parquet files, Spark's in local[2] with 1 GB of
driver memory, and the pandas recommendation_quality. Seconds are the call alone (after reading the files and,
for Spark, after the session started); memory is the peak resident size of the child's process tree (Python,
and the JVM for Spark) sampled every 50 ms, and its size before the call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from measure import TreePeak, tree_rss

REPO = Path(__file__).resolve().parents[1]
UNTIL = dt.date(2024, 6, 30)
SETTINGS = {
    "per_user": 3, "rank": 10, "regularization": 0.1, "iterations": 10, "seed": 42, "min_rating": 1.0,
    "max_rating": 5.0,
}  # fmt: skip


def write_data(n_ratings: int, folder: Path) -> None:
    """Write demo courses (cleaned) and ratings (with their stamps) of that size as parquet."""
    from workflow.pipelines.courses import rules  # noqa: PLC0415
    from workflow.pipelines.courses.demo import demo_data  # noqa: PLC0415

    courses, ratings = demo_data(n_ratings, UNTIL)
    cleaned, _ = rules.clean_courses(courses, "r")
    folder.mkdir(parents=True, exist_ok=True)
    cleaned[["course_id", "programming_language"]].to_parquet(folder / "courses.parquet")
    ratings.astype({"rating": "float64"}).to_parquet(folder / "ratings.parquet")


def child(kind: str, folder: Path) -> dict[str, object]:
    """Run one measurement in this process and return its figures."""
    ratings = pd.read_parquet(folder / "ratings.parquet")
    courses = pd.read_parquet(folder / "courses.parquet")
    figures: dict[str, object] = {"users": int(ratings["user_id"].nunique()), "ratings": len(ratings)}
    if kind == "spark":
        return figures | spark_child(folder)
    from workflow.pipelines.courses import rules  # noqa: PLC0415

    fallback = pd.DataFrame({"user_id": [], "course_id": [], "rating": [], "rank": []}).astype("int64")
    before = tree_rss(os.getpid())
    with TreePeak(os.getpid()) as peak:
        start = time.perf_counter()
        if kind == "pandas":
            top, _ = rules.als_recommendations(
                ratings[["user_id", "course_id", "rating"]], ratings[["user_id", "course_id"]], fallback, **SETTINGS
            )
            figures["rows"] = len(top)
        else:
            quality = rules.recommendation_quality(ratings, ratings[["user_id", "course_id"]], courses, **SETTINGS)
            figures["quality"] = quality.to_dict("records")
        figures["seconds"] = time.perf_counter() - start
    return figures | {"before_mb": before / 2**20, "peak_mb": max(peak.peak, before) / 2**20}


def spark_child(folder: Path) -> dict[str, object]:
    """Time Spark's als_recommendations in local[2] with 1 GB of driver memory, its rows counted."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    from workflow.pipelines.courses import spark_rules  # noqa: PLC0415

    builder = SparkSession.builder.master("local[2]").appName("als-bench")
    for key, value in {"driver.memory": "1g", "sql.shuffle.partitions": "48", "sql.session.timeZone": "UTC",
                       "driver.host": "127.0.0.1", "driver.bindAddress": "127.0.0.1", "ui.enabled": "false",
                       "driver.extraJavaOptions": "-XX:+UseSerialGC"}.items():  # fmt: skip
        builder = builder.config(f"spark.{key}", value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    ratings = spark.read.parquet(str(folder / "ratings.parquet")).select("user_id", "course_id", "rating")
    fallback = spark.createDataFrame([], "user_id long, course_id long, rating double, rank long")
    with TreePeak(os.getpid()) as peak:
        start = time.perf_counter()
        top, _ = spark_rules.als_recommendations(ratings, ratings, fallback, **SETTINGS)
        rows = top.count()
        seconds = time.perf_counter() - start
    spark.stop()
    return {"rows": rows, "seconds": seconds, "peak_mb": peak.peak_mb}


def run(kind: str, folder: Path) -> dict[str, object]:
    """Run a measurement in a fresh child process and return its figures."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(folder)], capture_output=True, text=True, check=False
    )
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", default="2000000", help="sizes for the pandas ALS, comma-separated")
    parser.add_argument("--spark", default="2000000", help="sizes for Spark's ALS (empty: none)")
    parser.add_argument("--quality", default="2000000", help="sizes for both methods' quality figures (empty: none)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1])), default=float))
        return
    workdir = REPO / "output" / f"bench-als-{os.getpid()}"
    try:
        plan = [("pandas", n) for n in sizes(args.ratings)] + [("spark", n) for n in sizes(args.spark)]
        plan += [("quality", n) for n in sizes(args.quality)]
        for n in sorted({n for _, n in plan}):
            write_data(n, workdir / str(n))
        for kind, n in plan:
            figures = run(kind, workdir / str(n))
            quality = figures.pop("quality", None)
            print(f"{kind:>8} {n:>11,} ratings: " + ", ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}"
                                                           for k, v in figures.items()))  # fmt: skip
            for row in quality or []:
                print(
                    " " * 12 + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
