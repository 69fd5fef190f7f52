"""Both recommendation methods, the case study's rule and ALS, on demo data and on MovieLens: seconds, peak memory
and quality figures per method and engine.

`python benchmarks/als.py [--ratings 2000000] [--spark 2000000] [--movielens PATH] [--no-quality]` writes each
data set's cleaned courses, extracted rating pairs and valid ratings (with their stamps) to parquet once, then runs
each measurement in a fresh child process, as the pipeline's steps make them: the rule (average_course_ratings,
courses_to_recommend, top_recommendations), the ALS (als_recommendations, rank 10, 10 iterations, seed 42, the
rule's top as its fallback) and recommendation_quality (both methods, each user's newest valid rating held out).
Pandas always; Spark in local[2] with 1 GB of driver memory on MovieLens (100k ratings) when pyspark and Java are
there, and on the demo sizes of --spark only (its 2M ALS alone takes about 90 s). Data sets: `demo_data(N)` for
each N of --ratings, on the 1 to 5 scale, and MovieLens latest-small (../shared/datasets/movielens-latest-small;
a film is a course, its first genre the course's language, half-star ratings of 0.5 to 5 stamped at their
timestamps), skipped with a line saying why when it is absent. Seconds are the calls alone (after reading the
files and, for Spark, after the session started; Spark's recommendations counted); memory is the peak resident
size of the child's process tree (Python, and the JVM for Spark) sampled every 50 ms, and its size before the calls.
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
from types import ModuleType

import pandas as pd
from measure import TreePeak, tree_rss

from workflow.pipelines.courses.demo import demo_data, movielens_tables

REPO = Path(__file__).resolve().parents[1]
MOVIELENS = REPO.parent / "shared" / "datasets" / "movielens-latest-small"
UNTIL = dt.date(2024, 6, 30)
LANGUAGE_FILL = "r"  # [rules] language_fill, lower-cased as clean_courses does
RELEVANT = 4.0  # [recommender] relevant
SETTINGS = {
    "per_user": 3, "rank": 10, "regularization": 0.1, "iterations": 10, "seed": 42, "max_rating": 5.0,
}  # fmt: skip
METHODS = ("language_rule", "als")
QUALITY = ("rmse", "mae", "hit_rate", "ndcg", "coverage", "personal_share")
EMPTY_TOP = {"user_id": "int64", "course_id": "int64", "rating": "float64", "rank": "int64"}


def demo(n_ratings: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return demo courses and ratings (stamped, integer ratings as floats) of that size."""

    courses, ratings = demo_data(n_ratings, UNTIL)
    return courses, ratings.astype({"rating": "float64"})


def write_data(courses: pd.DataFrame, ratings: pd.DataFrame, min_rating: float, folder: Path) -> dict[str, int]:
    """Write the cleaned courses, the extracted rating pairs and the valid ratings as the pipeline's steps do; return
    their counts."""
    from workflow.pipelines.courses import rules  # noqa: PLC0415

    cleaned, _ = rules.clean_courses(courses, LANGUAGE_FILL)
    valid, _ = rules.validate_ratings(ratings, cleaned["course_id"], min_rating, SETTINGS["max_rating"])
    folder.mkdir(parents=True, exist_ok=True)
    cleaned[["course_id", "programming_language"]].to_parquet(folder / "courses.parquet")
    ratings[["user_id", "course_id"]].to_parquet(folder / "extracted.parquet")
    valid.to_parquet(folder / "ratings.parquet")
    return {"ratings": len(ratings), "valid": len(valid), "users": int(valid["user_id"].nunique()),
            "courses": len(cleaned)}  # fmt: skip


def language_rule(rules: ModuleType, ratings: object, courses: object, rated: object, per_user: int) -> object:
    """Return the rule's top recommendations as the pipeline's three steps make them (either engine's rules)."""
    averages = rules.average_course_ratings(ratings[["course_id", "rating"]])
    candidates = rules.courses_to_recommend(
        ratings[["user_id", "course_id"]], courses, averages, per_language=per_user, rated=rated
    )
    return rules.top_recommendations(candidates, per_user)


