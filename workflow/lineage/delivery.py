"""Where run events go: JSON lines per date under `<output>/lineage/`, and OpenLineage's client, waited for briefly.

The client's backend gets at most [lineage] wait_s seconds per event. An event it does not take in time, or
refuses, is logged as not delivered, and the run sends it nothing more: a state file tells every process of the
run (luigi's workers are forked), so a backend that is down or slow costs a run a few seconds at most.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import threading
from pathlib import Path

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunEvent
from openlineage.client.serde import Serde

from workflow import lineage
from workflow.core import outputs
from workflow.io.urls import mask_passwords

log = logging.getLogger("luigi-interface.workflow.lineage")

_client: tuple[int, OpenLineageClient] | None = None  # this process's client, by process id (forks make their own)


def deliver(event: RunEvent, date: dt.date, settings: lineage.Settings) -> None:
    """Append the event to the date's file and hand it to the client's backend, as the settings say."""
    what = f"{event.eventType.value} of {event.job.name}"
    if settings.file:
        try:
            append_line(outputs.lineage_file(date), Serde.to_json(event))
        except OSError as error:
            log.warning("lineage: %s not written to %s: %s", what, outputs.lineage_file(date), error)
    if settings.client:
        send(event, what, settings.wait_s)


def append_line(path: Path, line: str) -> None:
    """Append one line to a file with a single write under an exclusive lock (forked workers append concurrently)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def client() -> OpenLineageClient:
    """Return this process's client, configured as OpenLineage's client configures itself (its variables, its file)."""
    global _client  # noqa: PLW0603  (one client per process)
    if _client is None or _client[0] != os.getpid():
        before = set(os.environ)
        try:
            _client = (os.getpid(), OpenLineageClient())
        finally:
            # The client copies OPENLINEAGE_URL into OPENLINEAGE__TRANSPORT__ variables while it reads its settings:
            # leave the environment as it was (a later run of this process reads the variables it sets itself).
            for name in set(os.environ) - before:
                del os.environ[name]
    return _client[1]


def send(event: RunEvent, what: str, wait_s: float) -> None:
    """Hand the event to the client, waiting at most `wait_s` seconds; log it as not delivered otherwise."""
    if lineage.undelivered_file().exists():
        log.info("lineage: %s not delivered: the OpenLineage backend failed earlier in this run", what)
        return
    outcome: list[BaseException | None] = []

    def emit() -> None:
        try:
            client().emit(event)
            outcome.append(None)
        except Exception as error:  # any failure of any transport is reported the same way
            outcome.append(error)

    # A daemon thread: one still waiting for a slow backend never holds up the process's exit.
    thread = threading.Thread(target=emit, name="openlineage-emit", daemon=True)
    thread.start()
    thread.join(wait_s)
    if outcome and outcome[0] is None:
        log.debug("lineage: %s delivered", what)
        return
    if outcome:
        error = outcome[0]
        reason = mask_passwords(" ".join(f"{type(error).__name__}: {error}".split()))[:300]
    else:
        reason = f"no answer within {wait_s:g} s ([lineage] wait_s)"
    lineage.undelivered_file().touch()
    log.warning("lineage: %s not delivered (%s); no more events go to the OpenLineage backend in this run", what,
                reason)  # fmt: skip
