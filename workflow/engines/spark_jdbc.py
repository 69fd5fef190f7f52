"""A source table read by Spark's executors over JDBC, in ranges of an integer column (the Spark extract)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from workflow.errors import ConfigurationError, SourceDataError
from workflow.io.postgres import connect
from workflow.io.urls import safe_url

SPARK_TYPES = {pa.int64(): "long", pa.float64(): "double", pa.string(): "string"}


def jdbc_url(url: str) -> tuple[str, dict[str, str]]:
    """Return a PostgreSQL URL as a JDBC URL without credentials, and the connection properties holding them."""
    parts = make_url(url)
    if not parts.host:
        raise ConfigurationError(f"the JDBC extract needs a host and port in the URL: {safe_url(url)}")
    options = "&".join(f"{key}={value}" for key, value in parts.query.items() if isinstance(value, str))
    address = f"jdbc:postgresql://{parts.host}:{parts.port or 5432}/{parts.database}{'?' + options if options else ''}"
    properties = {"user": parts.username or "", "driver": "org.postgresql.Driver"}
    if parts.password:
        properties["password"] = parts.password
    return address, properties


def read_table(
    session: Any,
    url: str,
    query: sa.Select,
    columns: pa.Schema,
    *,
    partition_column: str,
    partitions: int,
    fetchsize: int = 10_000,
    name: str = "",
) -> Any:
    """Return a query's rows as a DataFrame of `columns`' types, read over JDBC in ranges of `partition_column`.

    The bounds come from a min/max query; rows outside them still land in the first or last range,
    and rows whose column is NULL in the first, so every row is read exactly once. The password
    travels in the connection properties, never in the URL.
    """
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with connect(url) as connection:
        rows = sa.select(
            sa.func.count(), sa.func.min(sa.column(partition_column)), sa.func.max(sa.column(partition_column))
        ).select_from(query.subquery())
        count, lowest, highest = connection.execute(rows).one()
    if not count:
        raise SourceDataError(f"source table {name!r} has no rows; refusing to replace the warehouse's recommendations")
    address, properties = jdbc_url(url)
    reader = (
        session.read.format("jdbc")
        .option("url", address)
        .option("dbtable", f"({sql}) AS source_rows")
        .option("fetchsize", str(fetchsize))
        .option("sessionInitStatement", "SET TIME ZONE 'UTC'")
    )
    for key, value in properties.items():
        reader = reader.option(key, value)
    if lowest is not None and highest > lowest:
        reader = (
            reader.option("partitionColumn", partition_column)
            .option("lowerBound", str(lowest))
            .option("upperBound", str(highest + 1))
            .option("numPartitions", str(max(1, partitions)))
        )
    frame = reader.load()
    return frame.select(
        *(frame[field.name].cast(SPARK_TYPES.get(field.type, "timestamp")).alias(field.name) for field in columns)
    )
