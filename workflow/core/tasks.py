"""The building blocks of every pipeline's tasks: dated parquet targets, run records, quarantine, one-line failures.

pyarrow, pandas and the parquet code are imported by the methods that run a step: `luigi --module workflow` imports
every task, and a run that finds its targets complete never needs them (0.3 s of a no-op run).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import luigi

from workflow import config, databases, engines, lineage
from workflow.core import history, outputs
from workflow.core.pipeline import Pipeline
from workflow.errors import (
    DayNotOverError,
    InvalidSourceDataError,
    WorkflowError,
)
from workflow.io import files
from workflow.io.postgres import has_column
from workflow.io.urls import mask_passwords, safe_url

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger("luigi-interface.workflow.tasks")


class RecordedTask(luigi.Task):
    """A dated task that leaves a run record (`<output>/<date>/runs/<task>.json`) of what it did."""

    pipeline: ClassVar[Pipeline]  # the declaration of the task's pipeline

    date = luigi.DateParameter()
    partial_day = luigi.BoolParameter(
        default=False,
        description="compute a day that has not ended (UTC) from the ratings so far; "
        "its targets go to <date>/partial/ and the first run after the day ends recomputes it",
    )

    @property
    def name(self) -> str:
        """Return the task's name in snake case, as used in file names."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    @property
    def folder(self) -> Path:
        """Return the folder of this run's targets, quarantine files and run records."""
        return outputs.date_folder(self.date, self.partial_day)

    # What the run observed (rows in and out, rows dropped, the source's state), for its run record.
    facts: dict[str, Any]

    @property
    def engine(self) -> engines.Engine:
        """Return the engine of the task's transforms (the chosen one; a pipeline may pin one)."""
        return engines.current()

    def read(self, task: luigi.Task, columns: list[str] | None = None) -> pd.DataFrame:
        """Return the parquet output of a required task, its ids exact (counted in the run record's rows_in)."""
        from workflow.io import parquet  # noqa: PLC0415

        frame = parquet.read_frame(task.output().path, columns)
        self.facts["rows_in"] = self.facts.get("rows_in", 0) + len(frame)
        return frame

    def on_failure(self, exception: BaseException) -> str:
        """Return what the scheduler shows of a failure: one line for an expected one, the traceback otherwise."""
        if isinstance(exception, WorkflowError):
            return f"{type(exception).__name__}: {exception}"
        return super().on_failure(exception)


def end_of_day(date: dt.date) -> dt.datetime:
    """Return the first instant after the date's day, in UTC: data stamped before it belongs to the date."""
    return dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def refuse_unfinished_day(task: RecordedTask, table: str) -> None:
    """Refuse a date whose day (UTC) has not ended, unless the task asks for a partial day."""
    if task.partial_day or end_of_day(task.date) <= dt.datetime.now(dt.timezone.utc):
        return
    raise DayNotOverError(
        f"{task.date} is not over yet (UTC): its {table} are complete at {end_of_day(task.date):%Y-%m-%d %H:%M} UTC, "
        "when it can run; pass --partial-day to load the data so far (the first run after the day ends recomputes it)"
    )


@RecordedTask.event_handler(luigi.Event.START)
def start_run_record(task: RecordedTask) -> None:
    """Start the task's run record afresh with a new run id, hold the date's folder (removing files a killed run left
    there), and say the run started to the lineage backend, if any."""
    task.facts = {}
    task.started = time.monotonic()
    task.started_at = dt.datetime.now(dt.timezone.utc)
    task.run_id = str(uuid.uuid4())
    outputs.use(task.date)
    lineage.started(task)


@RecordedTask.event_handler(luigi.Event.PROCESSING_TIME)
def write_run_record(task: RecordedTask, seconds: float) -> None:
    """Log how long the task took and put its run on the record: the file, the warehouse's history, the lineage."""
    log.info("%s took %.2f s", task, seconds)
    _record(task, "done", seconds, task.facts)


