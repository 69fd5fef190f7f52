"""The film pipeline's warehouse: a date's films loaded into store.film_daily with their marker, and its reads."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core.dated_load import NO_FIGURES, LoadFigures, load_once, remove_load
from workflow.io.load import copy_in
from workflow.io.postgres import connect, read_sql
from workflow.io.urls import safe_url
from workflow.pipelines.films import PIPELINE

log = logging.getLogger("luigi-interface.workflow.films.warehouse")

SQL = Path(__file__).parent / "sql"
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


def load_films(
    url: str, date: dt.date, films: pa.Table, *, partial_day: bool = False, figures: LoadFigures = NO_FIGURES
) -> int:
    """Replace the date's films in store.film_daily and mark the date loaded, in one transaction; return the rows.

    Return 0 when another run loaded the date while this one waited. A partial day's load is marked
    partial, and the whole day's load replaces it. The marker row records the date's figures from its run.
    """

    def write(connection: Connection) -> None:
        connection.exec_driver_sql("CREATE TEMPORARY TABLE staged_film (LIKE store.film_daily) ON COMMIT DROP")
        copy_in(connection, "staged_film", _as_copy_frame(films, date))
        connection.execute(sa.text(sql("replace_date")), {"load_date": date})
        counts = {"n_films": films.num_rows, "partial": partial_day}
        connection.execute(sa.text(sql("record_load")), {"load_date": date, **counts, **figures.row()})

    ran = load_once(
        url, date, PIPELINE.marker, prepare_sql=sql("warehouse_schema"), partial_day=partial_day, write=write
    )
    if not ran:
        return 0
    log.info("loaded %d films for %s into %s", films.num_rows, date, safe_url(url))
    return films.num_rows


def current_recommendations(url: str, limit: int | None = None) -> list[tuple[int, list[int]]]:
    """Return what the seed's query reads: (film_id, recommended_film_ids) of the current films, by film_id."""
    with connect(url) as connection:
        if not PIPELINE.marker.exists(connection):
            return []
        query = f"{FILM_QUERY} ORDER BY film_id" + (" LIMIT %(limit)s" if limit is not None else "")
        return [tuple(row) for row in connection.exec_driver_sql(query, {"limit": limit})]


def summary(url: str, n_films: int) -> list[str]:
    """Return the lines `python -m workflow summary` prints: every loaded date's films, and a few films' picks."""
    with connect(url) as connection:
        if not PIPELINE.marker.exists(connection):
            return ["films: nothing loaded"]
        loads = connection.execute(sa.text("SELECT load_date, n_films FROM store.film_loads ORDER BY 1")).all()
    lines = [f"loaded {date} films: {n:,} films" for date, n in loads]
    return lines + [f"film {film_id}: {picks}" for film_id, picks in current_recommendations(url, n_films)]


def remove_date(url: str, date: dt.date, dry_run: bool = False) -> int | None:
    """Return the films of the date that retention removed from store.film_daily (with its load row, in one
    transaction under the load's lock; a dry run only counts them), or None when it is not loaded or is the newest."""

    def remove(connection: Connection) -> int:
        if dry_run:
            return connection.execute(sa.text(sql("films_of_date")), {"load_date": date}).scalar()
        return connection.execute(sa.text(sql("remove_date")), {"load_date": date}).rowcount

    return remove_load(url, date, PIPELINE.marker, remove=remove, dry_run=dry_run)
