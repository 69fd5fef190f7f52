"""OpenLineage run events of every task run (START, then COMPLETE or FAIL), off by default.

Lineage is on when `[lineage] file = true` (JSON lines in `<output>/lineage/<date>.jsonl`) or when OpenLineage's
client finds a configuration of its own (OPENLINEAGE_URL, OPENLINEAGE__TRANSPORT__* variables, an openlineage.yml).
Off, each hook costs one cached check and the client is never imported. The events are built in `events` and
`datasets`, delivered in `delivery`: a backend that is down or slow never fails or stalls a run.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import luigi

from workflow import config
from workflow.io.urls import mask_passwords

log = logging.getLogger("luigi-interface.workflow.lineage")


@dataclass(frozen=True)
class Settings:
    """What this process does with lineage, read once: the [lineage] section and whether the client is configured."""

    file: bool  # append each event to <output>/lineage/<date>.jsonl
    client: bool  # hand each event to OpenLineage's client, configured by its own settings
    namespace: str  # the jobs' namespace
    wait_s: float  # seconds an event may take to reach the client's backend

    @property
    def on(self) -> bool:
        """Return whether any event is emitted."""
        return self.file or self.client


_settings: Settings | None = None


def client_configured() -> bool:
    """Return whether OpenLineage's client would find a transport of its own: OPENLINEAGE_URL, OPENLINEAGE__TRANSPORT__
    variables or an openlineage.yml (OPENLINEAGE_CONFIG, the working folder, ~/.openlineage), unless
    OPENLINEAGE_DISABLED=true."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OPENLINEAGE_URL") or any(name.startswith("OPENLINEAGE__TRANSPORT__") for name in os.environ):
        return True
    files = (os.environ.get("OPENLINEAGE_CONFIG"), Path.cwd() / "openlineage.yml",
             Path.home() / ".openlineage" / "openlineage.yml")  # fmt: skip
    return any(path and Path(path).is_file() for path in files)


def settings() -> Settings:
    """Return this process's lineage settings, read on first use (worker processes inherit them when read before)."""
    global _settings  # noqa: PLW0603  (read once per process: the hooks stay cheap when lineage is off)
    if _settings is None:
        section = config.lineage()
        _settings = Settings(section.file, client_configured(), section.namespace, section.wait_s)
    return _settings


# This run's key: set in the process that runs luigi, inherited by the worker processes it forks. A backend that
# failed once is not asked again in the run (the state file says so to every process of the run).
_run = f"{os.getpid()}-{time.time_ns()}"
_run_pid = os.getpid()


def undelivered_file() -> Path:
    """Return the file whose presence says the run's backend failed to take an event (no more are sent to it)."""
    return Path(tempfile.gettempdir()) / f"workflow-lineage-{_run}.undelivered"


@atexit.register
def _forget_run() -> None:
    """Remove the run's state file when the process that started the run ends (forked workers leave it)."""
    if os.getpid() == _run_pid:
        undelivered_file().unlink(missing_ok=True)


def reset() -> None:
    """Forget the settings read and start a new run for delivery (its backend asked afresh): tests, or new settings."""
    global _settings, _run, _run_pid
    _forget_run()
    _settings, _run, _run_pid = None, f"{os.getpid()}-{time.time_ns()}", os.getpid()


def started(task: Any) -> None:
    """Emit the task run's START event, when lineage is on."""
    if settings().on:
        _emit(task, None)


def finished(task: Any, record: dict[str, Any]) -> None:
    """Emit the task run's COMPLETE or FAIL event from its run record, when lineage is on."""
    if settings().on:
        _emit(task, record)


def _emit(task: Any, record: dict[str, Any] | None) -> None:
    """Build the event and deliver it; lineage never fails a run, so any error is logged instead."""
    kind = "START" if record is None else "COMPLETE" if record.get("status") == "done" else "FAIL"
    try:
        from workflow.lineage import delivery, events  # noqa: PLC0415  (the client: imported only when on)

        delivery.deliver(events.run_event(task, record, settings()), task.date, settings())
    except Exception as error:
        reason = mask_passwords(" ".join(f"{type(error).__name__}: {error}".split()))[:300]
        log.warning("lineage: the %s event of %s was not emitted: %s", kind, task, reason)


@luigi.Task.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)
def _prepare_workers(task: luigi.Task, dependency: luigi.Task) -> None:
    """Import the client in the scheduling process when lineage is on, so the worker processes it forks for each
    task inherit it instead of each importing it (a fifth of a second apiece)."""
    if settings().on:
        from workflow.lineage import events  # noqa: F401, PLC0415