def child(kind: str, engine: str, folder: Path, min_rating: float) -> dict[str, object]:
    """Run one measurement (a method's recommendations, or `quality`) on an engine in this process; return its
    figures."""
    settings = SETTINGS | {"min_rating": min_rating}
    if engine == "spark":
        return spark_child(kind, folder, settings)
    from workflow.pipelines.courses import rules  # noqa: PLC0415

    ratings = pd.read_parquet(folder / "ratings.parquet")
    rated = pd.read_parquet(folder / "extracted.parquet")
    courses = pd.read_parquet(folder / "courses.parquet")
    fallback = rule_top(folder) if kind == "als" else None
    figures: dict[str, object] = {}
    before = tree_rss(os.getpid())
    with TreePeak(os.getpid()) as peak:
        start = time.perf_counter()
        if kind == "language_rule":
            top = language_rule(rules, ratings, courses, rated, settings["per_user"])
        elif kind == "als":
            top, _ = rules.als_recommendations(ratings[["user_id", "course_id", "rating"]], rated, fallback, **settings)
        else:
            figures["quality"] = rules.recommendation_quality(
                ratings, rated, courses, relevant=RELEVANT, **settings
            ).to_dict("records")
        figures["seconds"] = time.perf_counter() - start
    if kind != "quality":
        figures["rows"] = len(top)
    if kind == "language_rule":  # the ALS's fallback, as FactorizedRecommendations reads TopRecommendations
        top.to_parquet(folder / "rule_top.parquet")
    return figures | {"before_mb": before / 2**20, "peak_mb": max(peak.peak, before) / 2**20}


def rule_top(folder: Path) -> pd.DataFrame:
    """Return the rule's top recommendations the pandas rule's child wrote, or none when it did not."""
    path = folder / "rule_top.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame({c: [] for c in EMPTY_TOP}).astype(EMPTY_TOP)


