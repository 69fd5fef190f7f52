"""The Luigi task graph: one parquet target per step, the warehouse load last."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from luigi.target import FileAlreadyExists

from workflow import config, datedir, db, transforms

log = logging.getLogger("workflow.tasks")


class DayNotOverError(RuntimeError):
    """The date's day (UTC) has not ended, so its ratings are not all in yet."""


# Failures the project expects and explains in one line (bad input, an unreachable database, a date
# not over yet): logged and reported without a traceback. Anything else is a bug and keeps its traceback.
EXPECTED_FAILURES: tuple[type[Exception], ...] = (
    ConnectionError,
    db.SourceDataError,
    transforms.InvalidSourceDataError,
    datedir.DateInUseError,
    DayNotOverError,
)


class RecordedTask(luigi.Task):
    """A dated task that leaves a run record (`<output>/<date>/runs/<task>.json`) of what it did."""

    date = luigi.DateParameter()
    partial_day = luigi.BoolParameter(
        default=False,
        description="compute a day that has not ended (UTC) from the ratings so far; "
        "its targets go to <date>/partial/ and the first run after the day ends recomputes it",
    )

    @property
    def name(self) -> str:
        """Return the task's name in snake case, as used in file names."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    @property
    def folder(self) -> Path:
        """Return the folder of this run's targets, quarantine files and run records."""
        return date_folder(self.date, self.partial_day)

    # What the run observed (rows in and out, rows dropped, the source's state), for its run record.
    facts: dict[str, Any]

    def read(self, task: luigi.Task, columns: list[str] | None = None) -> pd.DataFrame:
        """Return the parquet output of a required task, its ids exact (counted in the run record's rows_in).

        Integer columns with nulls become nullable Int64, not float64 as pandas makes them: ids
        beyond 2**53 would lose digits. Arrow's buffers are released column by column as pandas
        takes them over (self_destruct), so the rows are never held twice.
        """
        table = pq.read_table(task.output().path, columns=columns)
        with_nulls = any(column.type == pa.int64() and column.null_count for column in table.columns)
        exact = {pa.int64(): pd.Int64Dtype()}.get if with_nulls else None
        frame = table.to_pandas(types_mapper=exact, self_destruct=True, split_blocks=True)
        del table
        self.facts["rows_in"] = self.facts.get("rows_in", 0) + len(frame)
        return frame

    def on_failure(self, exception: BaseException) -> str:
        """Return what the scheduler shows of a failure: one line for an expected one, the traceback otherwise."""
        if isinstance(exception, EXPECTED_FAILURES):
            return f"{type(exception).__name__}: {exception}"
        return super().on_failure(exception)


def date_folder(date: dt.date, partial_day: bool = False) -> Path:
    """Return the folder of a date's targets: `<output>/<date>/`, or its `partial/` subfolder for a day not over."""
    folder = config.date_dir(date)
    return folder / "partial" if partial_day else folder


def run_records_dirs(date: dt.date) -> list[Path]:
    """Return the folders of a date's run records (the whole day's, then a partial day's)."""
    return [date_folder(date, partial) / "runs" for partial in (False, True)]


