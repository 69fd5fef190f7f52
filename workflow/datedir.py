"""A date's output folder: who is using it (a lock per date) and the temporary files killed runs left in it."""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from workflow import config

log = logging.getLogger("workflow.datedir")

LOCK_NAME = ".lock"
# Files written under a temporary name, then renamed into place: luigi's `<target>-luigi-tmp-<n>` and
# the project's own `.<name>.tmp-<pid>`.
TEMPORARY_PATTERNS = ("*-luigi-tmp-*", ".*.tmp-*")

# The dates this process uses: a shared lock on each, held until the process exits.
_held: dict[Path, IO] = {}


class DateInUseError(RuntimeError):
    """Another run is using the date's folder."""


def temporary_name(path: Path) -> Path:
    """Return the name a file is written under before it is renamed to `path`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def stale_temporaries(folder: Path) -> list[Path]:
    """Return the temporary files under a date's folder (stale once no run holds the date)."""
    return [path for pattern in TEMPORARY_PATTERNS for path in folder.rglob(pattern) if path.is_file()]


def use(date: dt.date) -> None:
    """Hold a shared lock on the date for this process; the first user when no other run holds it removes stale files.

    Every run of a date holds its lock while it writes there, so files left by a killed run are only
    ever removed by a run that knows no other run of the date is alive.
    """
    folder = config.date_dir(date)
    if folder in _held:
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "a")  # held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # another run of the date is alive: its temporary files are not stale
    else:
        _remove(stale_temporaries(folder))
    fcntl.flock(handle, fcntl.LOCK_SH)
    _held[folder] = handle


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    if paths:
        log.info("removed %d temporary file(s) a killed run left: %s", len(paths), ", ".join(p.name for p in paths))


@contextmanager
def exclusive(date: dt.date) -> Iterator[Path]:
    """Yield the date's folder while holding its lock alone (no run of the date is alive), or raise DateInUseError."""
    folder = config.date_dir(date)
    if not folder.exists():
        yield folder
        return
    with open(folder / LOCK_NAME, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DateInUseError(f"a run of {date} is using {folder}; try again once it has finished") from None
        yield folder
