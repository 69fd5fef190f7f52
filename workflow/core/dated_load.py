"""A date's warehouse load, for every pipeline: the target (its marker row), one load at a time with data and marker in
one transaction, the partial-day rule, and the dates loaded asked in one query."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import luigi
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow import databases, engines
from workflow.core.pipeline import Marker, Pipeline
from workflow.core.tasks import RecordedTask
from workflow.errors import ConfigurationError, DatabaseUnavailableError, EngineUnavailableError, WorkflowError
from workflow.io.postgres import connect

log = logging.getLogger("luigi-interface.workflow.dated_load")


@dataclass(frozen=True)
class LoadFigures:
    """A date's figures from its run, which its load row records: rows set aside as invalid, the largest invalid share
    of a table checked, the seconds its steps and its load took, and the load's run id."""

    n_invalid: int | None = None
    invalid_share: float | None = None
    duration_s: float | None = None
    run_id: str | None = None

    def row(self) -> dict[str, Any]:
        """Return the figures as the load row's bound parameters."""
        return {
            "n_invalid": self.n_invalid, "invalid_share": self.invalid_share, "duration_s": self.duration_s,
            "run_id": self.run_id,
        }  # fmt: skip


NO_FIGURES = LoadFigures()


def figures_of(records: list[dict[str, Any]], *, load_seconds: float, run_id: str | None) -> LoadFigures:
    """Return a date's figures from the run records of its steps (their last successes) and the load's own seconds."""
    checked = [record for record in records if "invalid_rows" in record]
    return LoadFigures(
        n_invalid=sum(record["invalid_rows"] for record in checked) if checked else None,
        invalid_share=max((record["invalid_share"] for record in checked), default=None),
        duration_s=round(sum(record.get("duration_s", 0.0) for record in records) + load_seconds, 3),
        run_id=run_id,
    )


def load_once(
    url: str, date: dt.date, marker: Marker, *, prepare_sql: str, partial_day: bool, write: Callable[[Connection], None]
) -> bool:
    """Run `write` (the date's rows and marker) in one transaction unless the date is loaded; return whether it ran.

    Loads of a marker take its advisory lock one at a time; `prepare_sql` (the schema, idempotent) runs
    first. A date loaded whole, or loaded partially when this load is partial too, is left as it is;
    a partial day's load is replaced by the whole day's.
    """
    with connect(url) as connection:
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": f"workflow.load:{marker.name}"}
        )
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
        columns = marker.columns(connection)
        if not columns:  # no marker table yet
            return set()
        table = marker.clause()
        date = table.c[marker.date_column]
        query = sa.select(date).where(date.in_(sa.bindparam("dates", list(dates), expanding=True)))
        # A marker table made before partial days existed has no such column: all its loads are whole days.
        if not include_partial and "partial" in columns:
            query = query.where(sa.not_(table.c.partial))
        return set(connection.execute(query).scalars())


def all_loaded_dates(url: str, marker: Marker) -> list[dt.date]:
    """Return every date the marker table holds a load of (whole or partial), oldest first."""
    with connect(url) as connection:
        if not marker.exists(connection):
            return []
        date = marker.clause().c[marker.date_column]
        return list(connection.execute(sa.select(date).order_by(date)).scalars())


def newest_load(url: str, marker: Marker) -> tuple[dt.date, dt.datetime | None] | None:
    """Return the newest whole-day load's date and when its own load committed (None when the marker table has no
    loaded_at), or None when nothing is loaded."""
    with connect(url) as connection:
        columns = marker.columns(connection)
        if not columns:  # no marker table yet
            return None
        table = sa.table(marker.table, sa.column(marker.date_column), sa.column("partial"), sa.column("loaded_at"),
                         schema=marker.schema)  # fmt: skip
        date = table.c[marker.date_column]
        query = sa.select(date, table.c.loaded_at if "loaded_at" in columns else sa.null()).order_by(date.desc())
        if "partial" in columns:
            query = query.where(sa.not_(table.c.partial))
        found = connection.execute(query.limit(1)).first()
        return (found[0], found[1]) if found else None


def forget_load(url: str, marker: Marker, date: dt.date) -> bool:
    """Remove the date's marker so the next run recomputes and replaces it; return whether there was one."""
    with connect(url) as connection:
        if not marker.exists(connection):
            return False
        table = marker.clause()
        return connection.execute(sa.delete(table).where(table.c[marker.date_column] == date)).rowcount > 0


