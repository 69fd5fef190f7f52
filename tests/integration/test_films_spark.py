"""The film pipeline on Spark: on local[2] and on a standalone cluster it loads exactly the pandas engine's rows.

Each run is a `luigi` command of its own (a JVM per run), as a user runs it; Pagila comes from ../shared.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, Databases
from engines import require_spark
from test_films import DAY, NEEDS_PAGILA, films, pagila  # noqa: F401  (the Pagila fixtures)

from workflow.io.parquet import read_frame
from workflow.pipelines.courses import demo as course_demo
from workflow.pipelines.films import demo as film_demo

LUIGI = str(Path(sys.executable).with_name("luigi"))
FILM_ROWS = "SELECT * FROM store.film_daily WHERE load_date = :date ORDER BY film_id"
COURSE_ROWS = "SELECT * FROM daily_recommendations WHERE recommendation_date = :date ORDER BY user_id, rank"


@pytest.fixture(autouse=True)
def spark_here() -> None:
    require_spark()


def run(engine: str, task: str = "FilmsTask", date: dt.date = DAY, env: dict | None = None) -> str:
    """Run a task for the date on an engine (one worker: one Spark session) and return its log; it must succeed."""
    result = subprocess.run(
        [LUIGI, "--module", "workflow", task, "--date", f"{date}", "--local-scheduler", "--workers", "1",
         "--engine-name", engine],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=900,
        env={**os.environ, "SPARK_MASTER": "local[2]", **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def forget(date: dt.date = DAY) -> None:
    """Forget the date's targets and loads, as a user would before recomputing it."""
    subprocess.run([sys.executable, "-m", "workflow", "invalidate", "--date", f"{date}"], cwd=REPO, check=True)


def quarantine(databases: Databases, name: str, date: dt.date = DAY) -> list[tuple]:
    """Return a quarantine file's rows as sorted tuples (missing values as None), whichever engine wrote it."""
    table = read_frame(databases.output / f"{date}" / f"quarantined_{name}.parquet").astype(object)
    rows = [tuple(None if pd.isna(value) else value for value in row) for row in table.itertuples(index=False)]
    return sorted(rows, key=repr)


@NEEDS_PAGILA
def test_pagila_on_spark_local_loads_exactly_the_pandas_engines_film_rows(films: Databases) -> None:  # noqa: F811
    run("pandas")
    expected = films.warehouse_rows(FILM_ROWS, date=DAY)
    assert len(expected) == 1000
    forget()
    run("spark")
    assert films.warehouse_rows(FILM_ROWS, date=DAY) == expected
    folder = films.output / f"{DAY}"
    for step in ("extracted_rentals", "film_rental_rates", "film_ratings", "film_recommendations"):
        assert (folder / f"{step}.parquet").is_file() or (folder / f"{step}.parquet" / "_SUCCESS").is_file(), step
    assert (folder / "film_recommendations.parquet" / "_SUCCESS").is_file()  # written by Spark, a folder of parts


@NEEDS_PAGILA
def test_pagila_on_a_standalone_cluster_with_two_workers_loads_the_pandas_engines_film_rows(
    films: Databases,  # noqa: F811
    tmp_path: Path,
) -> None:
    from workflow.devspark import cluster  # noqa: PLC0415

    run("pandas")
    expected = films.warehouse_rows(FILM_ROWS, date=DAY)
    forget()
    state = tmp_path / "spark"
    try:
        started = cluster.start(state, workers=2, worker_memory="1g", worker_cores=1)
        run("spark", env={"SPARK_MASTER": started.master_url})
        assert films.warehouse_rows(FILM_ROWS, date=DAY) == expected
        assert len(list((state / "work").glob("app-*/*/stderr"))) == 2  # two executors did the work
    finally:
        cluster.stop(state)
        shutil.rmtree(state, ignore_errors=True)


def test_daily_pipelines_on_spark_run_both_pipelines_in_one_session_with_the_pandas_engines_rows(
    clean: Databases,
) -> None:
    day = dt.date(2026, 11, 20)
    catalogue, ratings = course_demo.demo_data(20_000, until=day)
    course_demo.replace_source_tables(clean.source, catalogue, ratings)
    from workflow.databases import url_of  # noqa: PLC0415
    from workflow.pipelines import films as film_pipeline  # noqa: PLC0415

    films_url = url_of(film_pipeline.PIPELINE.source)
    film_demo.replace_film_tables(films_url, 4_000, until=day)
    # Real-data shapes in the film ratings: a re-rating, a tie, a NULL, an unknown film, one out of range.
    clean.query(
        films_url,
        "INSERT INTO film_rating VALUES (1, 1, 1, '2026-11-19 08:00+00'), (1, 1, 2, '2026-11-19 09:00+00'),"
        " (2, 2, 3, '2026-11-19 08:00+00'), (2, 2, 4, '2026-11-19 08:00+00'), (3, NULL, 4, '2026-11-19 08:00+00'),"
        " (4, 99999, 4, '2026-11-19 08:00+00'), (5, 3, 9, '2026-11-19 08:00+00'), (6, 4, 5, NULL)",
    )
    clean.query(clean.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    run("pandas", "DailyPipelines", day)
    expected = {
        "films": clean.warehouse_rows(FILM_ROWS, date=day),
        "courses": clean.warehouse_rows(COURSE_ROWS, date=day),
        "quarantine": quarantine(clean, "film_ratings", day),
    }
    assert len(expected["films"]) == 1000 and len(expected["courses"]) > 0
    reasons = {row[-1] for row in expected["quarantine"]}
    assert {"superseded", "duplicate_pair", "missing_value", "unknown_film", "rating_out_of_range"} <= reasons
    forget(day)
    log = run("spark", "DailyPipelines", day)
    assert log.count("starting a Spark session") == 1  # both pipelines' steps in one session
    assert clean.warehouse_rows(FILM_ROWS, date=day) == expected["films"]
    assert clean.warehouse_rows(COURSE_ROWS, date=day) == expected["courses"]
    assert quarantine(clean, "film_ratings", day) == expected["quarantine"]
