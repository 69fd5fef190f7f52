"""The Luigi task graph: one parquet target per step, the warehouse load last."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from luigi.target import FileAlreadyExists

from workflow import config, db, transforms

log = logging.getLogger("workflow.tasks")


class RecordedTask(luigi.Task):
    """A dated task that leaves a run record (`<output>/<date>/runs/<task>.json`) of what it did."""

    date = luigi.DateParameter()

    @property
    def name(self) -> str:
        """Return the task's name in snake case, as used in file names."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    # What the run observed (rows in and out, rows dropped, the source's state), for its run record.
    facts: dict[str, Any]

    def read(self, task: luigi.Task, columns: list[str] | None = None) -> pd.DataFrame:
        """Return the parquet output of a required task (counted in the run record's rows_in)."""
        frame = pd.read_parquet(task.output().path, columns=columns)
        self.facts["rows_in"] = self.facts.get("rows_in", 0) + len(frame)
        return frame


def run_records_dir(date: dt.date) -> Path:
    """Return the folder of a date's run records."""
    return config.date_dir(date) / "runs"


@RecordedTask.event_handler(luigi.Event.START)
def start_run_record(task: RecordedTask) -> None:
    """Start the task's run record afresh."""
    task.facts = {}


@RecordedTask.event_handler(luigi.Event.PROCESSING_TIME)
def write_run_record(task: RecordedTask, seconds: float) -> None:
    """Log how long the task took and write its run record."""
    log.info("%s took %.2f s", task, seconds)
    record = {
        "task": type(task).__name__,
        "date": f"{task.date:%Y-%m-%d}",
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(seconds, 3),
        **task.facts,
    }
    folder = run_records_dir(task.date)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{task.name}.json.{os.getpid()}"
    temporary.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(temporary, folder / f"{task.name}.json")


class ParquetTask(RecordedTask):
    """A step that writes one parquet file at `<output>/<date>/<task_name>.parquet`."""

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(config.date_dir(self.date) / f"{self.name}.parquet"))

    def write(self, table: pa.Table | pd.DataFrame) -> None:
        """Write the target atomically: it appears whole under its final name or not at all."""
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        self.set_status_message(f"writing {table.num_rows:,} rows")
        self.set_progress_percentage(90)
        temporary_path = None
        try:
            with self.output().temporary_path() as temporary_path:
                pq.write_table(table, temporary_path)
        except FileAlreadyExists:  # a concurrent run of the date wrote the same target first
            log.info("%s was written by another run meanwhile; keeping that one", self.output().path)
            os.remove(temporary_path)
        self.facts["rows_out"] = table.num_rows
        self.set_status_message(f"wrote {table.num_rows:,} rows")
        self.set_progress_percentage(100)

    def set_aside(self, table: str, n_rows: int, quarantined: pd.DataFrame, reasons: list[str]) -> None:
        """Write the rows that break the rules to the quarantine file, count them, and fail if there are too many."""
        path = quarantine_path(self.date, table)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        pq.write_table(pa.Table.from_pandas(quarantined, preserve_index=False), temporary)
        os.replace(temporary, path)
        counts = transforms.reason_counts(quarantined, reasons)
        self.facts["set_aside"] = counts
        log.info("%s: %d rows, %d set aside in %s: %s", table, n_rows, len(quarantined), path.name,
                 ", ".join(f"{count} {reason}" for reason, count in counts.items()))  # fmt: skip
        try:
            transforms.check_invalid_share(table, n_rows, quarantined, config.rules().max_invalid_share)
        except transforms.InvalidSourceDataError as error:
            raise transforms.InvalidSourceDataError(f"{error}; all of them are in {path}") from None


def quarantine_path(date: dt.date, table: str) -> Path:
    """Return where a date's rows of a table that break the rules are set aside."""
    return config.date_dir(date) / f"quarantined_{table}.parquet"


class ExtractedCourses(ParquetTask):
    """The source courses table as extracted on the date (the catalogue has no history: a snapshot)."""

    def run(self) -> None:
        self.set_status_message("extracting courses")
        source = config.source()
        courses, _ = db.extract_table(
            config.source_url(), source.courses_table, db.COURSES_SCHEMA, schema=source.schema
        )
        self.facts["source"] = f"snapshot taken {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
        self.write(courses)


