"""The courses pipeline's Luigi tasks: from the source's courses and ratings to the warehouse's recommendations.

Each run() imports the schemas and warehouse code it uses (pyarrow, pandas): `luigi --module workflow` imports
every task, and a run that finds its targets complete never needs them.
"""

from __future__ import annotations

import json
import logging

import luigi

from workflow import config, databases
from workflow.core.dated_load import DatedLoadTask
from workflow.core.pipeline import Marker
from workflow.core.tasks import ParquetTask
from workflow.io.urls import safe_url
from workflow.pipelines.courses import PIPELINE, QUALITY_MARKER

log = logging.getLogger("luigi-interface.workflow.courses")

METHODS = ("language_rule", "als")


class CoursesStep(ParquetTask):
    """A step of the courses pipeline, writing one parquet target of the date."""

    pipeline = PIPELINE


class ExtractedCourses(CoursesStep):
    """The source courses table as extracted on the date (the catalogue has no history: a snapshot)."""

    def run(self) -> None:
        from workflow.pipelines.courses.schemas import COURSES_SCHEMA  # noqa: PLC0415

        self.set_status_message("extracting courses")
        source = config.source()
        # Streamed into the target (with pandas, from COPY into its row groups), which appears whole or not at all.
        self.extract(self.source_url(), source.courses_table, COURSES_SCHEMA, schema=source.schema)


class ExtractedRatings(CoursesStep):
    """The source rating table as it stood at the end of the date (UTC), or a snapshot when it has no timestamps."""

    # Run before the other steps that are ready: the largest read of the source comes first, and a Spark
    # session starts while it streams, instead of before the courses are cleaned.
    priority = 1

    def run(self) -> None:
        from workflow.pipelines.courses.schemas import RATING_SCHEMA  # noqa: PLC0415
        from workflow.rules.ratings import RATED_AT  # noqa: PLC0415

        self.set_status_message("extracting ratings")
        source = config.source()
        # The stamp is read too (as `rated_at`, whatever the source calls it): the latest copy of a
        # re-rated pair is the rating, and rows without one are set aside.
        # Streamed into the target (with pandas, from COPY into its row groups), which appears whole or not at all.
        self.extract_as_of(
            self.source_url(), source.rating_table, RATING_SCHEMA,
            schema=source.schema, column=source.rating_timestamp_column, stamp_as=RATED_AT, what="ratings",
        )  # fmt: skip


class CleanedCourses(CoursesStep):
    """The courses with their programming language normalised; those with a missing or repeated id set aside."""

    def requires(self) -> ExtractedCourses:
        return self.clone(ExtractedCourses)

    def run(self) -> None:
        from workflow.pipelines.courses.schemas import COURSE_REASONS  # noqa: PLC0415

        courses = self.read(self.requires())
        cleaned, quarantined = self.rules.clean_courses(courses, config.rules().language_fill)
        self.set_aside("courses", self.facts["rows_in"], quarantined, COURSE_REASONS)
        self.write(cleaned)


class ValidRatings(CoursesStep):
    """The ratings that pass every validity rule; the others are set aside in quarantined_ratings.parquet."""

    def requires(self) -> dict[str, luigi.Task]:
        return {"ratings": self.clone(ExtractedRatings), "courses": self.clone(CleanedCourses)}

    def run(self) -> None:
        from workflow.pipelines.courses.schemas import RATING_ROLES  # noqa: PLC0415
        from workflow.rules.ratings import UNCOUNTED_REASONS  # noqa: PLC0415

        ratings = self.read(self.requires()["ratings"])
        n_ratings = self.facts["rows_in"]
        course_ids = self.read(self.requires()["courses"], ["course_id"])
        settings = config.rules()
        valid, quarantined = self.rules.validate_ratings(ratings, course_ids, settings.min_rating, settings.max_rating)
        del ratings  # the valid rows are written without the whole extract beside them
        self.set_aside("ratings", n_ratings, quarantined, RATING_ROLES.reasons, UNCOUNTED_REASONS)
        self.write(valid)


class AverageCourseRatings(CoursesStep):
    """Each rated course's mean rating."""

    def requires(self) -> ValidRatings:
        return self.clone(ValidRatings)

    def run(self) -> None:
        self.write(self.rules.average_course_ratings(self.read(self.requires(), ["course_id", "rating"])))


class CoursesToRecommend(CoursesStep):
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
        candidates = self.rules.courses_to_recommend(
            self.read(inputs["ratings"], ["user_id", "course_id"]),
            self.read(inputs["courses"], ["course_id", "programming_language"]),
            self.read(inputs["averages"]),
            per_language=config.rules().recommendations_per_user,
            rated=self.read(inputs["extracted"], ["user_id", "course_id"]),
        )
        self.write(candidates)


class TopRecommendations(CoursesStep):
    """Each user's top recommendations, ranked from 1."""

    def requires(self) -> CoursesToRecommend:
        return self.clone(CoursesToRecommend)

    def run(self) -> None:
        candidates = self.read(self.requires())
        self.write(self.rules.top_recommendations(candidates, config.rules().recommendations_per_user))


def factorization() -> dict[str, float | int]:
    """Return the factorization's settings ([recommender]) as the rules take them, with the rating scale."""
    settings, scale = config.recommender(), config.rules()
    return {
        "per_user": scale.recommendations_per_user, "rank": settings.rank, "regularization": settings.regularization,
        "iterations": settings.iterations, "seed": settings.seed, "min_rating": scale.min_rating,
        "max_rating": scale.max_rating,
    }  # fmt: skip


