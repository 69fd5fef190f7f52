"""The courses pipeline's warehouse: the load of a date (data and marker in one transaction), and its reads."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core.dated_load import NO_FIGURES, LoadFigures, load_once, remove_load
from workflow.io.load import copy_in, copy_in_binary
from workflow.io.postgres import connect, read_sql
from workflow.io.urls import safe_url
from workflow.pipelines.courses import PIPELINE, QUALITY_MARKER
from workflow.pipelines.courses.schemas import RECOMMENDATION_COLUMNS, RECOMMENDATION_LAYOUT

log = logging.getLogger("luigi-interface.workflow.courses.warehouse")

SQL = Path(__file__).parent / "sql"
# The recommendations COPYed at a time (11 MB laid out for COPY): larger batches cost memory, not less time.
BATCH_ROWS = 250_000


def sql(name: str) -> str:
    """Return the text of this pipeline's `sql/<name>.sql`."""
    return read_sql(SQL, name)


def load_recommendations(
    url: str,
    date: dt.date,
    recommendations: str | Path,
    courses: pd.DataFrame,
    *,
    partial_day: bool = False,
    figures: LoadFigures = NO_FIGURES,
    method: str = "language_rule",
    fallback_users: int | None = None,
) -> int:
    """Replace the date's recommendations, upsert the courses and mark the date loaded, in one transaction.

    The recommendations are a parquet file or a folder of part files, streamed into COPY a batch at
    a time, so memory stays bounded whatever their number. Return the number of rows loaded: 0 when
    another run loaded the date while this one waited. A partial day's load is marked partial, and
    the whole day's load replaces it. The marker row records the date's figures from its run.
    """
    loaded = 0

    def write(connection: Connection) -> None:
        nonlocal loaded
        newest = connection.execute(sa.text("SELECT max(recommendation_date) FROM recommendation_loads")).scalar()
        connection.exec_driver_sql("CREATE TEMPORARY TABLE staged_courses (LIKE courses) ON COMMIT DROP")
        copy_in(connection, "staged_courses", courses)
        # An older date's courses must not overwrite what the newest load wrote.
        connection.exec_driver_sql(sql("upsert_courses" if newest is None or date >= newest else "insert_new_courses"))
        loaded, users = _replace_partition(connection, date, recommendations)
        counts = {"n_recommendations": loaded, "n_users": users, "partial": partial_day, "method": method,
                  "n_fallback": fallback_users}  # fmt: skip
        connection.execute(sa.text(sql("record_load")), {"recommendation_date": date, **counts, **figures.row()})

    # One load at a time: concurrent runs of a date queue on the lock instead of interleaving.
    if not load_once(url, date, PIPELINE.marker, prepare_sql=sql("warehouse_schema"), partial_day=partial_day,
                     write=write):  # fmt: skip
        return 0
    log.info("loaded %d recommendations for %s into %s", loaded, date, safe_url(url))
    return loaded


QUALITY_COLUMNS = ("method", "n_users", "n_held_out", "n_predicted", "rmse", "mae", "n_relevant", "hit_rate", "ndcg",
                   "coverage", "personal_share", "n_fallback")  # fmt: skip


def load_quality(
    url: str, date: dt.date, figures: pd.DataFrame, *, partial_day: bool, engine: str, run_id: str | None
) -> int:
    """Replace the date's quality figures (one row per method) in one transaction; return the rows written, 0 when
    another run wrote them meanwhile."""
    rows = [
        {name: (None if pd.isna(value) else value) for name, value in row.items()}
        for row in figures[list(QUALITY_COLUMNS)].astype(object).to_dict("records")
    ]

    def write(connection: Connection) -> None:
        connection.execute(sa.text("DELETE FROM recommendation_quality WHERE recommendation_date = :d"), {"d": date})
        common = {"recommendation_date": date, "partial": partial_day, "engine": engine, "run_id": run_id}
        connection.execute(sa.text(sql("record_quality")), [{**row, **common} for row in rows])

    if not load_once(url, date, QUALITY_MARKER, prepare_sql=sql("warehouse_schema"), partial_day=partial_day,
                     write=write):  # fmt: skip
        return 0
    return len(rows)


def quality(url: str) -> list[dict]:
    """Return every date's quality figures, oldest first, as dicts (none before the first evaluation)."""
    with connect(url) as connection:
        if not QUALITY_MARKER.exists(connection):
            return []
        query = "SELECT * FROM recommendation_quality ORDER BY recommendation_date, method"
        return [dict(row) for row in connection.execute(sa.text(query)).mappings()]


