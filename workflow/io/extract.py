"""COPY out of PostgreSQL: a source table, its columns and types checked, streamed into Arrow or parquet."""

from __future__ import annotations

import datetime as dt
import io
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from workflow.errors import DatabaseUnavailableError, SourceDataError
from workflow.io import parquet
from workflow.io.postgres import connect, current_retry
from workflow.io.urls import plain, safe_url

# The SQL types each Arrow column type may be read from.
ACCEPTED_SQL_TYPES = {
    pa.int64(): (sa.Integer,),
    pa.float64(): (sa.Integer, sa.Numeric, sa.Float),
    pa.string(): (sa.String,),
}
# How the numeric columns are read: cast by the server to the 8-byte type Arrow holds them in, so that its binary COPY
# needs no conversion on either side (a numeric is read as a float, a date or a timestamp as a UTC timestamp).
READ_AS = {pa.int64(): sa.BigInteger(), pa.float64(): sa.Float(precision=53)}
# The binary COPY read at a time: one record batch, and one parquet row group, per block (about 330,000 ratings).
BLOCK_SIZE = 16 << 20
# A server error that says a value does not fit the type it is read as.
_WRONG_TYPE = re.compile(r"invalid input syntax|out of range")


@dataclass(frozen=True)
class Extract:
    """What an extract reads (its checked query) and what it yields (its Arrow schema)."""

    name: str
    query: sa.Select  # the columns as they are, the timestamp (if read) printed in UTC without an offset (for JDBC)
    arrow_query: sa.Select  # the columns as Arrow holds them (READ_AS), the timestamp a timestamptz
    schema: pa.Schema  # the columns as extracted: the timestamp, if read, in UTC
    as_of: bool
    before: dt.datetime | None

    def empty(self) -> SourceDataError:
        """Return the error of an extract that found no rows."""
        return SourceDataError(
            f"source table {self.name!r} has no rows{' before ' + str(self.before) if self.as_of else ''}; "
            "refusing to replace the warehouse's recommendations with nothing"
        )


def _checked_extract(
    connection: Connection,
    url: str,
    table: str,
    columns: pa.Schema,
    *,
    schema: str | None,
    timestamp_column: str | None,
    before: dt.datetime | None,
    timestamp_as: str | None,
) -> Extract:
    """Check the source table's columns and types, and return the query of the extract."""
    # Names from configuration only ever reach SQL quoted by SQLAlchemy, never pasted in.
    source = sa.table(table, schema=schema)
    query = sa.select(*(sa.column(name) for name in columns.names)).select_from(source)
    typed = [sa.cast(sa.column(f.name), READ_AS[f.type]).label(f.name) if f.type in READ_AS else sa.column(f.name)
             for f in columns]  # fmt: skip
    arrow_query = sa.select(*typed).select_from(source)
    name = f"{schema}.{table}" if schema else table
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
    extracted = columns
    as_of = timestamp_column is not None and before is not None and timestamp_column in present
    if as_of:
        if not isinstance(present[timestamp_column], (sa.DateTime, sa.Date)):
            raise SourceDataError(
                f"source column {name}.{timestamp_column} has type {present[timestamp_column]}, not a timestamp"
            )
        stamp = sa.column(timestamp_column)
        cut = sa.or_(stamp < sa.literal(before, sa.DateTime(timezone=True)), stamp.is_(None))
        query, arrow_query = query.where(cut), arrow_query.where(cut)
        if timestamp_as:
            # As a timestamptz: a date or a timestamp without time zone counts as UTC (the session's zone). JDBC
            # reads it printed in UTC without an offset (`2026-11-24 10:00:00.123456`).
            in_utc = sa.cast(stamp, sa.DateTime(timezone=True))
            query = query.add_columns(sa.func.timezone("UTC", in_utc).label(timestamp_as))
            arrow_query = arrow_query.add_columns(in_utc.label(timestamp_as))
            extracted = extracted.append(pa.field(timestamp_as, pa.timestamp("us", tz="UTC")))
    return Extract(name, query, arrow_query, extracted, as_of, before)


def checked_extract(
    url: str,
    table: str,
    columns: pa.Schema,
    *,
    schema: str | None = None,
    timestamp_column: str | None = None,
    before: dt.datetime | None = None,
    timestamp_as: str | None = None,
) -> Extract:
    """Check a source table as extract_table does and return its extract (query, schema), for another reader."""
    with connect(url) as connection:
        return _checked_extract(
            connection, url, table, columns,
            schema=schema, timestamp_column=timestamp_column, before=before, timestamp_as=timestamp_as,
        )  # fmt: skip


@contextmanager
def _extracted_batches(
    url: str,
    table: str,
    columns: pa.Schema,
    *,
    schema: str | None,
    timestamp_column: str | None,
    before: dt.datetime | None,
    timestamp_as: str | None,
) -> Iterator[tuple[Extract, Iterator[pa.RecordBatch]]]:
    """Yield the checked extract and its record batches, read with one binary COPY as the server sends them."""
    with connect(url) as connection:
        extract = _checked_extract(
            connection, url, table, columns,
            schema=schema, timestamp_column=timestamp_column, before=before, timestamp_as=timestamp_as,
        )  # fmt: skip
    with _copy_out_arrow(url, extract) as batches:
        yield extract, batches


