"""The warehouse's run history (`workflow.task_runs`): every task run of every pipeline, successes and failures alike.

A run is recorded as it ends. When the warehouse cannot be reached then, its record waits as a file
under `<output>/history-pending/`, and the next run that reaches the warehouse records it, once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workflow import databases
from workflow.errors import WorkflowError
from workflow.freshness import Failure
from workflow.io import files
from workflow.io.postgres import ONE_ATTEMPT, connect, kept, read_sql
from workflow.io.urls import safe_url
from workflow.paths import output_dir

log = logging.getLogger("luigi-interface.workflow.history")

SQL = Path(__file__).parent / "sql"
# The run record's keys that are columns of the table (the record's `date` is run_date); the others go to details.
COLUMNS = (
    "run_id", "pipeline", "task", "engine", "started_at", "finished_at", "duration_s", "status", "rows_in",
    "rows_out", "set_aside", "invalid_rows", "invalid_share", "error", "host",
)  # fmt: skip
# After a failed attempt, this process keeps its records as files for this long without asking again.
COOL_OFF_S = 30.0

_unreachable_until: dict[str, float] = {}  # by warehouse (its masked URL)


def pending_dir() -> Path:
    """Return the folder of run records that wait for the warehouse."""
    return output_dir() / "history-pending"


def record(run: dict[str, Any]) -> None:
    """Record a task run in the warehouse's history, with the runs that waited for it; keep it as a file on failure."""
    try:
        url = databases.warehouse_url()
    except WorkflowError as error:
        _keep(run)
        log.warning("run history: %s; the record of %s waits in %s", error, run["task"], pending_dir())
        return
    if time.monotonic() < _unreachable_until.get(safe_url(url), 0.0):
        _keep(run)
        return
    waiting = sorted(pending_dir().glob("*.json"))
    try:
        with kept(url, ONE_ATTEMPT) as connection:
            prepare(connection)
            insert(connection, [run])
            insert(connection, [json.loads(path.read_text()) for path in waiting], from_file=True)
    except (WorkflowError, sa.exc.SQLAlchemyError, OSError, ValueError) as error:
        _unreachable_until[safe_url(url)] = time.monotonic() + COOL_OFF_S
        _keep(run)
        reason = " ".join(str(error).split())[:300]
        log.warning("run history: %s; the record of %s waits in %s for the next run", reason, run["task"],
                    pending_dir())  # fmt: skip
        return
    for path in waiting:
        path.unlink(missing_ok=True)
    if waiting:
        log.info("run history: recorded %d run(s) that had waited for the warehouse", len(waiting))


def _keep(run: dict[str, Any]) -> None:
    """Keep a run's record as a file until a run reaches the warehouse."""
    folder = pending_dir()
    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / f"{run['run_id']}.json", json.dumps(run, default=str) + "\n")


def exists(connection: sa.Connection) -> bool:
    """Return whether the warehouse behind the connection holds the history table (made by the first recorded run)."""
    return connection.exec_driver_sql("SELECT to_regclass('workflow.task_runs')").scalar() is not None


def prepare(connection: sa.Connection) -> None:
    """Make the history table if it is missing (concurrent makers wait in turn)."""
    if not exists(connection):
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('workflow.task_runs'))"))
        connection.exec_driver_sql(read_sql(SQL, "run_history_schema"))


def insert(connection: sa.Connection, runs: list[dict[str, Any]], *, from_file: bool = False) -> None:
    """Insert run records into the history; a run already there is left as it is."""
    if runs:
        connection.execute(sa.text(read_sql(SQL, "record_task_run")), [row(run, from_file) for run in runs])


def row(run: dict[str, Any], from_file: bool = False) -> dict[str, Any]:
    """Return the history row of a run record: its columns, the rest of it as details."""
    values = {column: run.get(column) for column in COLUMNS}
    details = {key: value for key, value in run.items() if key not in COLUMNS and key not in ("date", "partial_day")}
    return {
        **values,
        "run_date": dt.date.fromisoformat(run["date"]),
        "partial": bool(run.get("partial_day", False)),
        "set_aside": None if values["set_aside"] is None else json.dumps(values["set_aside"]),
        "details": json.dumps(details, default=str),
        "from_file": from_file,
    }


def failures(url: str, pipeline: str, after: dt.date | None) -> list[Failure]:
    """Return the pipeline's failed whole-day task runs of dates after `after` (every date when None)."""
    with connect(url) as connection:
        if not exists(connection):
            return []
        rows = connection.execute(sa.text(read_sql(SQL, "failed_runs_after")), {"pipeline": pipeline, "after": after})
        return [Failure(date, task, error, finished_at) for date, task, error, finished_at in rows]


def runs_of(url: str, date: dt.date) -> list[dict[str, Any]] | None:
    """Return every recorded task run of the date (all pipelines), oldest first; None when there is no history yet."""
    with connect(url) as connection:
        if not exists(connection):
            return None
        rows = connection.execute(sa.text(read_sql(SQL, "task_runs_of_date")), {"run_date": date}).mappings()
        return [dict(found) for found in rows]