def _parts(path: str | Path) -> list[str]:
    """Return the data files of a parquet file or folder, skipping names that start with `_` or `.` (`_SUCCESS`)."""
    return ds.dataset(path, format="parquet", ignore_prefixes=["_", "."]).files


def recommendation_rows(path: str | Path) -> int:
    """Return the number of recommendations in a parquet file or folder, from the files' footers."""
    return sum(pq.read_metadata(part).num_rows for part in _parts(path))


def recommendation_batches(path: str | Path) -> Iterator[pa.RecordBatch]:
    """Yield the recommendation columns of a parquet file or folder, BATCH_ROWS rows at a time at most."""
    for part in _parts(path):
        with pq.ParquetFile(part) as parquet_file:
            yield from parquet_file.iter_batches(batch_size=BATCH_ROWS, columns=RECOMMENDATION_COLUMNS)


def _replace_partition(connection: Connection, date: dt.date, recommendations: str | Path) -> tuple[int, int]:
    """Build the date's partition in a new table, then swap it for the old one: readers see one or the other.

    Loading a fresh table and indexing it afterwards is several times faster than deleting and
    re-inserting the rows of an indexed table. Return the number of rows and of distinct users loaded.
    """
    if not isinstance(date, dt.date):
        raise TypeError(f"date must be a datetime.date, not {date!r}")
    # DDL takes no bound parameters: names and the date literal come from a date object, never from text.
    partition, loading = f"daily_recommendations_{date:%Y%m%d}", f"loading_{date:%Y%m%d}"
    day = f"DATE '{date.isoformat()}'"
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {loading}")
    connection.exec_driver_sql(f"CREATE TABLE {loading} (LIKE daily_recommendations)")
    connection.exec_driver_sql(f"ALTER TABLE {loading} ALTER recommendation_date SET DEFAULT {day}")
    rows, users = 0, []
    for batch in recommendation_batches(recommendations):
        copy_in_binary(connection, loading, batch, RECOMMENDATION_LAYOUT)
        rows += batch.num_rows
        users.append(pc.unique(batch.column("user_id")))  # small: a user's rows are together
    connection.exec_driver_sql(
        f"ALTER TABLE {loading} ALTER recommendation_date DROP DEFAULT,"
        f" ADD PRIMARY KEY (recommendation_date, user_id, rank),"
        f" ADD CHECK (recommendation_date = {day})"  # lets ATTACH skip its validation scan
    )
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {partition}")
    connection.exec_driver_sql(f"ALTER TABLE {loading} RENAME TO {partition}")
    connection.exec_driver_sql(f"ALTER TABLE daily_recommendations ATTACH PARTITION {partition} FOR VALUES IN ({day})")
    return rows, _count_distinct(users)


def _count_distinct(chunks: list[pa.Array]) -> int:
    """Return the number of distinct values in integer chunks (a sort: lighter than one hash table of them all)."""
    values = np.concatenate([chunk.to_numpy() for chunk in chunks]) if chunks else np.empty(0, np.int64)
    values.sort()
    return int(np.count_nonzero(values[1:] != values[:-1])) + (len(values) > 0)


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


def summary(url: str, n_users: int) -> list[str]:
    """Return the lines `python -m workflow summary` prints: every loaded date, and a few users' recommendations."""
    with connect(url) as connection:
        if not PIPELINE.marker.exists(connection):
            return ["courses: nothing loaded"]
    lines = [f"loaded {date}: {rows:,} recommendations for {users:,} users" for date, rows, users in loads(url)]
    for user_id in some_users(url, n_users):
        lines.append(f"user {user_id}:")
        lines += [f"  {rating:.3f}  {title}" for title, rating in recommended_titles(url, user_id, 0)]
    return lines


def remove_date(url: str, date: dt.date, dry_run: bool = False) -> int | None:
    """Return the recommendations of the date that retention removed (its partition dropped with its load row, in one
    transaction under the load's lock; a dry run only counts them), or None when it is not loaded or is the newest."""
    if not isinstance(date, dt.date):
        raise TypeError(f"date must be a datetime.date, not {date!r}")
    # DDL takes no bound parameters: the partition's name comes from a date object, never from text.
    partition = f"daily_recommendations_{date:%Y%m%d}"

    def remove(connection: Connection) -> int:
        rows = connection.execute(sa.text(sql("recommendations_of_date")), {"recommendation_date": date}).scalar()
        if not dry_run:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {partition}")
            if QUALITY_MARKER.exists(connection):
                connection.execute(sa.text("DELETE FROM recommendation_quality WHERE recommendation_date = :d"),
                                   {"d": date})  # fmt: skip
        return rows

    return remove_load(url, date, PIPELINE.marker, remove=remove, dry_run=dry_run)
