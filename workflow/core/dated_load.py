"""A date's warehouse load with its completion marker: one load at a time, data and marker in one transaction."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.io.postgres import connect

log = logging.getLogger("luigi-interface.workflow.dated_load")


@dataclass(frozen=True)
class Marker:
    """A marker table: one row per loaded date (`date_column`), with a boolean `partial` for a day not over."""

    table: str
    date_column: str
    schema: str | None = None

    def clause(self) -> sa.TableClause:
        """Return the table for queries, its names quoted by SQLAlchemy."""
        return sa.table(self.table, sa.column(self.date_column), sa.column("partial"), schema=self.schema)


def load_once(
    url: str, date: dt.date, marker: Marker, *, lock: str, prepare_sql: str, partial_day: bool,
    write: Callable[[Connection], None],
) -> bool:  # fmt: skip
    """Run `write` (the date's rows and marker) in one transaction unless the date is loaded; return whether it ran.

    Loads take the advisory lock `lock` one at a time; `prepare_sql` (the schema, idempotent) runs
    first. A date loaded whole, or loaded partially when this load is partial too, is left as it is;
    a partial day's load is replaced by the whole day's.
    """
    with connect(url) as connection:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": lock})
        connection.exec_driver_sql(prepare_sql)
        table = marker.clause()
        found = connection.execute(
            sa.select(table.c.partial).where(table.c[marker.date_column] == sa.bindparam("date", date, sa.Date))
        ).first()
        if found is not None and (partial_day or not found.partial):
            log.info("%s was loaded by another run meanwhile; nothing to do", date)
            return False
        write(connection)
    return True


def loaded_dates(url: str, marker: Marker, dates: list[dt.date], *, include_partial: bool = False) -> set[dt.date]:
    """Return those of the dates whose whole day's load (or any load, with include_partial) the marker table holds."""
    with connect(url) as connection:
        inspector = sa.inspect(connection)
        if not inspector.has_table(marker.table, schema=marker.schema):
            return set()
        table = marker.clause()
        date = table.c[marker.date_column]
        query = sa.select(date).where(date.in_(sa.bindparam("dates", list(dates), expanding=True)))
        # A marker table made before partial days existed has no such column: all its loads are whole days.
        columns = {column["name"] for column in inspector.get_columns(marker.table, schema=marker.schema)}
        if not include_partial and "partial" in columns:
            query = query.where(sa.not_(table.c.partial))
        return set(connection.execute(query).scalars())


def forget_load(url: str, marker: Marker, date: dt.date) -> bool:
    """Remove the date's marker so the next run recomputes and replaces it; return whether there was one."""
    with connect(url) as connection:
        if not sa.inspect(connection).has_table(marker.table, schema=marker.schema):
            return False
        table = marker.clause()
        return connection.execute(sa.delete(table).where(table.c[marker.date_column] == date)).rowcount > 0
