"""Course recommendations: the top-3 courses per user, from the application's courses and ratings to the warehouse.

This module is the pipeline's declaration (workflow.registry lists it); it imports no luigi and no pyspark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from types import ModuleType

from workflow.core.pipeline import Marker, Pipeline, Source


def _tasks() -> Sequence[type]:
    from workflow.pipelines.courses import tasks  # noqa: PLC0415  (luigi: not for the read server)

    return tasks.TASKS


def _also_daily() -> Sequence[type]:
    from workflow.pipelines.courses import tasks  # noqa: PLC0415

    return tasks.ALSO_DAILY


def _pandas_rules() -> ModuleType:
    from workflow.pipelines.courses import rules  # noqa: PLC0415

    return rules


def _spark_rules() -> ModuleType:
    from workflow.pipelines.courses import spark_rules  # noqa: PLC0415  (pyspark is an optional extra)

    return spark_rules


def _summary(url: str, n: int) -> list[str]:
    from workflow.pipelines.courses import warehouse  # noqa: PLC0415

    return warehouse.summary(url, n)


def _remove_date(url: str, date: dt.date, dry_run: bool) -> int | None:
    from workflow.pipelines.courses import warehouse  # noqa: PLC0415

    return warehouse.remove_date(url, date, dry_run)


# The offline evaluation's figures: a date's rows (one per method) are the marker of its load, committed together.
QUALITY_MARKER = Marker("recommendation_quality", "recommendation_date")

PIPELINE = Pipeline(
    name="courses",
    tasks=_tasks,
    marker=Marker("recommendation_loads", "recommendation_date"),
    rules={"pandas": _pandas_rules, "spark": _spark_rules},
    source=Source("SOURCE_DATABASE_URL", "source_url", "datacamp_application"),
    owns=(
        "public.courses",
        "public.daily_recommendations",
        "public.recommendation_loads",
        "public.recommendations",
        "public.recommendation_quality",
    ),
    loads_into=("public.daily_recommendations", "public.courses", "public.recommendation_loads"),
    summary=_summary,
    remove_date=_remove_date,
    also_daily=_also_daily,
)
