"""Daily course recommendations: a Luigi task graph from the application database to the warehouse."""

from __future__ import annotations

import logging

import luigi.tools.range  # noqa: F401  (makes RangeDaily resolvable from `luigi --module workflow`)

from workflow import config, db
from workflow.tasks import (
    AverageCourseRatings,
    CleanedCourses,
    CoursesToRecommend,
    ExtractedCourses,
    ExtractedRatings,
    RecommendationsTask,
    TopRecommendations,
    ValidRatings,
)

_log = logging.getLogger("workflow")
if not _log.handlers:  # luigi configures only its own loggers: show ours too
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(logging.INFO)


def recommendations_for_user(user_id: int, threshold: float = 4.5) -> list[str]:
    """Return the titles of the user's current recommendations rated above the threshold, best first."""
    return [title for title, _ in db.recommended_titles(config.warehouse_url(), user_id, threshold)]


__all__ = [
    "AverageCourseRatings",
    "CleanedCourses",
    "CoursesToRecommend",
    "ExtractedCourses",
    "ExtractedRatings",
    "RecommendationsTask",
    "TopRecommendations",
    "ValidRatings",
    "recommendations_for_user",
]