class ExtractedRatings(ParquetTask):
    """The source rating table as it stood at the end of the date (UTC), or a snapshot when it has no timestamps."""

    def run(self) -> None:
        self.set_status_message("extracting ratings")
        source = config.source()
        column = source.rating_timestamp_column or None
        end_of_day = dt.datetime.combine(self.date + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        ratings, as_of = db.extract_table(
            config.source_url(), source.rating_table, db.RATING_SCHEMA,
            schema=source.schema, timestamp_column=column, before=end_of_day,
        )  # fmt: skip
        if as_of:
            self.facts["source"] = f"as of {end_of_day:%Y-%m-%d %H:%M:%S} UTC ({source.rating_table}.{column} < that)"
        else:
            taken = dt.datetime.now(dt.timezone.utc)
            self.facts["source"] = f"snapshot taken {taken:%Y-%m-%d %H:%M:%S} UTC (no column {column!r})"
            log.warning("%s has no column %r: extracting the current snapshot, not the data as of %s",
                        source.rating_table, column, self.date)  # fmt: skip
        self.write(ratings)


class CleanedCourses(ParquetTask):
    """The courses with their programming language normalised; those with a missing or repeated id set aside."""

    def requires(self) -> ExtractedCourses:
        return ExtractedCourses(self.date)

    def run(self) -> None:
        courses = self.read(self.requires())
        cleaned, quarantined = transforms.clean_courses(courses, config.rules().language_fill)
        self.set_aside("courses", len(courses), quarantined, transforms.COURSE_REASONS)
        self.write(cleaned)


class ValidRatings(ParquetTask):
    """The ratings that pass every validity rule; the others are set aside in quarantined_ratings.parquet."""

    def requires(self) -> dict[str, luigi.Task]:
        return {"ratings": ExtractedRatings(self.date), "courses": CleanedCourses(self.date)}

    def run(self) -> None:
        ratings = self.read(self.requires()["ratings"])
        course_ids = self.read(self.requires()["courses"], ["course_id"])["course_id"]
        rules = config.rules()
        valid, quarantined = transforms.validate_ratings(ratings, course_ids, rules.min_rating, rules.max_rating)
        self.set_aside("ratings", len(ratings), quarantined, transforms.RATING_REASONS)
        self.write(valid)


class AverageCourseRatings(ParquetTask):
    """Each rated course's mean rating."""

    def requires(self) -> ValidRatings:
        return ValidRatings(self.date)

    def run(self) -> None:
        self.write(transforms.average_course_ratings(self.read(self.requires())))


class CoursesToRecommend(ParquetTask):
    """Candidate (user, course) pairs: each user's best unrated courses in each of their languages."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "ratings": ValidRatings(self.date),
            "courses": CleanedCourses(self.date),
            "averages": AverageCourseRatings(self.date),
        }

    def run(self) -> None:
        inputs = self.requires()
        candidates = transforms.courses_to_recommend(
            self.read(inputs["ratings"], ["user_id", "course_id"]),
            self.read(inputs["courses"], ["course_id", "programming_language"]),
            self.read(inputs["averages"]),
            per_language=config.rules().recommendations_per_user,
        )
        self.write(candidates)


class TopRecommendations(ParquetTask):
    """Each user's top recommendations, ranked from 1."""

    def requires(self) -> CoursesToRecommend:
        return CoursesToRecommend(self.date)

    def run(self) -> None:
        candidates = self.read(self.requires())
        self.write(transforms.top_recommendations(candidates, config.rules().recommendations_per_user))


class WarehouseLoad(luigi.Target):
    """Exists when the warehouse holds a committed load of the date."""

    def __init__(self, date: dt.date) -> None:
        self.date = date

    def exists(self) -> bool:
        return self.date in db.loaded_dates(config.warehouse_url(), [self.date])


class RecommendationsTask(RecordedTask):
    """The date's recommendations and the courses dimension, loaded into the warehouse."""

    def requires(self) -> dict[str, luigi.Task]:
        return {"recommendations": TopRecommendations(self.date), "courses": CleanedCourses(self.date)}

    def output(self) -> WarehouseLoad:
        return WarehouseLoad(self.date)

    @classmethod
    def bulk_complete(cls, parameter_tuples: list[dt.date]) -> list[dt.date]:
        """Return the dates already loaded, with one warehouse query (used by RangeDaily)."""
        dates = list(parameter_tuples)
        loaded = db.loaded_dates(config.warehouse_url(), dates)
        return [date for date in dates if date in loaded]

    def run(self) -> None:
        inputs = self.requires()
        recommendations = self.read(inputs["recommendations"])
        courses = self.read(inputs["courses"])
        self.set_status_message(f"loading {len(recommendations):,} recommendations")
        url = config.warehouse_url()
        loaded = db.load_recommendations(url, self.date, recommendations, courses)
        self.facts.update(rows_in=len(recommendations), rows_out=loaded, warehouse=config.safe_url(url))
        self.set_progress_percentage(100)
