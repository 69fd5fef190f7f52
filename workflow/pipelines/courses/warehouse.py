"""The courses pipeline's warehouse: the load of a date (data and marker in one transaction), and its reads."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core import dated_load
from workflow.core.dated_load import Marker, load_once
from workflow.io.copy import copy_in, copy_in_binary
from workflow.io.postgres import connect, read_sql
from workflow.io.urls import safe_url
from workflow.pipelines.courses.schemas import RECOMMENDATION_LAYOUT

log = logging.getLogger("luigi-interface.workflow.courses.warehouse")

SQL = Path(__file__).parent / "sql"
# One row per loaded date, committed with its data: the completion marker RecommendationsTask checks.
MARKER = Marker("recommendation_loads", "recommendation_date")


def sql(name: str) -> str:
    """Return the text of this pipeline's `sql/<name>.sql`."""
    return read_sql(SQL, name)


def load_recommendations(
    url: str, date: dt.date, recommendations: pd.DataFrame, courses: pd.DataFrame, *, partial_day: bool = False
) -> int:
    """Replace the date's recommendations, upsert the courses and mark the date loaded, in one transaction.

    Return the number of rows loaded: 0 when another run loaded the date while this one waited. A
    partial day's load is marked partial, and the whole day's load replaces it.
    """

    def write(connection: Connection) -> None:
        newest = connection.execute(sa.text("SELECT max(recommendation_date) FROM recommendation_loads")).scalar()
        connection.exec_driver_sql("CREATE TEMPORARY TABLE staged_courses (LIKE courses) ON COMMIT DROP")
        copy_in(connection, "staged_courses", courses)
        # An older date's courses must not overwrite what the newest load wrote.
        connection.exec_driver_sql(sql("upsert_courses" if newest is None or date >= newest else "insert_new_courses"))
        _replace_partition(connection, date, recommendations)
        counts = {
            "n_recommendations": len(recommendations),
            "n_users": int(recommendations["user_id"].nunique()),
            "partial": partial_day,
        }
        connection.execute(sa.text(sql("record_load")), {"recommendation_date": date, **counts})

    # One load at a time: concurrent runs of a date queue on the lock instead of interleaving.
    if not load_once(url, date, MARKER, lock="workflow.load_recommendations", prepare_sql=sql("warehouse_schema"),
                     partial_day=partial_day, write=write):  # fmt: skip
        return 0
    log.info("loaded %d recommendations for %s into %s", len(recommendations), date, safe_url(url))
    return len(recommendations)


def _replace_partition(connection: Connection, date: dt.date, recommendations: pd.DataFrame) -> None:
    """Build the date's partition in a new table, then swap it for the old one: readers see one or the other.

    Loading a fresh table and indexing it afterwards is several times faster than deleting and
    re-inserting the rows of an indexed table.
    """
    if not isinstance(date, dt.date):
        raise TypeError(f"date must be a datetime.date, not {date!r}")
    # DDL takes no bound parameters: names and the date literal come from a date object, never from text.
    partition, loading = f"daily_recommendations_{date:%Y%m%d}", f"loading_{date:%Y%m%d}"
    day = f"DATE '{date.isoformat()}'"
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {loading}")
    connection.exec_driver_sql(f"CREATE TABLE {loading} (LIKE daily_recommendations)")
    connection.exec_driver_sql(f"ALTER TABLE {loading} ALTER recommendation_date SET DEFAULT {day}")
    copy_in_binary(connection, loading, recommendations, RECOMMENDATION_LAYOUT)
    connection.exec_driver_sql(
        f"ALTER TABLE {loading} ALTER recommendation_date DROP DEFAULT,"
        f" ADD PRIMARY KEY (recommendation_date, user_id, rank),"
        f" ADD CHECK (recommendation_date = {day})"  # lets ATTACH skip its validation scan
    )
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {partition}")
    connection.exec_driver_sql(f"ALTER TABLE {loading} RENAME TO {partition}")
    connection.exec_driver_sql(f"ALTER TABLE daily_recommendations ATTACH PARTITION {partition} FOR VALUES IN ({day})")


def loaded_dates(url: str, dates: list[dt.date], *, include_partial: bool = False) -> set[dt.date]:
    """Return those of the dates whose whole day's load (or any load, with include_partial) the warehouse holds."""
    return dated_load.loaded_dates(url, MARKER, dates, include_partial=include_partial)


def forget_load(url: str, date: dt.date) -> bool:
    """Remove the date's load marker so the next run recomputes and replaces it; return whether there was one."""
    return dated_load.forget_load(url, MARKER, date)


RECOMMENDATIONS_QUERY = """
SELECT title, rating FROM recommendations
INNER JOIN courses ON courses.course_id = recommendations.course_id
WHERE user_id=%(user_id)s AND rating>%(threshold)s
ORDER BY rating DESC
"""
# The case study's query, with the recommendation rank breaking ties between equal ratings.
RANKED_RECOMMENDATIONS_QUERY = RECOMMENDATIONS_QUERY.rstrip() + ", rank\n"


def recommended_titles(url: str, user_id: int, threshold: float) -> list[tuple[str, float]]:
    """Return (title, predicted rating) of the user's current recommendations above the threshold."""
    with connect(url) as connection:
        rows = connection.exec_driver_sql(RANKED_RECOMMENDATIONS_QUERY, {"user_id": user_id, "threshold": threshold})
        return [(title, rating) for title, rating in rows]


def loads(url: str) -> list[tuple[dt.date, int, int]]:
    """Return (date, recommendations, users) of every loaded date, oldest first."""
    with connect(url) as connection:
        query = "SELECT recommendation_date, n_recommendations, n_users FROM recommendation_loads ORDER BY 1"
        return [tuple(row) for row in connection.execute(sa.text(query))]


def some_users(url: str, n: int) -> list[int]:
    """Return the n lowest user ids that have current recommendations."""
    with connect(url) as connection:
        query = sa.text("SELECT DISTINCT user_id FROM recommendations ORDER BY user_id LIMIT :n")
        return list(connection.execute(query, {"n": n}).scalars())