@RecordedTask.event_handler(luigi.Event.FAILURE)
def write_failure_record(task: RecordedTask, exception: BaseException) -> None:
    """Put the failed run on the record: its duration and the one-line error (URLs in it have no password)."""
    seconds = time.monotonic() - getattr(task, "started", time.monotonic())
    error = mask_passwords(" ".join(f"{type(exception).__name__}: {exception}".split()))
    _record(task, "failed", seconds, {**getattr(task, "facts", {}), "error": error})


@RecordedTask.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)
def prepare_worker_processes(task: RecordedTask, dependency: luigi.Task) -> None:
    """Import a step's engine and rules in the scheduling process when every task runs in a process it forks
    (`--workers 2`), so they inherit pandas and pyarrow instead of each importing them (0.3 s apiece); with one
    worker the steps run in this process, and the first that needs them imports them."""
    workers = luigi.interface.core().workers
    if isinstance(dependency, ParquetTask) and (workers > 1 or luigi.worker.worker().force_multiprocessing):
        try:
            dependency.pipeline.rules_for(dependency.engine.name)
        except WorkflowError:  # the step fails with it when it runs
            pass


def _engine_name(task: RecordedTask) -> str | None:
    try:
        return task.engine.name
    except WorkflowError:  # an engine that cannot be chosen is the failure being recorded
        return None


def _record(task: RecordedTask, status: str, seconds: float, facts: dict[str, Any]) -> None:
    """Write the run record (the file first: it works when the warehouse is down), then the history and lineage."""
    now = dt.datetime.now(dt.timezone.utc)
    started_at = getattr(task, "started_at", None) or now - dt.timedelta(seconds=seconds)
    record = {
        "task": type(task).__name__,
        "date": f"{task.date:%Y-%m-%d}",
        "status": status,
        "started_at": started_at.isoformat(timespec="milliseconds"),
        "finished_at": now.isoformat(timespec="milliseconds"),
        "duration_s": round(seconds, 3),
        **({"partial_day": True} if task.partial_day else {}),
        "pipeline": task.pipeline.name,
        "engine": _engine_name(task),
        "run_id": getattr(task, "run_id", None) or str(uuid.uuid4()),
        "host": socket.gethostname(),
        **facts,
    }
    folder = task.folder / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task.name}{'.failed' if status == 'failed' else ''}.json"
    files.write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    history.record(record)
    lineage.finished(task, record)