def remove_load(
    url: str, date: dt.date, marker: Marker, *, remove: Callable[[Connection], int], dry_run: bool = False
) -> int | None:
    """Return the rows `remove` took away (the date's data; it only counts them on a dry run), its marker deleted with
    them in one transaction under the lock loads take, or None when the date is not loaded or is the newest loaded.

    The newest loaded date is the current one, which the pipeline's views show: retention never removes it.
    """
    with connect(url) as connection:
        if not marker.exists(connection):
            return None
        # The load's own lock: a load of the marker in progress finishes first, and none starts meanwhile.
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": f"workflow.load:{marker.name}"}
        )
        table = marker.clause()
        column = table.c[marker.date_column]
        day = sa.bindparam("date", date, sa.Date)
        loaded = connection.execute(sa.select(column).where(column == day)).first() is not None
        newer = connection.execute(sa.select(sa.func.count()).select_from(table).where(column > day)).scalar()
        if not loaded or not newer:
            return None
        rows = remove(connection)
        if not dry_run:
            connection.execute(sa.delete(table).where(column == day))
        return rows


class DatedLoad(luigi.Target):
    """Exists when the warehouse holds the marker of a committed load of the date (a partial day's counts only for a
    partial run)."""

    def __init__(self, marker: Marker, date: dt.date, partial_day: bool = False) -> None:
        self.marker, self.date, self.partial_day = marker, date, partial_day

    def exists(self) -> bool:
        url = databases.warehouse_url()
        return self.date in loaded_dates(url, self.marker, [self.date], include_partial=self.partial_day)


class DatedLoadTask(RecordedTask):
    """A pipeline's load of a date, whose target is the date's marker; an unreachable warehouse fails it at once."""

    pipeline: ClassVar[Pipeline]
    # Set when the completeness check could not reach the warehouse or start the engine: requires() then asks
    # for nothing (nothing upstream is worth computing) and run() fails with the reason.
    unreachable: WorkflowError | None = None

    @classmethod
    def load_marker(cls) -> Marker:
        """Return the marker table of this load: the pipeline's, unless the load is another of its dated loads."""
        return cls.pipeline.marker

    @classmethod
    def writes(cls) -> tuple[str, ...]:
        """Return the warehouse tables this load writes (schema.name), its rows' table first."""
        return cls.pipeline.loads_into

    def output(self) -> DatedLoad:
        return DatedLoad(self.load_marker(), self.date, self.partial_day)

    def complete(self) -> bool:
        """Return whether the date is loaded; an unreachable warehouse, or an engine that cannot start, makes the
        task fail in run() with its reason, before anything is computed."""
        self.unreachable = None
        try:
            if super().complete():
                return True
            engines.check()
        except (DatabaseUnavailableError, EngineUnavailableError, ConfigurationError) as error:
            self.unreachable = error
        return False

    @classmethod
    def bulk_complete(cls, parameter_tuples: list[dt.date]) -> list[dt.date]:
        """Return the dates already loaded, with one warehouse query (used by RangeDaily)."""
        dates = list(parameter_tuples)
        task_class = getattr(cls, "func", cls)  # RangeDaily passes a functools.partial of the class
        try:
            loaded = loaded_dates(databases.warehouse_url(), task_class.load_marker(), dates)
        except DatabaseUnavailableError:
            return []  # each date's own check then fails its task with the reason
        return [date for date in dates if date in loaded]

    def figures(self) -> LoadFigures:
        """Return the date's figures for its load row, from the run records of the pipeline's steps of the date."""
        steps = self.upstream()
        records = [json.loads(path.read_text()) for path in (self.folder / "runs").glob("*.json")]
        done = [record for record in records if record.get("task") in steps and record.get("status") == "done"]
        return figures_of(done, load_seconds=time.monotonic() - self.started, run_id=self.run_id)

    def upstream(self) -> set[str]:
        """Return the names of the tasks this load needs, directly or not (the steps whose figures it records)."""
        names, seen, waiting = set(), set(), luigi.task.flatten(self.requires())
        while waiting:
            task = waiting.pop()
            if task.task_id not in seen:
                seen.add(task.task_id)
                names.add(type(task).__name__)
                waiting.extend(luigi.task.flatten(task.requires()))
        return names

    def raise_if_unreachable(self) -> None:
        """Raise the completeness check's connection failure, if it had one."""
        if self.unreachable is not None:
            raise self.unreachable
