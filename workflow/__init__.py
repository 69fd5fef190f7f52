"""Daily course recommendations as a Luigi task graph: `luigi --module workflow RecommendationsTask` finds them here.

The pipelines' tasks are registered with luigi when this package is imported with luigi loaded (as
`luigi --module workflow` does); otherwise they load on first use, so the read server, which never
imports luigi, lives in the same package.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPOSITORY_CONFIG = Path(__file__).resolve().parent.parent / "luigi.cfg"

# Every task users run by name, and the module that defines it.
TASKS = {
    name: "workflow.pipelines.courses.tasks"
    for name in (
        "AverageCourseRatings",
        "CleanedCourses",
        "CoursesToRecommend",
        "ExtractedCourses",
        "ExtractedRatings",
        "RecommendationsTask",
        "TopRecommendations",
        "ValidRatings",
    )
}
TASKS.update(
    {
        name: "workflow.pipelines.films.tasks"
        for name in (
            "ExtractedFilms",
            "ExtractedRentals",
            "FilmRatings",
            "FilmRecommendations",
            "FilmRentalRates",
            "FilmsTask",
            "SourceTable",
        )
    }
)
TASKS["DailyPipelines"] = "workflow.pipelines.daily"  # both pipelines of a date (crontab, RangeDaily)
__all__ = [*TASKS, "recommendations_for_user"]  # noqa: PLE0604


def use_repository_config() -> None:
    """Make the repository's luigi.cfg apply wherever a command starts (LUIGI_CONFIG_PATH keeps the last word)."""
    import luigi  # noqa: PLC0415

    if REPOSITORY_CONFIG.exists() and Path("luigi.cfg").resolve() != REPOSITORY_CONFIG:
        luigi.configuration.get_config().add_config_path(str(REPOSITORY_CONFIG))


def recommendations_for_user(user_id: int, threshold: float = 4.5) -> list[str]:
    """Return the titles of the user's current recommendations rated above the threshold, best first."""
    from workflow import databases  # noqa: PLC0415
    from workflow.pipelines.courses import warehouse  # noqa: PLC0415

    return [title for title, _ in warehouse.recommended_titles(databases.warehouse_url(), user_id, threshold)]


def __getattr__(name: str) -> object:
    if name in TASKS:
        return getattr(importlib.import_module(TASKS[name]), name)
    raise AttributeError(f"module 'workflow' has no attribute {name!r}")


if "luigi" in sys.modules:  # started by luigi: register every task so `--module workflow` finds them by name
    use_repository_config()
    import luigi.tools.range  # noqa: F401  (RangeDaily and friends)

    for _module in sorted(set(TASKS.values())):
        importlib.import_module(_module)