class _OneLineFailures(logging.Filter):
    """Drop the traceback from luigi's log of an expected failure, keeping its one-line message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], WorkflowError):
            error = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()}: {type(error).__name__}: %s", (error,)
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("luigi-interface").addFilter(_OneLineFailures())


class ParquetTask(RecordedTask):
    """A step that writes one parquet target at `<output>/<date>/<task_name>.parquet` (a file, or Spark's folder)."""

    def output(self) -> files.ParquetTarget:
        return files.ParquetTarget(str(self.folder / f"{self.name}.parquet"))

    def source_url(self) -> str:
        """Return the URL of the pipeline's source database, as its declaration names it (configured or embedded)."""
        return databases.url_of(self.pipeline.source)

    @property
    def rules(self) -> ModuleType:
        """Return the rules of the task's pipeline for its engine, as the pipeline's declaration names them."""
        return self.pipeline.rules_for(self.engine.name)

    def read(self, task: luigi.Task, columns: list[str] | None = None) -> Any:
        """Return the parquet output of a required task as the engine's frame (counted in the run record's rows_in)."""
        from workflow.io import parquet  # noqa: PLC0415

        path = task.output().path
        self.facts["rows_in"] = self.facts.get("rows_in", 0) + parquet.count_rows(path)
        return self.engine.read(path, columns)

    def extract(self, url: str, table: str, columns: Any, **options: Any) -> bool:
        """Write a source table's columns (None: every column, in exact types) as the target, with io.extract's options;
        return whether it was read as of a time (its timestamp column exists) rather than as a snapshot, which the
        run record's `source` says."""
        from workflow.io import parquet  # noqa: PLC0415

        # The table and its database (password masked) name the run's input, in its record and its lineage.
        self.facts.update(source_table=f"{options.get('schema') or 'public'}.{table}", source_database=safe_url(url))
        as_of = self.engine.extract(url, table, columns, self.output().path, self, **options)
        self.engine.release()
        if not as_of:
            self.facts["source"] = f"snapshot taken {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
        rows = self.facts["rows_out"] = parquet.count_rows(self.output().path)
        self.set_status_message(f"wrote {rows:,} rows")
        return as_of

    def extract_as_of(
        self, url: str, table: str, columns: Any, *, schema: str, column: str | None, stamp_as: str, what: str
    ) -> None:
        """Write the table's columns as they stood at the end of the date: the rows `column` stamps before it, or does
        not stamp, with their stamp as `stamp_as` in UTC; a snapshot, said in the log, when the table has no such
        column. A date whose day is not over is refused (`what` names its rows), unless the run is a partial day."""
        column = column or None
        # Without timestamps the source is a snapshot: today is then the only meaningful date.
        if column and has_column(url, table, column, schema=schema):
            refuse_unfinished_day(self, what)
        cut = end_of_day(self.date)
        as_of = self.extract(
            url, table, columns, schema=schema, timestamp_column=column, before=cut, timestamp_as=stamp_as
        )
        if as_of:
            self.facts["source"] = f"as of {cut:%Y-%m-%d %H:%M:%S} UTC ({table}.{column} < that, or NULL)"
        else:
            self.facts["source"] += f" (no column {column!r})"
            log.warning("%s has no column %r: extracting the current snapshot, not the data as of %s",
                        table, column, self.date)  # fmt: skip

    def write(self, frame: Any, schema: pa.Schema | None = None) -> None:
        """Write the target atomically (it appears whole under its final name or not at all), in `schema`'s Arrow
        types when given (the pandas engine; Spark's frames carry theirs). An Arrow table built in this process (a
        step's empty result, say) is written as a file on either engine."""
        import pyarrow as pa  # noqa: PLC0415

        from workflow.io import parquet  # noqa: PLC0415

        self.set_status_message("writing")
        self.set_progress_percentage(90)
        if isinstance(frame, pa.Table):
            parquet.write_target(frame, self.output().path)
        else:
            self.engine.write(frame, self.output().path, self, schema=schema)
        self.engine.release()
        rows = self.facts["rows_out"] = parquet.count_rows(self.output().path)
        self.set_status_message(f"wrote {rows:,} rows")
        self.set_progress_percentage(100)

    def set_aside(
        self, table: str, n_rows: int, quarantined: Any, reasons: list[str], uncounted: list[str] = ()
    ) -> None:
        """Write the rows that break the rules to the quarantine file, count them, and fail if there are too many."""
        from workflow.rules import quality  # noqa: PLC0415

        path = self.folder / f"quarantined_{table}.parquet"
        self.engine.write(quarantined, str(path), self, replace=True)
        found, examples = self.engine.reason_counts(str(path))
        counts = {reason: found.get(reason, 0) for reason in reasons}
        self.facts["set_aside"] = counts
        invalid = sum(count for reason, count in {**counts, **found}.items() if reason not in uncounted)
        self.facts.update(invalid_rows=invalid, invalid_share=round(invalid / n_rows, 6) if n_rows else 0.0)
        log.info("%s: %d rows, %d set aside in %s: %s", table, n_rows, sum(found.values()), path.name,
                 ", ".join(f"{count} {reason}" for reason, count in counts.items()))  # fmt: skip
        try:
            quality.check_reason_counts(
                table, n_rows, {**counts, **found}, examples,
                max_share=config.rules().max_invalid_share, uncounted=uncounted,
            )  # fmt: skip
        except InvalidSourceDataError as error:
            raise InvalidSourceDataError(f"{error}; all of them are in {path}") from None