class FactorizedRecommendations(CoursesStep):
    """Each user's top recommendations by the rating that matrix factorization (alternating least squares) predicts,
    ranked from 1; a user without a valid rating keeps the case study's rule's."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "ratings": self.clone(ValidRatings),
            "extracted": self.clone(ExtractedRatings),  # a course rated by any row, valid or not, is rated
            "rule": self.clone(TopRecommendations),
        }

    def run(self) -> None:
        inputs = self.requires()
        self.set_status_message("factorizing the ratings")
        top, fallback_users = self.rules.als_recommendations(
            self.read(inputs["ratings"], ["user_id", "course_id", "rating"]),
            self.read(inputs["extracted"], ["user_id", "course_id"]),
            self.read(inputs["rule"]),
            **factorization(),
        )
        self.facts["fallback_users"] = fallback_users
        self.write(top)


class RecommendationQuality(CoursesStep):
    """Both methods' offline quality on the date: each user's newest valid rating held out, the rest fitted, and the
    held-out ratings predicted and looked for in the users' lists (one row per method)."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "ratings": self.clone(ValidRatings),
            "extracted": self.clone(ExtractedRatings),
            "courses": self.clone(CleanedCourses),
        }

    def run(self) -> None:
        import pandas as pd  # noqa: PLC0415
        import pyarrow as pa  # noqa: PLC0415

        inputs = self.requires()
        self.set_status_message("evaluating both methods")
        quality = self.rules.recommendation_quality(
            self.read(inputs["ratings"]),
            self.read(inputs["extracted"], ["user_id", "course_id"]),
            self.read(inputs["courses"], ["course_id", "programming_language"]),
            relevant=config.recommender().relevant,
            **factorization(),
        )
        figures = quality if isinstance(quality, pd.DataFrame) else quality.toPandas()
        self.facts["quality"] = json.loads(figures.to_json(orient="records"))  # in the run record and the history
        self.write(pa.Table.from_pandas(figures, preserve_index=False))


class RecommendationsTask(DatedLoadTask):
    """The date's recommendations and the courses dimension, loaded into the warehouse."""

    pipeline = PIPELINE
    method = luigi.OptionalChoiceParameter(
        default=None, choices=METHODS, var_type=str,
        description="language_rule (the case study's rule) or als (matrix factorization); default: [recommender] "
        "method. A date is loaded once, by whichever method: `invalidate` it to load it again with another",
    )  # fmt: skip

    @property
    def chosen_method(self) -> str:
        """Return the method of the recommendations: --method, else [recommender] method."""
        return self.method or config.recommender().method

    def requires(self) -> dict[str, luigi.Task]:
        if self.unreachable is not None:
            return {}
        top = FactorizedRecommendations if self.chosen_method == "als" else TopRecommendations
        return {"recommendations": self.clone(top), "courses": self.clone(CleanedCourses)}

    def run(self) -> None:
        from workflow.pipelines.courses import warehouse  # noqa: PLC0415

        self.raise_if_unreachable()
        inputs = self.requires()
        # The recommendations are streamed from their parquet file (or folder) into COPY, never read whole.
        recommendations = inputs["recommendations"].output().path
        n_recommendations = warehouse.recommendation_rows(recommendations)
        courses = self.read(inputs["courses"])
        self.set_status_message(f"loading {n_recommendations:,} recommendations")
        url = databases.warehouse_url()
        loaded = warehouse.load_recommendations(
            url, self.date, recommendations, courses, partial_day=self.partial_day, figures=self.figures(),
            method=self.chosen_method, fallback_users=self.fallback_users(),
        )  # fmt: skip
        self.facts.update(rows_in=n_recommendations, rows_out=loaded, warehouse=safe_url(url),
                          method=self.chosen_method)  # fmt: skip
        self.set_progress_percentage(100)

    def fallback_users(self) -> int | None:
        """Return how many users the factorization left to the case study's rule (None for the rule itself)."""
        if self.chosen_method != "als":
            return None
        record = self.folder / "runs" / "factorized_recommendations.json"
        return json.loads(record.read_text()).get("fallback_users") if record.exists() else None


class RecommendationQualityTask(DatedLoadTask):
    """The date's offline quality figures of both methods, in the warehouse's recommendation_quality table (its rows
    are the date's marker: they commit whole or not at all)."""

    pipeline = PIPELINE

    @classmethod
    def load_marker(cls) -> Marker:
        return QUALITY_MARKER

    @classmethod
    def writes(cls) -> tuple[str, ...]:
        return ("public.recommendation_quality",)

    def requires(self) -> dict[str, luigi.Task]:
        return {} if self.unreachable is not None else {"quality": self.clone(RecommendationQuality)}

    def run(self) -> None:
        from workflow.pipelines.courses import warehouse  # noqa: PLC0415

        self.raise_if_unreachable()
        figures = self.read(self.requires()["quality"])
        url = databases.warehouse_url()
        loaded = warehouse.load_quality(url, self.date, figures, partial_day=self.partial_day, engine=self.engine.name,
                                        run_id=self.run_id)  # fmt: skip
        self.facts.update(rows_out=loaded, warehouse=safe_url(url))


# Every task users may run by name, the load of a date first (the pipeline's declaration reads this).
TASKS = (
    RecommendationsTask, ExtractedCourses, ExtractedRatings, CleanedCourses, ValidRatings, AverageCourseRatings,
    CoursesToRecommend, TopRecommendations, FactorizedRecommendations, RecommendationQuality,
    RecommendationQualityTask,
)  # fmt: skip
# The dated loads DailyPipelines runs beside the recommendations' load.
ALSO_DAILY = (RecommendationQualityTask,)
