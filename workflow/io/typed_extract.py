"""Every column of a source table into Arrow with one COPY, each in the Arrow type that holds its SQL type exactly."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from workflow.errors import SourceDataError
from workflow.io.extract import _copy_out
from workflow.io.postgres import connect
from workflow.io.urls import safe_url


def _base_type(sql_type: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """Return the type a domain stands for (domains of domains too), or the type itself."""
    while isinstance(sql_type, postgresql.DOMAIN):
        sql_type = sql_type.data_type
    return sql_type


def arrow_type(sql_type: sa.types.TypeEngine) -> pa.DataType | None:
    """Return the Arrow type that holds values of a reflected SQL type exactly, or None when there is none.

    numeric(p, s) becomes decimal128(p, s) (never a float; an unbounded numeric becomes text), an
    enum or a tsvector becomes text, a domain its base type, an array a list of its element's type.
    """
    sql_type = _base_type(sql_type)
    if isinstance(sql_type, sa.ARRAY):
        item = arrow_type(sql_type.item_type)
        return None if item is None else pa.list_(item)
    if isinstance(sql_type, sa.Numeric) and not isinstance(sql_type, sa.Float):
        # An unbounded numeric has no fixed scale: text keeps it exact.
        return pa.string() if sql_type.precision is None else pa.decimal128(sql_type.precision, sql_type.scale or 0)
    if isinstance(sql_type, sa.DateTime):
        return pa.timestamp("us", tz="UTC") if sql_type.timezone else pa.timestamp("us")
    return next((arrow for kind, arrow in SIMPLE_TYPES if isinstance(sql_type, kind)), None)


# The SQL types that map to one Arrow type, most specific first (sa.Enum is a String).
SIMPLE_TYPES = [
    ((sa.String, postgresql.TSVECTOR), pa.string()),
    (sa.Boolean, pa.bool_()),
    (sa.SmallInteger, pa.int16()),
    (sa.BigInteger, pa.int64()),
    (sa.Integer, pa.int32()),
    (sa.Float, pa.float64()),
    (sa.Date, pa.date32()),
]


def _selected(name: str, sql_type: sa.types.TypeEngine, arrow: pa.DataType) -> ColumnElement:
    """Return the expression COPY prints a column with, in a form Arrow's CSV reader parses as `arrow`."""
    column = sa.column(name)
    base = _base_type(sql_type)
    if pa.types.is_list(arrow):
        return sa.cast(sa.func.array_to_json(column), sa.Text).label(name)  # parsed from JSON below
    if pa.types.is_timestamp(arrow) and arrow.tz is not None:
        # Printed in UTC without an offset, which Arrow parses; `...+00` it does not.
        return sa.func.timezone("UTC", column).label(name)
    if arrow == pa.string() or isinstance(sql_type, postgresql.DOMAIN):
        return sa.cast(column, sa.Text if arrow == pa.string() else base).label(name)
    return column


def _list_column(texts: pa.ChunkedArray, arrow: pa.DataType) -> pa.Array:
    """Return a column of JSON arrays (as PostgreSQL's array_to_json prints them) as an Arrow list column."""
    return pa.array([None if text is None else json.loads(text) for text in texts.to_pylist()], type=arrow)


def extract_whole_table(url: str, table: str, *, schema: str | None = None) -> pa.Table:
    """Return every column of a source table, read with one COPY, each as the Arrow type arrow_type() gives it.

    A missing table, a column of a type with no exact Arrow type, or an empty table raises
    SourceDataError naming it.
    """
    name = f"{schema}.{table}" if schema else table
    with connect(url) as connection:
        inspector = sa.inspect(connection)
        if not inspector.has_table(table, schema=schema):
            raise SourceDataError(f"source table {name!r} does not exist in {safe_url(url)}")
        reflected = inspector.get_columns(table, schema=schema)
        fields, expressions = [], []
        for column in reflected:
            arrow = arrow_type(column["type"])
            if arrow is None:
                raise SourceDataError(f"source column {name}.{column['name']} has type {column['type']}, not supported")
            fields.append(pa.field(column["name"], arrow))
            expressions.append(_selected(column["name"], column["type"], arrow))
        # Names from the catalogue and configuration only reach SQL quoted by SQLAlchemy.
        query = sa.select(*expressions).select_from(sa.table(table, schema=schema))
        connection.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        connection.exec_driver_sql("SET LOCAL DateStyle = 'ISO'")
        buffer = _copy_out(connection, query)
    read_as = {
        field.name: pa.string() if pa.types.is_list(field.type) else
        pa.timestamp("us") if pa.types.is_timestamp(field.type) else field.type
        for field in fields
    }  # fmt: skip
    try:
        arrow_table = pacsv.read_csv(
            buffer,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=read_as, strings_can_be_null=True, quoted_strings_can_be_null=False,
                true_values=["t"], false_values=["f"],
            ),
        )  # fmt: skip
    except pa.ArrowInvalid as error:
        raise SourceDataError(f"source table {name!r} holds a value Arrow cannot read: {error}") from None
    columns = []
    for field in fields:
        column = arrow_table.column(field.name)
        if pa.types.is_list(field.type):
            column = _list_column(column, field.type)
        elif column.type != field.type:
            column = column.cast(field.type)  # a timestamp read in UTC, now marked UTC
        columns.append(column)
    result = pa.table(columns, schema=pa.schema(fields))
    if result.num_rows == 0:
        raise SourceDataError(
            f"source table {name!r} has no rows; refusing to replace the warehouse's data with nothing"
        )
    return result