@contextmanager
def _copy_out_arrow(url: str, extract: Extract) -> Iterator[Iterator[pa.RecordBatch]]:
    """Yield the extract's rows as record batches of its schema, read by ADBC's PostgreSQL driver.

    ADBC (the Arrow project's driver) runs the query as a binary COPY and lays the rows out as Arrow in C, a block
    at a time: psycopg2 hands a CSV COPY to Python a row at a time (a call per row), and the CSV costs the server
    more to print than binary does. A server error, at the start or midway, fails in one line naming the table.
    """
    import adbc_driver_postgresql.dbapi as adbc  # noqa: PLC0415  (only a step that extracts needs it)

    compiled = extract.arrow_query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    try:
        connection = adbc.connect(_libpq_url(url))
    except adbc.Error as error:
        raise DatabaseUnavailableError(f"database {safe_url(url)}: {_server_message(error)}") from None
    try:
        with connection.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BLOCK_SIZE)})
            cursor.execute("SET TIME ZONE 'UTC'")  # dates and zoneless timestamps count as UTC
            try:
                cursor.execute(str(compiled))
                reader = cursor.fetch_record_batch()
            except adbc.Error as error:
                raise _read_error(extract, error) from None
            batches = _read_ahead(_converted(reader, extract))
            try:
                yield batches
            finally:
                batches.close()  # its thread stops reading before the connection closes
    finally:
        connection.close()


_END = object()


def _read_ahead(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Yield the batches while a thread reads the next `depth` ones, so that the server's sending and the driver's
    layout (which run without the GIL) overlap the caller's work on each batch; the thread is always joined, and its
    error raised here."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not hand_over(batch):
                    return
        except BaseException as error:  # handed to the caller's thread
            hand_over(error)
        else:
            hand_over(_END)

    thread = threading.Thread(target=read, name="copy-out", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _converted(reader: pa.RecordBatchReader, extract: Extract) -> Iterator[pa.RecordBatch]:
    """Yield the reader's batches in the extract's schema; a read that fails midway fails in one line."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (OSError, ArithmeticError, pa.ArrowException) as error:  # the driver's, through Arrow's C stream
            raise _read_error(extract, error) from None
        try:
            yield batch if batch.schema == extract.schema else batch.cast(extract.schema)
        except pa.ArrowInvalid as error:
            raise SourceDataError(f"source table {extract.name!r} holds a value of the wrong type: {error}") from None


def _read_error(extract: Extract, error: Exception) -> SourceDataError:
    """Return the one-line error of a read the server or the driver stopped, naming the table."""
    message = _server_message(error)
    if _WRONG_TYPE.search(message):
        return SourceDataError(f"source table {extract.name!r} holds a value of the wrong type: {message}")
    return SourceDataError(f"source table {extract.name!r} could not be read: {message}")


def _server_message(error: Exception) -> str:
    """Return the server's or driver's message of an error, without the driver's prefixes, on one line."""
    text = str(error).split("\n")[0].strip()
    return re.sub(r"^(\[libpq\] )?(.*?\[PGRES_\w+\]: )?(ERROR|FATAL): +", "", text) or type(error).__name__


def _libpq_url(url: str) -> str:
    """Return a URL as libpq reads it, with the connect timeout of the process's connections unless it names one."""
    parsed = sa.make_url(plain(url))
    if "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(current_retry().timeout)})
    return parsed.render_as_string(hide_password=False)


def _copy_command(query: sa.Select) -> str:
    """Return the COPY that prints the query's rows as CSV with a header."""
    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER true)"


def _copy_out(connection: Connection, query: sa.Select) -> io.BytesIO:
    """Return the query's rows as CSV, all in memory (typed_extract's whole-table read)."""
    buffer = io.BytesIO()
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(_copy_command(query), buffer)
    buffer.seek(0)
    return buffer


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
    with _extracted_batches(
        url, table, columns, schema=schema, timestamp_column=timestamp_column, before=before, timestamp_as=timestamp_as
    ) as (extract, batches):
        arrow = pa.Table.from_batches(list(batches), extract.schema)
    if arrow.num_rows == 0:
        raise extract.empty()
    return arrow, extract.as_of


def extract_table_to_parquet(
    url: str,
    table: str,
    columns: pa.Schema,
    path: str | Path,
    *,
    schema: str | None = None,
    timestamp_column: str | None = None,
    before: dt.datetime | None = None,
    timestamp_as: str | None = None,
) -> tuple[int, bool]:
    """Write what `extract_table` returns to a parquet file, a row group per block of COPY's output (BLOCK_SIZE).

    Return the number of rows written and whether they were read as of `before`. Memory stays
    bounded by a few blocks whatever the size of the table. Checks and errors are extract_table's;
    on any failure `path` is removed (write it under a temporary name and rename it afterwards).
    Its folder is created if need be.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    try:
        with _extracted_batches(
            url, table, columns,
            schema=schema, timestamp_column=timestamp_column, before=before, timestamp_as=timestamp_as,
        ) as (extract, batches), parquet.writer(path, extract.schema) as writer:  # fmt: skip
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
        if rows == 0:
            raise extract.empty()
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return rows, extract.as_of