def check_day_is_over(task: RecordedTask, url: str, source: config.source) -> None:
    """Refuse a date whose day (UTC) has not ended when ratings carry timestamps, unless a partial day was asked for.

    Without the timestamp column the source is a snapshot, and today's date is the only meaningful one.
    """
    end_of_day = dt.datetime.combine(task.date + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    column = source.rating_timestamp_column
    if task.partial_day or not column or end_of_day <= dt.datetime.now(dt.timezone.utc):
        return
    if db.has_column(url, source.rating_table, column, schema=source.schema):
        raise DayNotOverError(
            f"{task.date} is not over yet (UTC): its ratings are complete at {end_of_day:%Y-%m-%d %H:%M} UTC, "
            "when it can run; pass --partial-day to load the ratings so far (the first run after the day "
            "ends recomputes it)"
        )


@RecordedTask.event_handler(luigi.Event.START)
def start_run_record(task: RecordedTask) -> None:
    """Start the task's run record afresh, and hold the date's folder (removing files a killed run left there)."""
    task.facts = {}
    task.started = time.monotonic()
    datedir.use(task.date)


@RecordedTask.event_handler(luigi.Event.PROCESSING_TIME)
def write_run_record(task: RecordedTask, seconds: float) -> None:
    """Log how long the task took and write its run record."""
    log.info("%s took %.2f s", task, seconds)
    _write_record(task, "done", seconds, task.facts)


@RecordedTask.event_handler(luigi.Event.FAILURE)
def write_failure_record(task: RecordedTask, exception: BaseException) -> None:
    """Write the failed task's run record: its duration and the one-line error (URLs in it have no password)."""
    seconds = time.monotonic() - getattr(task, "started", time.monotonic())
    error = " ".join(f"{type(exception).__name__}: {exception}".split())
    _write_record(task, "failed", seconds, {**getattr(task, "facts", {}), "error": error})


def _write_record(task: RecordedTask, status: str, seconds: float, facts: dict[str, Any]) -> None:
    """Write a run record atomically: `<task>.json` for the last success, `<task>.failed.json` for the last failure."""
    record = {
        "task": type(task).__name__,
        "date": f"{task.date:%Y-%m-%d}",
        "status": status,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(seconds, 3),
        **({"partial_day": True} if task.partial_day else {}),
        **facts,
    }
    folder = task.folder / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task.name}{'.failed' if status == 'failed' else ''}.json"
    temporary = datedir.temporary_name(path)
    temporary.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(temporary, path)


class _OneLineFailures(logging.Filter):
    """Drop the traceback from luigi's log of an expected failure, keeping its one-line message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], EXPECTED_FAILURES):
            error = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()}: {type(error).__name__}: %s", (error,)
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("luigi-interface").addFilter(_OneLineFailures())


class ParquetTask(RecordedTask):
    """A step that writes one parquet file at `<output>/<date>/<task_name>.parquet`."""

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(self.folder / f"{self.name}.parquet"))

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
        path = self.folder / f"quarantined_{table}.parquet"
        temporary = datedir.temporary_name(path)
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
        check_day_is_over(self, config.source_url(), source)
        column = source.rating_timestamp_column or None
        end_of_day = dt.datetime.combine(self.date + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        # The stamp is read too (as `rated_at`, whatever the source calls it): the latest copy of a
        # re-rated pair is the rating, and rows without one are set aside.
        ratings, as_of = db.extract_table(
            config.source_url(), source.rating_table, db.RATING_SCHEMA,
            schema=source.schema, timestamp_column=column, before=end_of_day, timestamp_as=transforms.RATED_AT,
        )  # fmt: skip
        if as_of:
            self.facts["source"] = (
                f"as of {end_of_day:%Y-%m-%d %H:%M:%S} UTC ({source.rating_table}.{column} < that, or NULL)"
            )
        else:
            taken = dt.datetime.now(dt.timezone.utc)
            self.facts["source"] = f"snapshot taken {taken:%Y-%m-%d %H:%M:%S} UTC (no column {column!r})"
            log.warning("%s has no column %r: extracting the current snapshot, not the data as of %s",
                        source.rating_table, column, self.date)  # fmt: skip
        self.write(ratings)


class CleanedCourses(ParquetTask):
    """The courses with their programming language normalised; those with a missing or repeated id set aside."""

    def requires(self) -> ExtractedCourses:
        return self.clone(ExtractedCourses)

    def run(self) -> None:
        courses = self.read(self.requires())
        cleaned, quarantined = transforms.clean_courses(courses, config.rules().language_fill)
        self.set_aside("courses", len(courses), quarantined, transforms.COURSE_REASONS)
        self.write(cleaned)


class ValidRatings(ParquetTask):
    """The ratings that pass every validity rule; the others are set aside in quarantined_ratings.parquet."""

    def requires(self) -> dict[str, luigi.Task]:
        return {"ratings": self.clone(ExtractedRatings), "courses": self.clone(CleanedCourses)}

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
        return self.clone(ValidRatings)

    def run(self) -> None:
        self.write(transforms.average_course_ratings(self.read(self.requires())))


class CoursesToRecommend(ParquetTask):
    """Candidate (user, course) pairs: each user's best courses in each of their languages not rated in any row."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "ratings": self.clone(ValidRatings),
            "courses": self.clone(CleanedCourses),
            "averages": self.clone(AverageCourseRatings),
            "extracted": self.clone(ExtractedRatings),  # a course rated by any row, valid or not, is rated
        }

    def run(self) -> None:
        inputs = self.requires()
        candidates = transforms.courses_to_recommend(
            self.read(inputs["ratings"], ["user_id", "course_id"]),
            self.read(inputs["courses"], ["course_id", "programming_language"]),
            self.read(inputs["averages"]),
            per_language=config.rules().recommendations_per_user,
            rated=self.read(inputs["extracted"], ["user_id", "course_id"]),
        )
        self.write(candidates)


