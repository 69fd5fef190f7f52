"""The film pipeline's warehouse: a date's films loaded into store.film_daily with their marker, and its reads."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core.dated_load import Marker, forget_load, load_once, loaded_dates
from workflow.io.load import copy_in
from workflow.io.postgres import connect, read_sql
from workflow.io.urls import safe_url

log = logging.getLogger("luigi-interface.workflow.films.warehouse")

SQL = Path(__file__).parent / "sql"
MARKER = Marker("film_loads", "load_date", schema="store")
FILM_QUERY = "SELECT film_id, recommended_film_ids FROM store.film"


def sql(name: str) -> str:
    """Return the text of this pipeline's `sql/<name>.sql`."""
    return read_sql(SQL, name)


def _array_literal(values: list | None, text: bool) -> str | None:
    """Return a list as a PostgreSQL array literal (`{1,2}`, `{"a b","c\\"d"}`), or None for a missing list."""
    if values is None:
        return None
    if not text:
        return "{" + ",".join(str(int(value)) for value in values) + "}"
    quoted = (
        "NULL" if value is None else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values
    )
    return "{" + ",".join(quoted) + "}"


def _as_copy_frame(films: pa.Table, date: dt.date) -> pd.DataFrame:
    """Return the films as a frame COPY can read: list columns as array literals, Arrow types kept, the date first."""
    columns = {"load_date": pa.array([date] * films.num_rows, pa.date32())}
    for field in films.schema:
        column = films.column(field.name)
        if pa.types.is_list(field.type):
            text = pa.types.is_string(field.type.value_type)
            column = pa.array([_array_literal(value, text) for value in column.to_pylist()], pa.string())
        columns[field.name] = column
    return pa.table(columns).to_pandas(types_mapper=pd.ArrowDtype)  # copy_in turns it back into the same Arrow types


def load_films(url: str, date: dt.date, films: pa.Table, *, partial_day: bool = False) -> int:
    """Replace the date's films in store.film_daily and mark the date loaded, in one transaction; return the rows.

    Return 0 when another run loaded the date while this one waited. A partial day's load is marked
    partial, and the whole day's load replaces it.
    """

    def write(connection: Connection) -> None:
        connection.exec_driver_sql("CREATE TEMPORARY TABLE staged_film (LIKE store.film_daily) ON COMMIT DROP")
        copy_in(connection, "staged_film", _as_copy_frame(films, date))
        connection.execute(sa.text(sql("replace_date")), {"load_date": date})
        connection.execute(
            sa.text(sql("record_load")), {"load_date": date, "n_films": films.num_rows, "partial": partial_day}
        )

    ran = load_once(
        url, date, MARKER, lock="workflow.load_films", prepare_sql=sql("warehouse_schema"), partial_day=partial_day,
        write=write,
    )  # fmt: skip
    if not ran:
        return 0
    log.info("loaded %d films for %s into %s", films.num_rows, date, safe_url(url))
    return films.num_rows


def loaded_film_dates(url: str, dates: list[dt.date], *, include_partial: bool = False) -> set[dt.date]:
    """Return those of the dates whose films the warehouse holds (a partial day's too, with include_partial)."""
    return loaded_dates(url, MARKER, dates, include_partial=include_partial)


def forget_film_load(url: str, date: dt.date) -> bool:
    """Remove the date's film load marker so the next run recomputes it; return whether there was one."""
    return forget_load(url, MARKER, date)


def current_recommendations(url: str, limit: int | None = None) -> list[tuple[int, list[int]]]:
    """Return what the seed's query reads: (film_id, recommended_film_ids) of the current films, by film_id."""
    with connect(url) as connection:
        if not sa.inspect(connection).has_table("film_loads", schema="store"):
            return []
        query = f"{FILM_QUERY} ORDER BY film_id" + (" LIMIT %(limit)s" if limit is not None else "")
        return [tuple(row) for row in connection.exec_driver_sql(query, {"limit": limit})]
