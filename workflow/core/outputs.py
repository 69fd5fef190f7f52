"""Where targets live (the output root, a date's folder), who is using a date (its lock), and what killed runs left."""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from workflow.errors import DateInUseError
from workflow.io.files import TEMPORARY_PATTERNS
from workflow.paths import output_dir

log = logging.getLogger("luigi-interface.workflow.outputs")

LOCK_NAME = ".lock"

# The dates this process uses: a shared lock on each, held until the process exits.
_held: dict[Path, IO] = {}


def date_dir(date: dt.date) -> Path:
    """Return the folder of a date's parquet targets, quarantine files and run records."""
    return output_dir() / f"{date:%Y-%m-%d}"


def lineage_file(date: dt.date) -> Path:
    """Return the file of the date's OpenLineage events, `<output>/lineage/<YYYY-MM-DD>.jsonl` (one JSON line each)."""
    return output_dir() / "lineage" / f"{date:%Y-%m-%d}.jsonl"


def date_folder(date: dt.date, partial_day: bool = False) -> Path:
    """Return the folder of a date's targets: `<output>/<date>/`, or its `partial/` subfolder for a day not over."""
    folder = date_dir(date)
    return folder / "partial" if partial_day else folder


def run_records_dirs(date: dt.date) -> list[Path]:
    """Return the folders of a date's run records (the whole day's, then a partial day's)."""
    return [date_folder(date, partial) / "runs" for partial in (False, True)]


def stale_temporaries(folder: Path) -> list[Path]:
    """Return the temporary files and folders (Spark's) under a date's folder (stale once no run holds the date)."""
    found = {path for pattern in TEMPORARY_PATTERNS for path in folder.rglob(pattern)}
    return sorted(path for path in found if not any(parent in found for parent in path.parents))


def use(date: dt.date) -> None:
    """Hold a shared lock on the date for this process; the first user when no other run holds it removes stale files.

    Every run of a date holds its lock while it writes there, so files left by a killed run are only
    ever removed by a run that knows no other run of the date is alive.
    """
    folder = date_dir(date)
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
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if paths:
        log.info("removed %d temporary file(s) a killed run left: %s", len(paths), ", ".join(p.name for p in paths))


@contextmanager
def exclusive(date: dt.date) -> Iterator[Path]:
    """Yield the date's folder while holding its lock alone (no run of the date is alive), or raise DateInUseError."""
    folder = date_dir(date)
    if not folder.exists():
        yield folder
        return
    with open(folder / LOCK_NAME, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DateInUseError(f"a run of {date} is using {folder}; try again once it has finished") from None
        yield folder
