"""A third pipeline, declared inside this test, runs through the shared kit without a change to shared code.

It counts the ratings of each course made before the end of a date, and loads them into the warehouse table
`course_rating_counts` with its marker `course_rating_count_loads`. Listing it in the registry (here with
monkeypatch, in a real project one line in workflow/registry.py) makes it part of DailyPipelines, `status`,
`invalidate` and `summary`.
"""

from __future__ import annotations

import datetime as dt
import types

import luigi
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from conftest import Databases
from sqlalchemy.engine import Connection

from workflow import cli, databases, registry
from workflow.core.dated_load import DatedLoadTask, load_once, loaded_dates
from workflow.core.pipeline import Marker, Pipeline
from workflow.core.tasks import ParquetTask, end_of_day
from workflow.daily import DailyPipelines
from workflow.io.load import copy_in
from workflow.pipelines import courses
from workflow.pipelines.courses import demo

DAY = dt.date(2026, 11, 20)
RATINGS = pa.schema([("user_id", pa.int64()), ("course_id", pa.int64()), ("rating", pa.float64())])
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS course_rating_counts (load_date date, course_id bigint, n_ratings bigint,
                                                 PRIMARY KEY (load_date, course_id));
CREATE TABLE IF NOT EXISTS course_rating_count_loads (load_date date PRIMARY KEY, partial boolean NOT NULL);
"""


def ratings_per_course(ratings: pd.DataFrame) -> pd.DataFrame:
    """Return the number of ratings of each course, by course_id."""
    counts = ratings.dropna(subset=["course_id"]).groupby("course_id", sort=True).size()
    return counts.rename("n_ratings").reset_index().astype("int64")


class ExtractedRatingRows(ParquetTask):
    """The source's ratings made before the end of the date."""

    def run(self) -> None:
        url = databases.url_of(self.pipeline.source)
        self.extract(url, "rating", RATINGS, schema="public", timestamp_column="rated_at", before=end_of_day(self.date))


class RatingsPerCourse(ParquetTask):
    """Each course's number of ratings."""

    def requires(self) -> ExtractedRatingRows:
        return self.clone(ExtractedRatingRows)

    def run(self) -> None:
        self.write(self.rules.ratings_per_course(self.read(self.requires())))


class CourseRatingCountsTask(DatedLoadTask):
    """The date's counts, loaded into course_rating_counts with the date's marker in one transaction."""

    def requires(self) -> RatingsPerCourse:
        return self.clone(RatingsPerCourse)

    def run(self) -> None:
        self.raise_if_unreachable()
        counts = self.read(self.requires()).assign(load_date=self.date)

        def write(connection: Connection) -> None:
            connection.execute(sa.text("DELETE FROM course_rating_counts WHERE load_date = :d"), {"d": self.date})
            copy_in(connection, "course_rating_counts", counts)
            connection.execute(
                sa.text("INSERT INTO course_rating_count_loads VALUES (:d, :p) ON CONFLICT (load_date) DO UPDATE "
                        "SET partial = EXCLUDED.partial"), {"d": self.date, "p": self.partial_day},
            )  # fmt: skip

        url = databases.warehouse_url()
        load_once(
            url, self.date, self.pipeline.marker, prepare_sql=SCHEMA_SQL, partial_day=self.partial_day, write=write
        )


THIRD = Pipeline(
    name="rating_counts",
    tasks=lambda: (CourseRatingCountsTask, RatingsPerCourse, ExtractedRatingRows),
    marker=Marker("course_rating_count_loads", "load_date"),
    rules={"pandas": lambda: types.SimpleNamespace(ratings_per_course=ratings_per_course)},
    source=courses.PIPELINE.source,
    owns=("public.course_rating_counts", "public.course_rating_count_loads"),
)
for step in (ExtractedRatingRows, RatingsPerCourse, CourseRatingCountsTask):
    step.pipeline = THIRD


@pytest.fixture
def three(clean: Databases, monkeypatch: pytest.MonkeyPatch) -> Databases:
    """Demo ratings in the source, no third pipeline's tables in the warehouse, and the third pipeline registered."""
    catalogue, ratings = demo.demo_data(3_000, until=DAY + dt.timedelta(days=3), seed=7)
    demo.replace_source_tables(clean.source, catalogue, ratings)
    clean.query(clean.warehouse, "DROP TABLE IF EXISTS course_rating_counts, course_rating_count_loads")
    monkeypatch.setattr(registry, "PIPELINES", (*registry.PIPELINES, THIRD))
    return clean


def cli_lines(capsys: pytest.CaptureFixture, *arguments: str) -> list[str]:
    """Run `python -m workflow` in this process (so it sees the registered pipeline) and return its lines."""
    assert cli.main(list(arguments)) == 0
    return capsys.readouterr().out.splitlines()


def test_a_pipeline_declared_in_a_test_runs_loads_once_and_shows_in_status_invalidate_and_daily(
    three: Databases, capsys: pytest.CaptureFixture
) -> None:
    task = CourseRatingCountsTask(date=DAY)
    assert luigi.build([task], local_scheduler=True, workers=2)
    expected = three.query(
        three.source,
        "SELECT course_id, count(*) FROM rating WHERE rated_at < :end AND course_id IS NOT NULL GROUP BY 1 ORDER BY 1",
        end=end_of_day(DAY),
    )
    assert 0 < len(expected) and sum(n for _, n in expected) < 3_000  # ratings after the day are not counted
    rows = "SELECT course_id, n_ratings FROM course_rating_counts WHERE load_date = :d ORDER BY 1"
    assert three.warehouse_rows(rows, d=DAY) == expected
    versions = three.warehouse_rows("SELECT xmin::text, course_id FROM course_rating_counts ORDER BY 2")

    # Loaded once: a rerun runs nothing and rewrites nothing; the marker says so in one query for a range.
    result = luigi.build([CourseRatingCountsTask(date=DAY)], local_scheduler=True, detailed_summary=True)
    assert "Did not run any tasks" in result.summary_text
    assert three.warehouse_rows("SELECT xmin::text, course_id FROM course_rating_counts ORDER BY 2") == versions
    assert CourseRatingCountsTask.bulk_complete([DAY, DAY + dt.timedelta(days=1)]) == [DAY]

    # Part of the daily run, of status and of summary, through the registry alone.
    assert CourseRatingCountsTask(date=DAY) in DailyPipelines(date=DAY).requires()
    assert f"warehouse: {DAY} rating_counts loaded" in cli_lines(capsys, "status", "--date", f"{DAY}")
    assert f"rating_counts: 1 loaded date(s), newest {DAY}" in cli_lines(capsys, "summary")

    # Invalidated with the others: its marker and targets go, and the next run replaces exactly the date's rows.
    lines = cli_lines(capsys, "invalidate", "--date", f"{DAY}")
    assert lines == [f"{DAY}: removed targets, courses no load, films no load, rating_counts load marker"]
    assert loaded_dates(three.warehouse, THIRD.marker, [DAY]) == set()
    assert f"warehouse: {DAY} rating_counts not loaded" in cli_lines(capsys, "status", "--date", f"{DAY}")
    assert luigi.build([CourseRatingCountsTask(date=DAY)], local_scheduler=True)
    assert three.warehouse_rows(rows, d=DAY) == expected
    assert three.warehouse_rows("SELECT count(*) FROM course_rating_count_loads") == [(1,)]


def test_a_pipeline_without_rules_for_the_chosen_engine_says_so() -> None:
    with pytest.raises(Exception, match="the rating_counts pipeline has no rules for the spark engine, only pandas"):
        THIRD.rules_for("spark")
