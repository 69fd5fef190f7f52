"""Database access: connections, COPY-based extraction into Arrow, and the warehouse load."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from workflow import config
from workflow.config import safe_url

log = logging.getLogger("workflow.db")

SQL_DIR = Path(__file__).parent / "sql"

COURSES_SCHEMA = pa.schema(
    [
        ("course_id", pa.int64()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("programming_language", pa.string()),
    ]
)
RATING_SCHEMA = pa.schema([("user_id", pa.int64()), ("course_id", pa.int64()), ("rating", pa.float64())])


class SourceDataError(RuntimeError):
    """The source database lacks a table or column the workflow needs, or holds values it cannot read."""


@cache
def sql(name: str) -> str:
    """Return the text of `workflow/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    """Yield a connection inside a transaction that commits on success; each call opens its own engine."""
    engine: Engine = sa.create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": config.connection().timeout}
    )
    try:
        with _connect_with_retries(engine, url) as connection, connection.begin():
            yield connection
    except sa.exc.OperationalError as error:
        raise ConnectionError(f"database {safe_url(url)}: {_reason(error)}") from None
    finally:
        engine.dispose()


# What a server says while it is starting, stopping or restarting: worth waiting for. Anything else
# (a wrong password, an unknown database, role or host, a timeout) will not heal by itself.
TRANSIENT_FAILURES = (
    "connection refused",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "server closed the connection unexpectedly",
    "connection reset",
    "sorry, too many clients already",
    "terminating connection due to administrator command",
)


def _reason(error: sa.exc.DBAPIError) -> str:
    """Return the server's or driver's reason for a failure as one line, without libpq's framing."""
    text = " ".join(str(error.orig).split())
    text = re.sub(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: ', "", text)
    text = re.sub(r"\s*Is the server running on that host and accepting TCP/IP connections\?", "", text)
    return text.replace("FATAL: ", "").strip()


def _connect_with_retries(engine: Engine, url: str) -> Connection:
    """Connect, retrying only failures that may heal (a server starting or restarting) ([connection] in luigi.cfg)."""
    settings = config.connection()
    for attempt in range(1, settings.attempts + 1):
        try:
            return engine.connect()
        except sa.exc.OperationalError as error:
            reason = _reason(error)
            if not any(failure in reason.lower() for failure in TRANSIENT_FAILURES):
                raise ConnectionError(f"cannot connect to {safe_url(url)}: {reason}") from None
            if attempt == settings.attempts:
                raise ConnectionError(f"cannot connect to {safe_url(url)} after {attempt} attempts: {reason}") from None
            wait = settings.first_wait * 2 ** (attempt - 1)
            log.warning("cannot connect to %s (%s); retry %d in %.1f s", safe_url(url), reason, attempt, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _copy_out(connection: Connection, query: sa.Select) -> io.BytesIO:
    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    buffer = io.BytesIO()
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    return buffer


# The SQL types each Arrow column type may be read from.
ACCEPTED_SQL_TYPES = {
    pa.int64(): (sa.Integer,),
    pa.float64(): (sa.Integer, sa.Numeric, sa.Float),
    pa.string(): (sa.String,),
}


def extract_table(
    url: str,
    table: str,
    columns: pa.Schema,
    *,
    schema: str | None = None,
    timestamp_column: str | None = None,
    before: dt.datetime | None = None,
    timestamp_as: str | None = None,
) -> tuple[pa.Table, bool]:
    """Return the given columns of a source table, read with one COPY, and whether it was read as of `before`.

    When `timestamp_column` exists in the table, only rows stamped before `before`, or not stamped
    at all, are read, and with `timestamp_as` their stamp too, as a UTC timestamp column of that
    name; otherwise the whole table is (a snapshot). A missing table or column, a column of another
    type, or an empty table raises SourceDataError naming it.
    """
    # Names from configuration only ever reach SQL quoted by SQLAlchemy, never pasted in.
    query = sa.select(*(sa.column(name) for name in columns.names)).select_from(sa.table(table, schema=schema))
    name = f"{schema}.{table}" if schema else table
    with connect(url) as connection:
        inspector = sa.inspect(connection)
        if not inspector.has_table(table, schema=schema):
            raise SourceDataError(f"source table {name!r} does not exist in {safe_url(url)}")
        present = {column["name"]: column["type"] for column in inspector.get_columns(table, schema=schema)}
        missing = [column for column in columns.names if column not in present]
        if missing:
            raise SourceDataError(f"source table {name!r} lacks column(s) {', '.join(missing)}")
        for field in columns:
            if not isinstance(present[field.name], ACCEPTED_SQL_TYPES[field.type]):
                raise SourceDataError(
                    f"source column {name}.{field.name} has type {present[field.name]}, not the {field.type} expected"
                )
        as_of = timestamp_column is not None and before is not None and timestamp_column in present
        if as_of:
            if not isinstance(present[timestamp_column], (sa.DateTime, sa.Date)):
                raise SourceDataError(
                    f"source column {name}.{timestamp_column} has type {present[timestamp_column]}, not a timestamp"
                )
            stamp = sa.column(timestamp_column)
            query = query.where(sa.or_(stamp < sa.literal(before, sa.DateTime(timezone=True)), stamp.is_(None)))
            if timestamp_as:
                # As a timestamptz (a date or a timestamp without time zone counts as UTC), printed in UTC
                # without an offset (`2026-11-24 10:00:00.123456`), which Arrow parses; `...+00` it does not.
                in_utc = sa.func.timezone("UTC", sa.cast(stamp, sa.DateTime(timezone=True)))
                query = query.add_columns(in_utc.label(timestamp_as))
                columns = columns.append(pa.field(timestamp_as, pa.timestamp("us")))
        connection.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        connection.exec_driver_sql("SET LOCAL DateStyle = 'ISO'")
        buffer = _copy_out(connection, query)
    try:
        arrow = pacsv.read_csv(
            buffer,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=columns, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:
        raise SourceDataError(f"source table {name!r} holds a value of the wrong type: {error}") from None
    if as_of and timestamp_as:
        index = arrow.schema.get_field_index(timestamp_as)
        arrow = arrow.set_column(index, timestamp_as, arrow.column(index).cast(pa.timestamp("us", tz="UTC")))
    if arrow.num_rows == 0:
        raise SourceDataError(
            f"source table {name!r} has no rows{' before ' + str(before) if as_of else ''}; "
            "refusing to replace the warehouse's recommendations with nothing"
        )
    return arrow, as_of


def _copy_in(connection: Connection, table: str, frame: pd.DataFrame) -> None:
    """COPY the frame into a table."""
    buffer = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    buffer.seek(0)
    columns = ", ".join(connection.dialect.identifier_preparer.quote(name) for name in frame.columns)
    target = connection.dialect.identifier_preparer.quote(table)
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true)", buffer)


# How each recommendation column travels in PostgreSQL's binary COPY format (big-endian, fixed width).
RECOMMENDATION_LAYOUT = [("user_id", ">i8"), ("course_id", ">i8"), ("rating", ">f8"), ("rank", ">i2")]


def _copy_in_binary(connection: Connection, table: str, frame: pd.DataFrame, layout: list[tuple[str, str]]) -> None:
    """COPY a frame of fixed-width, non-null columns into a table in PostgreSQL's binary format.

    Several times faster than CSV at millions of rows: numpy lays the rows out in one pass and the
    server parses no text.
    """
    row = np.dtype(
        [("n_fields", ">i2")] + [field for name, kind in layout for field in ((f"{name}_size", ">i4"), (name, kind))]
    )
    rows = np.empty(len(frame), dtype=row)
    rows["n_fields"] = len(layout)
    for name, kind in layout:
        rows[f"{name}_size"] = np.dtype(kind).itemsize
        rows[name] = frame[name].to_numpy()
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
    stream = io.BufferedReader(_ChunksReader([header, rows.data.cast("B"), b"\xff\xff"]))  # no copy of the rows
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name, _ in layout)
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {quote(table)} ({columns}) FROM STDIN WITH (FORMAT binary)", stream, size=1 << 20)


class _ChunksReader(io.RawIOBase):
    """A readable stream over byte chunks, served without joining them into one copy."""

    def __init__(self, chunks: list) -> None:
        self.chunks = [memoryview(chunk) for chunk in chunks]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        while self.chunks and not len(self.chunks[0]):
            self.chunks.pop(0)
        if not self.chunks:
            return 0
        size = min(len(buffer), len(self.chunks[0]))
        buffer[:size] = self.chunks[0][:size]
        self.chunks[0] = self.chunks[0][size:]
        return size


def load_recommendations(
    url: str, date: dt.date, recommendations: pd.DataFrame, courses: pd.DataFrame, *, partial_day: bool = False
) -> int:
    """Replace the date's recommendations, upsert the courses and mark the date loaded, in one transaction.

    Return the number of rows loaded: 0 when another run loaded the date while this one waited. A
    partial day's load is marked partial, and the whole day's load replaces it.
    """
    with connect(url) as connection:
        # One load at a time: concurrent runs of a date queue here instead of interleaving.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('workflow.load_recommendations'))"))
        connection.exec_driver_sql(sql("warehouse_schema"))
        marker = sa.text("SELECT partial FROM recommendation_loads WHERE recommendation_date = :date")
        loaded = connection.execute(marker, {"date": date}).first()
        if loaded is not None and (partial_day or not loaded.partial):
            log.info("%s was loaded by another run meanwhile; nothing to do", date)
            return 0
        newest = connection.execute(sa.text("SELECT max(recommendation_date) FROM recommendation_loads")).scalar()
        connection.exec_driver_sql("CREATE TEMPORARY TABLE staged_courses (LIKE courses) ON COMMIT DROP")
        _copy_in(connection, "staged_courses", courses)
        # An older date's courses must not overwrite what the newest load wrote.
        connection.exec_driver_sql(sql("upsert_courses" if newest is None or date >= newest else "insert_new_courses"))
        _replace_partition(connection, date, recommendations)
        counts = {
            "n_recommendations": len(recommendations),
            "n_users": int(recommendations["user_id"].nunique()),
            "partial": partial_day,
        }
        connection.execute(sa.text(sql("record_load")), {"recommendation_date": date, **counts})
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
    _copy_in_binary(connection, loading, recommendations, RECOMMENDATION_LAYOUT)
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
    with connect(url) as connection:
        inspector = sa.inspect(connection)
        if not inspector.has_table("recommendation_loads"):
            return set()
        query = "SELECT recommendation_date FROM recommendation_loads WHERE recommendation_date = ANY(:dates)"
        # A warehouse loaded before partial days existed has no such column: all its loads are whole days.
        if not include_partial and "partial" in {c["name"] for c in inspector.get_columns("recommendation_loads")}:
            query += " AND NOT partial"
        return set(connection.execute(sa.text(query), {"dates": list(dates)}).scalars())


def has_column(url: str, table: str, column: str, *, schema: str | None = None) -> bool:
    """Return whether the source table exists and has the column."""
    with connect(url) as connection:
        inspector = sa.inspect(connection)
        if not inspector.has_table(table, schema=schema):
            return False
        return column in {found["name"] for found in inspector.get_columns(table, schema=schema)}


def forget_load(url: str, date: dt.date) -> bool:
    """Remove the date's load marker so the next run recomputes and replaces it; return whether there was one."""
    with connect(url) as connection:
        if not sa.inspect(connection).has_table("recommendation_loads"):
            return False
        query = sa.text("DELETE FROM recommendation_loads WHERE recommendation_date = :date")
        return connection.execute(query, {"date": date}).rowcount > 0


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


def replace_source_tables(url: str, courses: pd.DataFrame, ratings: pd.DataFrame) -> None:
    """Recreate the source tables `courses` and `rating` (with `rated_at` when given) holding exactly these rows."""
    with connect(url) as connection:
        connection.exec_driver_sql(sql("source_schema"))
        if "rated_at" in ratings.columns:
            connection.exec_driver_sql("ALTER TABLE rating ADD COLUMN rated_at timestamptz")
        _copy_in(connection, "courses", courses)
        _copy_in(connection, "rating", ratings)


def source_row_count(url: str) -> int:
    """Return the number of rows in the source `rating` table, 0 when it does not exist."""
    with connect(url) as connection:
        if not sa.inspect(connection).has_table("rating"):
            return 0
        return connection.execute(sa.text("SELECT count(*) FROM rating")).scalar()
