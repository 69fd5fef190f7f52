"""End-to-end runs of the task graph through Luigi against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys

import luigi
import pandas as pd
import pytest
from conftest import REPO, SHARED, Databases, frame

import workflow
from workflow import devdb
from workflow.core import dated_load
from workflow.io import extract
from workflow.pipelines.courses import PIPELINE, demo, schemas

DAY = dt.date(2026, 11, 24)
COURSES = frame(
    [
        (1, "A", "about A", "python"),
        (2, "B", "about B", "Python"),
        (3, "C", 'quotes " and, commas\nnewline\ttab \\ backslash é', " python "),
        (4, "D", "about D", "r"),
        (5, "E", "about E", None),  # the fill value R makes it an r course
        (6, "F", "about F", "sql"),
        (7, "G", "never rated", "python"),
        (8, "H", "about H", "python"),
    ],
    "course_id title description programming_language",
)
RATINGS = frame(
    [
        (10, 1, 5), (10, 4, 4),  # python and r tie: both languages count
        (11, 1, 3), (11, 2, 4), (11, 3, 5),  # rated every rated python course but 8
        (12, 4, 5), (12, 5, 3), (12, 6, 2),  # r: nothing left to recommend
        (13, 2, 5), (13, 6, 9), (13, 99, 4), (13, None, 4),  # three invalid rows
        (14, 8, 5), (15, 8, 4),
    ],
    "user_id course_id rating",
)  # fmt: skip
# averages: 1 -> 4.0, 2 -> 4.5, 3 -> 5.0, 4 -> 4.5, 5 -> 3.0, 6 -> 2.0, 8 -> 4.5, 7 -> none
EXPECTED = [
    (10, 3, 5.0, 1), (10, 2, 4.5, 2), (10, 8, 4.5, 3),
    (11, 8, 4.5, 1),
    (13, 3, 5.0, 1), (13, 8, 4.5, 2), (13, 1, 4.0, 3),
    (14, 3, 5.0, 1), (14, 2, 4.5, 2), (14, 1, 4.0, 3),
    (15, 3, 5.0, 1), (15, 2, 4.5, 2), (15, 1, 4.0, 3),
]  # fmt: skip


def build(date: dt.date = DAY) -> luigi.execution_summary.LuigiRunResult:
    """Run the graph for a date with two workers and return Luigi's result."""
    result = luigi.build(
        [workflow.RecommendationsTask(date=date)], local_scheduler=True, workers=2, detailed_summary=True
    )
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text
    return result


def daily_rows(databases: Databases, date: dt.date = DAY) -> list[tuple]:
    return databases.warehouse_rows(
        "SELECT user_id, course_id, rating, rank FROM daily_recommendations"
        " WHERE recommendation_date = :date ORDER BY user_id, rank",
        date=date,
    )


@pytest.fixture
def small_source(clean: Databases) -> Databases:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    return clean


def test_the_graph_loads_exactly_the_expected_recommendations_and_courses(small_source: Databases) -> None:
    build()
    assert daily_rows(small_source) == EXPECTED
    current = small_source.warehouse_rows("SELECT user_id, course_id, rating, rank FROM recommendations ORDER BY 1, 4")
    assert current == EXPECTED
    courses = small_source.warehouse_rows("SELECT course_id, programming_language FROM courses ORDER BY 1")
    assert courses == [(1, "python"), (2, "python"), (3, "python"), (4, "r"), (5, "r"), (6, "sql"), (7, "python"),
                       (8, "python")]  # fmt: skip
    loads = small_source.warehouse_rows(
        "SELECT recommendation_date, n_recommendations, n_users FROM recommendation_loads"
    )
    assert loads == [(DAY, 13, 5)]


def test_text_passes_through_extract_parquet_and_load_byte_for_byte(small_source: Databases) -> None:
    build()
    loaded = small_source.warehouse_rows("SELECT description FROM courses WHERE course_id = 3")
    assert loaded == [(COURSES.loc[2, "description"],)]


