"""Retention (`python -m workflow retain`): every date older than the newest N days up to yesterday (UTC) removed, for
every pipeline of the registry: its warehouse rows and load rows, its files under the output root, its run history
and luigid's task history of it.

The newest loaded date of a pipeline (the current one its views show) is never removed, nor a date a run is using.
A removed date is recomputed, as of its date, by a RangeDaily over it, as a backfill does.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from workflow import config, databases, registry, scheduler
from workflow.core import dated_load, history, outputs
from workflow.errors import ConfigurationError, DateInUseError, WorkflowError
from workflow.io.postgres import ONE_ATTEMPT, connect, read_sql
from workflow.paths import output_dir

DATE_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")


def window(today: dt.date, keep_days: int) -> dt.date | None:
    """Return the first date kept when the `keep_days` dates up to yesterday are kept (older ones go), or None when
    keep_days is 0: retention is off."""
    if keep_days < 0:
        raise ConfigurationError(f"keep_days must be 0 (retention off) or more, not {keep_days}")
    return today - dt.timedelta(days=keep_days) if keep_days else None


@dataclass
class Removed:
    """What retention removed of a date, or would remove on a dry run: warehouse rows per pipeline (None: not
    loaded), run history rows, luigid's tasks, and files with their bytes."""

    rows: dict[str, int | None] = field(default_factory=dict)
    # Pipelines whose declaration has no remove_date: their warehouse rows stay.
    undeclared: set[str] = field(default_factory=set)
    runs: int = 0
    luigid_tasks: int = 0
    files: int = 0
    bytes: int = 0

    def add(self, other: Removed) -> None:
        """Add another date's figures to these (a total)."""
        for name, rows in other.rows.items():
            self.rows[name] = (self.rows.get(name) or 0) + (rows or 0)
        self.undeclared |= other.undeclared
        self.runs += other.runs
        self.luigid_tasks += other.luigid_tasks
        self.files += other.files
        self.bytes += other.bytes

    def line(self) -> str:
        """Return the figures as one line: the rows of each pipeline, the runs, luigid's tasks, files and bytes."""
        loads = ", ".join(
            f"{name} {'not loaded' if rows is None else f'{rows:,} rows'}"
            if name not in self.undeclared
            else f"{name} rows kept (it declares no remove_date)"
            for name, rows in self.rows.items()
        )
        return (
            f"{loads}; {self.runs:,} run(s) of the run history; {self.luigid_tasks:,} luigid task(s); "
            f"{self.files:,} file(s), {self.bytes:,} bytes"
        )


def retain(keep_days: int | None = None, *, today: dt.date | None = None, dry_run: bool = False) -> Iterator[str]:
    """Yield the lines of a retention run as it removes (or, on a dry run, only counts) every date older than the
    `keep_days` dates up to yesterday (UTC); None reads `[retention] keep_days`."""
    keep = config.retention().keep_days if keep_days is None else keep_days
    today = today or dt.datetime.now(dt.timezone.utc).date()
    first = window(today, keep)
    if first is None:
        yield "retention is off ([retention] keep_days is 0 and no --keep-days): nothing removed"
        return
    prefix = "dry run, nothing removed: " if dry_run else ""
    url = databases.warehouse_url()
    loaded = {pipeline.name: dated_load.all_loaded_dates(url, pipeline.marker) for pipeline in registry.pipelines()}
    newest = {name: dates[-1] for name, dates in loaded.items() if dates}
    luigid_url, luigid_skipped = luigid_history()
    found = set().union(*loaded.values(), dated_folders(), lineage_files(), pending_records().keys())
    found |= run_history_dates(url, first) | luigid_dates(luigid_url)
    older = sorted(date for date in found if date < first)
    yield (
        f"{prefix}keeping the {keep} date(s) {first} to {today - dt.timedelta(days=1)} (UTC); "
        + (f"{len(older)} older date(s) found" if older else f"no date before {first}: nothing to remove")
    )
    if luigid_skipped:
        yield f"{prefix}luigid's task history skipped: {luigid_skipped}"
    total, removed_dates = Removed(), 0
    for date in older:
        current = [name for name, date_of in newest.items() if date_of == date]
        if current:
            yield f"{prefix}{date}: kept, the newest date {' and '.join(current)} loaded (the current one)"
            continue
        try:
            with outputs.exclusive(date):  # no run of the date starts meanwhile
                removed = remove(url, date, loaded, luigid_url, dry_run=dry_run)
        except DateInUseError:
            yield f"{prefix}{date}: skipped, a run of it is using {outputs.date_dir(date)}"
            continue
        removed_dates += 1
        total.add(removed)
        yield f"{prefix}{date}: {removed.line()}"
    if older:
        yield f"{prefix}total, {removed_dates} date(s): {total.line()}"