def spark_child(kind: str, folder: Path, settings: dict[str, float]) -> dict[str, object]:
    """Run one measurement on Spark in local[2] with 1 GB of driver memory; return its figures (the recommendations
    counted)."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    from workflow.pipelines.courses import spark_rules  # noqa: PLC0415

    builder = SparkSession.builder.master("local[2]").appName("als-bench")
    for key, value in {"driver.memory": "1g", "sql.shuffle.partitions": "48", "sql.session.timeZone": "UTC",
                       "driver.host": "127.0.0.1", "driver.bindAddress": "127.0.0.1", "ui.enabled": "false",
                       "driver.extraJavaOptions": "-XX:+UseSerialGC"}.items():  # fmt: skip
        builder = builder.config(f"spark.{key}", value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    ratings = spark.read.parquet(str(folder / "ratings.parquet"))
    rated = spark.read.parquet(str(folder / "extracted.parquet"))
    courses = spark.read.parquet(str(folder / "courses.parquet"))
    path = folder / "rule_top.parquet"  # the pandas rule's, the same rows as Spark's
    empty = "user_id long, course_id long, rating double, rank long"
    fallback = spark.read.parquet(str(path)) if path.exists() else spark.createDataFrame([], empty)
    figures: dict[str, object] = {}
    before = tree_rss(os.getpid())
    with TreePeak(os.getpid()) as peak:
        start = time.perf_counter()
        if kind == "language_rule":
            figures["rows"] = language_rule(spark_rules, ratings, courses, rated, settings["per_user"]).count()
        elif kind == "als":
            top, _ = spark_rules.als_recommendations(
                ratings.select("user_id", "course_id", "rating"), rated, fallback, **settings
            )
            figures["rows"] = top.count()
        else:
            figures["quality"] = spark_rules.recommendation_quality(
                ratings, rated, courses, relevant=RELEVANT, **settings
            ).to_dict("records")
        figures["seconds"] = time.perf_counter() - start
    spark.stop()
    return figures | {"before_mb": before / 2**20, "peak_mb": max(peak.peak, before) / 2**20}


def run(kind: str, engine: str, folder: Path, min_rating: float) -> dict[str, object]:
    """Run a measurement in a fresh child process and return its figures (or its error)."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, engine, str(folder), str(min_rating)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(engines: list[str], folder: Path, min_rating: float, quality: bool) -> None:
    """Measure both methods (and their quality) on each engine, each in a child of its own, and print one table."""
    kinds = [*METHODS, "quality"] if quality else list(METHODS)
    measured = {(kind, engine): run(kind, engine, folder, min_rating) for engine in engines for kind in kinds}
    widths = {name: max(9, len(name) + 1) for name in QUALITY}
    print(f"{'method':<14}{'engine':<8}{'seconds':>9}{'peak MB':>9}{'before':>8}{'rows':>11}"
          + "".join(f"{name:>{width}}" for name, width in widths.items()))  # fmt: skip
    for engine in engines:
        scored = measured.get(("quality", engine), {}).get("quality", [])
        rows = {row["method"]: row for row in scored}
        for method in METHODS:
            figures = measured[method, engine]
            if "error" in figures:
                print(f"{method:<14}{engine:<8} failed: {figures['error']}")
                continue
            line = f"{method:<14}{engine:<8}{figures['seconds']:>9.2f}{figures['peak_mb']:>9,.0f}"
            line += f"{figures['before_mb']:>8,.0f}{figures['rows']:>11,}"
            line += "".join(f"{rows.get(method, {}).get(name, float('nan')):>{width}.3f}"
                            for name, width in widths.items())  # fmt: skip
            print(line)
    for engine in engines if quality else []:
        figures = measured["quality", engine]
        if "error" in figures:
            print(f"quality on {engine} failed: {figures['error']}")
            continue
        rows = {row["method"]: row for row in figures["quality"]}
        predicted = ", ".join(f"{method} {rows[method]['n_predicted']:,}" for method in METHODS)
        print(f"quality on {engine} (both methods, one call): {figures['seconds']:.2f} s, peak "
              f"{figures['peak_mb']:,.0f} MB ({figures['before_mb']:,.0f} before); "
              f"{rows['als']['n_users']:,} users evaluated, predicted {predicted}")  # fmt: skip


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", default="2000000", help="demo sizes, comma-separated (empty: none)")
    parser.add_argument("--spark", default="", help="demo sizes also measured on Spark (default: none)")
    parser.add_argument("--movielens", default=str(MOVIELENS), help="MovieLens latest-small's folder (empty: skip)")
    parser.add_argument("--no-quality", action="store_true", help="skip recommendation_quality")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, engine, folder, min_rating = args.child
        print(json.dumps(child(kind, engine, Path(folder), float(min_rating)), default=float))
        return
    from workflow.devspark import unavailable_reason  # noqa: PLC0415

    no_spark = unavailable_reason()
    workdir = REPO / "output" / f"bench-als-{os.getpid()}"
    common = "rank 10, regularization 0.1, 10 iterations, seed 42, 3 a user, relevant 4 or more"
    try:
        for n in sizes(args.ratings):
            counts = write_data(*demo(n), 1.0, workdir / str(n))
            with_spark = n in sizes(args.spark)
            print(f"\ndemo data, {counts['valid']:,} valid ratings of {counts['ratings']:,}, {counts['users']:,} "
                  f"users, {counts['courses']:,} courses, ratings 1 to 5 ({common})")  # fmt: skip
            if with_spark and no_spark:
                print(f"Spark skipped: {no_spark}")
            engines = ["pandas", "spark"] if with_spark and not no_spark else ["pandas"]
            report(engines, workdir / str(n), 1.0, not args.no_quality)
        source = Path(args.movielens) if args.movielens else None
        if source is None or not (source / "ratings.csv").exists():
            print(f"\nMovieLens skipped: {'--movielens is empty' if source is None else f'{source} is absent'}")
            return
        counts = write_data(*movielens_tables(source), 0.5, workdir / "movielens")
        print(f"\nMovieLens latest-small, {counts['valid']:,} valid ratings of {counts['ratings']:,}, "
              f"{counts['users']:,} users, {counts['courses']:,} films, half stars 0.5 to 5 ({common})")  # fmt: skip
        if no_spark:
            print(f"Spark skipped: {no_spark}")
        engines = ["pandas"] if no_spark else ["pandas", "spark"]
        report(engines, workdir / "movielens", 0.5, not args.no_quality)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