def test_the_case_study_query_and_recommendations_for_user(small_source: Databases) -> None:
    build()
    rows = small_source.warehouse_rows(
        "SELECT title, rating FROM recommendations"
        " INNER JOIN courses ON courses.course_id = recommendations.course_id"
        " WHERE user_id=:user_id AND rating>:threshold ORDER BY rating DESC",
        user_id=10,
        threshold=4.4,
    )
    assert sorted(rows) == [("B", 4.5), ("C", 5.0), ("H", 4.5)]
    assert workflow.recommendations_for_user(10, threshold=4.4) == ["C", "B", "H"]
    assert workflow.recommendations_for_user(10) == ["C"]  # default threshold 4.5 is strict
    assert workflow.recommendations_for_user(12, threshold=0) == []


def test_a_second_run_does_nothing_and_changes_nothing(small_source: Databases) -> None:
    build()
    before = small_source.warehouse_rows("SELECT *, xmin::text FROM daily_recommendations ORDER BY 1, 2, 5")
    marker = small_source.warehouse_rows("SELECT * FROM recommendation_loads")
    targets = {path: path.read_bytes() for path in (small_source.output / f"{DAY}").glob("*.parquet")}
    result = build()
    assert "Did not run any tasks" in result.summary_text
    assert small_source.warehouse_rows("SELECT *, xmin::text FROM daily_recommendations ORDER BY 1, 2, 5") == before
    assert small_source.warehouse_rows("SELECT * FROM recommendation_loads") == marker
    assert {path: path.read_bytes() for path in (small_source.output / f"{DAY}").glob("*.parquet")} == targets


def test_recomputing_a_date_after_the_source_changed_replaces_exactly_that_dates_rows(small_source: Databases) -> None:
    earlier = DAY - dt.timedelta(days=1)
    build(earlier)
    build(DAY)
    first_parquet = (small_source.output / f"{DAY}" / "top_recommendations.parquet").read_bytes()

    # User 13 now also rated course 3 and user 15 is gone: their rows must change, no stale row may stay.
    changed = pd.concat([RATINGS[RATINGS["user_id"] != 15], frame([(13, 3, 1)], "user_id course_id rating")])
    demo.replace_source_tables(small_source.source, COURSES, changed.astype("Int64"))
    subprocess.run([sys.executable, "-m", "workflow", "invalidate", "--date", f"{DAY}"], check=True, cwd=REPO)
    build(DAY)

    # course 3's average drops from 5.0 to 3.0 (tying r course 5, which its lower id beats); course 8's rises to 5.0
    assert daily_rows(small_source) == [
        (10, 8, 5.0, 1), (10, 2, 4.5, 2), (10, 3, 3.0, 3),
        (11, 8, 5.0, 1),
        (13, 8, 5.0, 1), (13, 1, 4.0, 2),
        (14, 2, 4.5, 1), (14, 1, 4.0, 2), (14, 3, 3.0, 3),
    ]  # fmt: skip
    assert daily_rows(small_source, earlier) == EXPECTED
    assert (small_source.output / f"{DAY}" / "top_recommendations.parquet").read_bytes() != first_parquet


def test_recomputing_the_same_input_gives_byte_identical_parquet(small_source: Databases) -> None:
    build()
    first = {path.name: path.read_bytes() for path in (small_source.output / f"{DAY}").glob("*.parquet")}
    dated_load.forget_load(small_source.warehouse, PIPELINE.marker, DAY)
    shutil.rmtree(small_source.output / f"{DAY}")
    build()
    assert {path.name: path.read_bytes() for path in (small_source.output / f"{DAY}").glob("*.parquet")} == first
    assert daily_rows(small_source) == EXPECTED


def test_loading_an_older_date_never_changes_what_is_current(small_source: Databases) -> None:
    build(DAY)
    renamed = COURSES.assign(title=COURSES["title"] + " (old)")
    demo.replace_source_tables(small_source.source, renamed, RATINGS[RATINGS["user_id"] != 10].astype("Int64"))
    build(DAY - dt.timedelta(days=3))
    current = small_source.warehouse_rows("SELECT user_id, course_id, rating, rank FROM recommendations ORDER BY 1, 4")
    assert current == EXPECTED
    assert small_source.warehouse_rows("SELECT title FROM courses WHERE course_id = 1") == [("A",)]


def run_luigi_command(date: dt.date) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "luigi"), "--module", "workflow", "RecommendationsTask",
         "--date", f"{date}", "--local-scheduler", "--workers", "2"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def test_the_luigi_command_runs_the_graph_and_exits_zero(small_source: Databases) -> None:
    result = run_luigi_command(DAY)
    assert result.returncode == 0, result.stderr
    assert (
        "ratings: 14 rows, 3 set aside in quarantined_ratings.parquet: "
        "1 missing_value, 0 missing_timestamp, 1 unknown_course, 1 rating_out_of_range, 0 superseded, 0 duplicate_pair"
    ) in result.stderr
    assert daily_rows(small_source) == EXPECTED