def remove(
    url: str, date: dt.date, loaded: dict[str, list[dt.date]], luigid_url: str | None, *, dry_run: bool
) -> Removed:
    """Return what a date had (its warehouse rows per pipeline, run history, luigid's tasks, files), removed unless
    this is a dry run; the caller holds the date's folder lock."""
    removed = Removed()
    for pipeline in registry.pipelines():
        if pipeline.remove_date is None:
            removed.rows[pipeline.name] = None
            removed.undeclared.add(pipeline.name)
        elif date not in loaded[pipeline.name]:
            removed.rows[pipeline.name] = None
        else:
            removed.rows[pipeline.name] = pipeline.remove_date(url, date, dry_run)
    removed.runs = remove_runs(url, date, dry_run=dry_run)
    removed.luigid_tasks = remove_luigid_tasks(luigid_url, date, dry_run=dry_run) if luigid_url else 0
    paths = [outputs.date_dir(date), outputs.lineage_file(date), *pending_records().get(date, [])]
    for path in paths:
        files = [path] if path.is_file() else [found for found in path.rglob("*") if found.is_file()]
        files = [found for found in files if found.name != outputs.LOCK_NAME]  # the folder's lock is no data
        removed.files += len(files)
        removed.bytes += sum(found.stat().st_size for found in files)
        if dry_run:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return removed


def dated_folders() -> set[dt.date]:
    """Return the dates of the folders under the output root (`<YYYY-MM-DD>/`)."""
    root = output_dir()
    folders = root.iterdir() if root.is_dir() else []
    return {as_date(path.name) for path in folders if path.is_dir() and as_date(path.name)}


def lineage_files() -> set[dt.date]:
    """Return the dates of the OpenLineage event files."""
    folder = outputs.lineage_file(dt.date.min).parent
    return {as_date(path.stem) for path in folder.glob("*.jsonl") if as_date(path.stem)}


def pending_records() -> dict[dt.date, list[Path]]:
    """Return the run records waiting for the warehouse (`<output>/history-pending/`), by the date of their run."""
    found: dict[dt.date, list[Path]] = {}
    for path in sorted(history.pending_dir().glob("*.json")):
        try:
            date = as_date(json.loads(path.read_text()).get("date", ""))
        except (OSError, ValueError, AttributeError):
            continue  # being written, or not a run record: not retention's to remove
        if date:
            found.setdefault(date, []).append(path)
    return found


def as_date(text: str) -> dt.date | None:
    """Return the date a name spells (`YYYY-MM-DD`), or None."""
    if not DATE_NAME.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def run_history_dates(url: str, before: dt.date) -> set[dt.date]:
    """Return the dates of the warehouse's run history (workflow.task_runs) older than `before`."""
    with connect(url) as connection:
        if not history.exists(connection):
            return set()
        return set(connection.execute(sa.text(read_sql(history.SQL, "task_run_dates_before")), {"before": before})
                   .scalars())  # fmt: skip


def remove_runs(url: str, date: dt.date, *, dry_run: bool) -> int:
    """Return the date's task runs in the run history, removed unless this is a dry run."""
    with connect(url) as connection:
        if not history.exists(connection):
            return 0
        if dry_run:
            return connection.execute(sa.text(read_sql(history.SQL, "task_runs_count")), {"run_date": date}).scalar()
        return connection.execute(sa.text(read_sql(history.SQL, "remove_task_runs")), {"run_date": date}).rowcount


def luigid_history() -> tuple[str | None, str]:
    """Return the URL of luigid's task history and an empty reason, or None and why it is skipped (no database, not
    reachable, no tables); the embedded server is not started for it."""
    if os.environ.get("LUIGI_TASK_HISTORY_URL"):
        url = scheduler.task_history_url()
    else:
        server = databases.embedded_server()
        if server.port() is None:
            return None, f"the embedded server in {server.root} is not running"
        url = server.url(scheduler.TASK_HISTORY_DATABASE)
    try:
        with connect(url, ONE_ATTEMPT) as connection:
            inspector = sa.inspect(connection)
            if not all(inspector.has_table(table) for table in ("tasks", "task_parameters", "task_events")):
                return None, "its database has no task history tables"
    except WorkflowError as error:
        return None, str(error)
    return url, ""


def luigid_dates(url: str | None) -> set[dt.date]:
    """Return the dates of the tasks in luigid's task history (their `date` parameter)."""
    if url is None:
        return set()
    with connect(url, ONE_ATTEMPT) as connection:
        values = connection.execute(sa.text(read_sql(history.SQL, "luigi_task_dates"))).scalars()
        return {as_date(value) for value in values if as_date(value or "")}


def remove_luigid_tasks(url: str, date: dt.date, *, dry_run: bool) -> int:
    """Return the date's tasks in luigid's task history, removed (with their parameters and events) unless this is a
    dry run."""
    with connect(url, ONE_ATTEMPT) as connection:
        statement = read_sql(history.SQL, "luigi_tasks_count" if dry_run else "remove_luigi_tasks")
        result = connection.execute(sa.text(statement), {"date": f"{date:%Y-%m-%d}"})
        return result.scalar() if dry_run else result.rowcount