class TopRecommendations(ParquetTask):
    """Each user's top recommendations, ranked from 1."""

    def requires(self) -> CoursesToRecommend:
        return self.clone(CoursesToRecommend)

    def run(self) -> None:
        candidates = self.read(self.requires())
        self.write(transforms.top_recommendations(candidates, config.rules().recommendations_per_user))


class WarehouseLoad(luigi.Target):
    """Exists when the warehouse holds a committed load of the date (a partial day's counts only for partial runs)."""

    def __init__(self, date: dt.date, partial_day: bool = False) -> None:
        self.date = date
        self.partial_day = partial_day

    def exists(self) -> bool:
        return self.date in db.loaded_dates(config.warehouse_url(), [self.date], include_partial=self.partial_day)


class RecommendationsTask(RecordedTask):
    """The date's recommendations and the courses dimension, loaded into the warehouse."""

    # Set when the completeness check could not reach the warehouse: the run then fails at once, in run().
    unreachable: ConnectionError | None = None

    def requires(self) -> dict[str, luigi.Task]:
        if self.unreachable is not None:
            return {}  # nothing upstream is worth computing for a warehouse that cannot be reached
        return {"recommendations": self.clone(TopRecommendations), "courses": self.clone(CleanedCourses)}

    def output(self) -> WarehouseLoad:
        return WarehouseLoad(self.date, self.partial_day)

    def complete(self) -> bool:
        """Return whether the date is loaded; an unreachable warehouse makes the task fail in run(), with its reason."""
        self.unreachable = None
        try:
            return super().complete()
        except ConnectionError as error:
            self.unreachable = error
            return False

    @classmethod
    def bulk_complete(cls, parameter_tuples: list[dt.date]) -> list[dt.date]:
        """Return the dates already loaded, with one warehouse query (used by RangeDaily)."""
        dates = list(parameter_tuples)
        try:
            loaded = db.loaded_dates(config.warehouse_url(), dates)
        except ConnectionError:
            return []  # each date's own check then fails its task with the reason
        return [date for date in dates if date in loaded]

    def run(self) -> None:
        if self.unreachable is not None:
            raise self.unreachable
        inputs = self.requires()
        recommendations = self.read(inputs["recommendations"])
        courses = self.read(inputs["courses"])
        self.set_status_message(f"loading {len(recommendations):,} recommendations")
        url = config.warehouse_url()
        loaded = db.load_recommendations(url, self.date, recommendations, courses, partial_day=self.partial_day)
        self.facts.update(rows_in=len(recommendations), rows_out=loaded, warehouse=config.safe_url(url))
        self.set_progress_percentage(100)
