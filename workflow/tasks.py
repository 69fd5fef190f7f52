"""The Luigi task graph: one parquet target per step, the warehouse load last."""

from __future__ import annotations

import logging
import re

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workflow import config, db, transforms

log = logging.getLogger("workflow.tasks")


@luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)
def log_duration(task: luigi.Task, seconds: float) -> None:
    """Log how long each task's run took."""
    log.info("%s took %.2f s", task, seconds)


class ParquetTask(luigi.Task):
    """A step that writes one parquet file at `<output>/<date>/<snake_case_task_name>.parquet`."""

    date = luigi.DateParameter()

    def output(self) -> luigi.LocalTarget:
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()
        return luigi.LocalTarget(str(config.output_dir() / f"{self.date:%Y-%m-%d}" / f"{name}.parquet"))

    def read(self, task: luigi.Task, columns: list[str] | None = None) -> pd.DataFrame:
        """Return the parquet output of a required task."""
        return pd.read_parquet(task.output().path, columns=columns)

    def write(self, table: pa.Table | pd.DataFrame) -> None:
        """Write the target atomically: it appears whole under its final name or not at all."""
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        with self.output().temporary_path() as temporary_path:
            pq.write_table(table, temporary_path)
        self.set_status_message(f"wrote {table.num_rows:,} rows")


class ExtractedCourses(ParquetTask):
    """The source `courses` table as extracted on the date."""

    def run(self) -> None:
        self.write(db.extract_table(config.source_url(), "courses", db.COURSES_SCHEMA))


class ExtractedRatings(ParquetTask):
    """The source `rating` table as extracted on the date."""

    def run(self) -> None:
        self.write(db.extract_table(config.source_url(), "rating", db.RATING_SCHEMA))


class CleanedCourses(ParquetTask):
    """The courses with their programming language normalised."""

    def requires(self) -> ExtractedCourses:
        return ExtractedCourses(self.date)

    def run(self) -> None:
        courses = self.read(self.requires())
        self.write(transforms.clean_courses(courses, config.rules().language_fill))


class ValidRatings(ParquetTask):
    """The ratings that pass every validity rule; dropped rows are counted in the log by reason."""

    def requires(self) -> dict[str, luigi.Task]:
        return {"ratings": ExtractedRatings(self.date), "courses": CleanedCourses(self.date)}

    def run(self) -> None:
        ratings = self.read(self.requires()["ratings"])
        course_ids = self.read(self.requires()["courses"], ["course_id"])["course_id"]
        rules = config.rules()
        valid, dropped = transforms.validate_ratings(ratings, course_ids, rules.min_rating, rules.max_rating)
        log.info(
            "rating: %d rows, %d valid, dropped %s",
            len(ratings),
            len(valid),
            ", ".join(f"{n} {reason}" for reason, n in dropped.items()),
        )
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

    def __init__(self, date) -> None:
        self.date = date

    def exists(self) -> bool:
        return db.is_loaded(config.warehouse_url(), self.date)


class RecommendationsTask(luigi.Task):
    """The date's recommendations and the courses dimension, loaded into the warehouse."""

    date = luigi.DateParameter()

    def requires(self) -> dict[str, luigi.Task]:
        return {"recommendations": TopRecommendations(self.date), "courses": CleanedCourses(self.date)}

    def output(self) -> WarehouseLoad:
        return WarehouseLoad(self.date)

    def run(self) -> None:
        inputs = self.requires()
        recommendations = pd.read_parquet(inputs["recommendations"].output().path)
        courses = pd.read_parquet(inputs["courses"].output().path)
        self.set_status_message(f"loading {len(recommendations):,} recommendations")
        db.load_recommendations(config.warehouse_url(), self.date, recommendations, courses)
