"""COPY out of PostgreSQL: a source table, its columns and types checked, streamed into Arrow or parquet."""

from __future__ import annotations

import datetime as dt
import fcntl
import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psycopg2.errors
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from workflow.errors import SourceDataError
from workflow.io.postgres import connect
from workflow.io.urls import safe_url

# The SQL types each Arrow column type may be read from.
ACCEPTED_SQL_TYPES = {
    pa.int64(): (sa.Integer,),
    pa.float64(): (sa.Integer, sa.Numeric, sa.Float),
    pa.string(): (sa.String,),
}
# The CSV text Arrow parses at a time: one record batch, and one parquet row group, per block (about
# 500,000 ratings). Larger blocks only cost memory: the time is COPY's and the parse's, either way.
BLOCK_SIZE = 16 << 20
PIPE_SIZE = 1 << 20


@dataclass(frozen=True)
class Extract:
    """What an extract reads (its checked query) and what it yields (its Arrow schema)."""

    name: str
    query: sa.Select
    csv_types: pa.Schema  # the columns as COPY prints them
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
    query = sa.select(*(sa.column(name) for name in columns.names)).select_from(sa.table(table, schema=schema))
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
        query = query.where(sa.or_(stamp < sa.literal(before, sa.DateTime(timezone=True)), stamp.is_(None)))
        if timestamp_as:
            # As a timestamptz (a date or a timestamp without time zone counts as UTC), printed in UTC
            # without an offset (`2026-11-24 10:00:00.123456`), which Arrow parses; `...+00` it does not.
            in_utc = sa.func.timezone("UTC", sa.cast(stamp, sa.DateTime(timezone=True)))
            query = query.add_columns(in_utc.label(timestamp_as))
            columns = columns.append(pa.field(timestamp_as, pa.timestamp("us")))
            extracted = extracted.append(pa.field(timestamp_as, pa.timestamp("us", tz="UTC")))
    return Extract(name, query, columns, extracted, as_of, before)


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
    """Yield the checked extract and its record batches, parsed while COPY streams the rows out."""
    with connect(url) as connection:
        extract = _checked_extract(
            connection, url, table, columns,
            schema=schema, timestamp_column=timestamp_column, before=before, timestamp_as=timestamp_as,
        )  # fmt: skip
        connection.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        connection.exec_driver_sql("SET LOCAL DateStyle = 'ISO'")
        with _copy_out_streamed(connection, extract.query) as stream:
            yield extract, _parsed(stream, extract)


def _parsed(stream: BinaryIO, extract: Extract) -> Iterator[pa.RecordBatch]:
    """Parse COPY's CSV a block at a time into batches of the extract's schema."""
    try:
        reader = pacsv.open_csv(
            stream,
            # Parsed in this thread: no read-ahead thread of Arrow's left reading the pipe after a failure.
            read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=extract.csv_types, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )
        for batch in reader:
            yield batch if batch.schema == extract.schema else batch.cast(extract.schema)
    except pa.ArrowInvalid as error:
        raise SourceDataError(f"source table {extract.name!r} holds a value of the wrong type: {error}") from None


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


@contextmanager
def _copy_out_streamed(connection: Connection, query: sa.Select) -> Iterator[BinaryIO]:
    """Yield a stream of the query's rows as CSV, which COPY writes from a thread as the reader consumes them.

    The thread is always joined: when the reader fails, the query is cancelled and the rest of the
    stream drained. A failure of COPY itself (which also cuts the stream short) wins over the
    reader's, so a COPY error is never reported as a parse error.
    """
    command = _copy_command(query)
    dbapi_connection = connection.connection.dbapi_connection
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)  # fewer switches between the two sides
    except OSError:
        pass
    failures: list[BaseException] = []

    def copy() -> None:
        try:
            with os.fdopen(write_end, "wb", buffering=PIPE_SIZE) as sink, dbapi_connection.cursor() as cursor:
                cursor.copy_expert(command, sink)
        except BaseException as error:  # handed to the reading thread
            failures.append(error)

    thread = threading.Thread(target=copy, name="copy-out", daemon=True)
    with os.fdopen(read_end, "rb", buffering=PIPE_SIZE) as stream:
        thread.start()
        try:
            yield stream
        except BaseException:
            cancelled = True
            if thread.is_alive():
                try:
                    dbapi_connection.cancel()
                except psycopg2.Error:
                    pass  # the connection is gone: the copy fails by itself
            raise
        else:
            cancelled = False
        finally:
            while stream.read(PIPE_SIZE):  # unblock the writer: it stops at the cancel or the end
                pass
            thread.join()
            if failures and not (cancelled and isinstance(failures[0], psycopg2.errors.QueryCanceled)):
                raise failures[0]


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
    """Write what `extract_table` returns to a parquet file, a row group per block of COPY's output.

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
        ) as (extract, batches), pq.ParquetWriter(path, extract.schema) as writer:  # fmt: skip
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
        if rows == 0:
            raise extract.empty()
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return rows, extract.as_of
