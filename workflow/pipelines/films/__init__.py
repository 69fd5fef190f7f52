"""The film pipeline: Pagila's films with their rental rate parts, ratings and recommendations, into store.film.

This module is the pipeline's declaration (workflow.registry lists it); it imports no luigi and no pyspark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from types import ModuleType

from workflow.core.pipeline import Marker, Pipeline, Source


def _tasks() -> Sequence[type]:
    from workflow.pipelines.films import tasks  # noqa: PLC0415  (luigi: not for the read server)

    return tasks.TASKS


def _pandas_rules() -> ModuleType:
    from workflow.pipelines.films import rules  # noqa: PLC0415

    return rules


def _spark_rules() -> ModuleType:
    from workflow.pipelines.films import spark_rules  # noqa: PLC0415  (pyspark is an optional extra)

    return spark_rules


def _summary(url: str, n: int) -> list[str]:
    from workflow.pipelines.films import warehouse  # noqa: PLC0415

    return warehouse.summary(url, n)


def _remove_date(url: str, date: dt.date, dry_run: bool) -> int | None:
    from workflow.pipelines.films import warehouse  # noqa: PLC0415

    return warehouse.remove_date(url, date, dry_run)


PIPELINE = Pipeline(
    name="films",
    tasks=_tasks,
    marker=Marker("film_loads", "load_date", schema="store"),
    rules={"pandas": _pandas_rules, "spark": _spark_rules},
    source=Source("FILMS_DATABASE_URL", "films_url", "pagila"),
    owns=("store.film_daily", "store.film_loads", "store.film"),
    loads_into=("store.film_daily", "store.film_loads"),
    summary=_summary,
    remove_date=_remove_date,
)