def test_a_failed_run_exits_non_zero_and_names_the_missing_table(clean: Databases) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    clean.query(clean.source, "DROP TABLE rating")
    result = run_luigi_command(DAY)
    assert result.returncode == 30  # [retcode] task_failed
    assert "source table 'public.rating' does not exist" in result.stderr
    assert clean.warehouse_rows("SELECT to_regclass('recommendation_loads')") == [(None,)]


def load_datacamp(databases: Databases) -> None:
    """Load the case study's application database (../shared) into the source database."""
    dump = SHARED / "datasets" / "datacamp" / "datacamp_application.sql"
    psql = devdb.find_bindir() / "psql"
    if not psql.exists():
        psql = shutil.which("psql")
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    url = make_url(databases.source)
    subprocess.run(
        [str(psql), "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host, "-p", str(url.port), "-U", url.username,
         "-d", url.database, "-f", str(dump)],
        check=True, capture_output=True, env={**os.environ, "PGPASSWORD": url.password or ""},
    )  # fmt: skip


@pytest.mark.skipif(not (SHARED / "datasets" / "datacamp").exists(), reason="../shared/datasets/datacamp is absent")
def test_the_real_case_study_data(clean: Databases) -> None:
    load_datacamp(clean)
    build()
    from reference import brute_force_recommendations  # noqa: PLC0415

    source = extract.extract_table(clean.source, "rating", schemas.RATING_SCHEMA)[0].to_pandas()
    courses = extract.extract_table(clean.source, "courses", schemas.COURSES_SCHEMA)[0].to_pandas()
    courses["programming_language"] = courses["programming_language"].fillna("r")
    expected = brute_force_recommendations(source, courses[["course_id", "programming_language"]], per_user=3)
    loaded = pd.DataFrame(daily_rows(clean), columns=["user_id", "course_id", "rating", "rank"])
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False)
    assert len(loaded) > 100_000 and 77 not in set(loaded["course_id"])
    descriptions = dict(clean.warehouse_rows("SELECT course_id, description FROM courses"))
    assert descriptions == dict(zip(courses["course_id"], courses["description"], strict=True))


def test_more_invalid_rows_than_allowed_fail_the_run_and_keep_the_warehouse(
    small_source: Databases, luigi_setting
) -> None:
    build(DAY - dt.timedelta(days=1))
    before = small_source.warehouse_rows("SELECT * FROM recommendations ORDER BY 1, 2")
    luigi_setting("rules", "max_invalid_share", 0.01)  # the default; the small data set has 3 of 14 rows invalid
    result = luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True, detailed_summary=True)
    assert result.status == luigi.LuigiStatusCode.FAILED
    assert small_source.warehouse_rows("SELECT * FROM recommendations ORDER BY 1, 2") == before
    quarantined = pd.read_parquet(small_source.output / f"{DAY}" / "quarantined_ratings.parquet")
    assert sorted(quarantined["reason"]) == ["missing_value", "rating_out_of_range", "unknown_course"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("ALTER TABLE rating DROP COLUMN rating", "source table 'public.rating' lacks column(s) rating"),
        ("ALTER TABLE rating ALTER rating TYPE text", "source column public.rating.rating has type TEXT"),
        ("ALTER TABLE courses RENAME TO course", "source table 'public.courses' does not exist"),
        ("TRUNCATE courses", "source table 'public.courses' has no rows"),
    ],
)
def test_a_broken_source_stops_the_run_with_an_error_naming_what_is_wrong(
    small_source: Databases, change: str, message: str
) -> None:
    small_source.query(small_source.source, change)
    result = run_luigi_command(DAY)
    assert result.returncode == 30
    assert message in result.stderr


def test_the_warehouse_table_has_the_columns_the_schemas_module_declares(small_source: Databases) -> None:
    build()
    columns = small_source.warehouse_rows(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'daily_recommendations'"
        " ORDER BY ordinal_position"
    )
    assert [name for (name,) in columns] == ["recommendation_date", *schemas.RECOMMENDATION_COLUMNS]
