"""Whether each pipeline is fresh: the date due by now loaded, and no failed run of a date not loaded since.

Yesterday (UTC) is due at `[freshness] expected_by` today (a UTC time of day; `<pipeline>_expected_by`
for one pipeline); until then the day before is. The rule takes plain values: `python -m workflow freshness`
and the read server's /api/freshness and /healthz read them from the warehouse, each its own way. Neither
luigi nor a database is imported here, and settings are read from luigi.cfg's files with configparser.
"""

from __future__ import annotations

import configparser
import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.errors import ConfigurationError
from workflow.paths import PROJECT_ROOT

DEFAULT_EXPECTED_BY = dt.time(3, 0)
# Where luigi reads its settings, in its order (later files win), then the repository's; LUIGI_CONFIG_PATH comes last.
LUIGI_CONFIG_FILES = (
    "/etc/luigi/client.cfg", "/etc/luigi/luigi.cfg", "client.cfg", "luigi.cfg", str(PROJECT_ROOT / "luigi.cfg"),
)  # fmt: skip


@dataclass(frozen=True)
class Failure:
    """A failed task run of a date, as the run history holds it."""

    date: dt.date
    task: str
    error: str | None
    finished_at: dt.datetime


@dataclass(frozen=True)
class Freshness:
    """A pipeline's freshness: fresh, late or failed, with the newest loaded date, its own load's time and age."""

    pipeline: str
    state: str  # "fresh", "late" or "failed"
    newest_date: dt.date | None
    loaded_at: dt.datetime | None  # when the newest date's own load committed
    age_s: float | None  # seconds since then
    due_date: dt.date  # the newest date that should be loaded by now
    expected_by: dt.time  # UTC time of day by which yesterday's load should be in
    detail: str

    @property
    def fresh(self) -> bool:
        """Return whether the pipeline is fresh."""
        return self.state == "fresh"

    def as_dict(self) -> dict[str, Any]:
        """Return the freshness as JSON-ready values (dates and times in ISO 8601, UTC)."""
        return {
            "pipeline": self.pipeline,
            "state": self.state,
            "newest_date": self.newest_date and self.newest_date.isoformat(),
            "loaded_at": self.loaded_at and self.loaded_at.astimezone(dt.timezone.utc).isoformat(),
            "age_s": self.age_s,
            "due_date": self.due_date.isoformat(),
            "expected_by": self.expected_by.strftime("%H:%M"),
            "detail": self.detail,
        }


def due_date(now: dt.datetime, expected_by: dt.time) -> dt.date:
    """Return the newest date that should be loaded at `now`: yesterday once today's expected time has passed."""
    today = now.astimezone(dt.timezone.utc).date()
    due = dt.datetime.combine(today, expected_by, dt.timezone.utc)
    return today - dt.timedelta(days=1 if now >= due else 2)


def assess(
    pipeline: str,
    *,
    newest_date: dt.date | None,
    loaded_at: dt.datetime | None,
    failures: Iterable[Failure],
    now: dt.datetime,
    expected_by: dt.time = DEFAULT_EXPECTED_BY,
) -> Freshness:
    """Return the pipeline's freshness at `now` from its newest whole-day load and the failed runs of its dates.

    Failed: a run of a date newer than the newest load failed (the newest such failure is named).
    Fresh otherwise, when the date due by now is loaded; late when it is not.
    """
    due = due_date(now, expected_by)
    age = (now - loaded_at).total_seconds() if loaded_at is not None else None
    newest = f"newest loaded {newest_date}" if newest_date else "nothing loaded yet"
    if loaded_at is not None:
        newest += f" (loaded {loaded_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)"
    unresolved = [failure for failure in failures if newest_date is None or failure.date > newest_date]
    if unresolved:
        last = max(unresolved, key=lambda failure: (failure.date, failure.finished_at))
        state, detail = "failed", f"{last.date} failed in {last.task}: {last.error or 'no error recorded'}; {newest}"
    elif newest_date is not None and newest_date >= due:
        state, detail = "fresh", newest
    else:
        deadline = dt.datetime.combine(due + dt.timedelta(days=1), expected_by, dt.timezone.utc)
        state, detail = "late", f"{due} was due by {deadline:%Y-%m-%d %H:%M} UTC; {newest}"
    return Freshness(pipeline, state, newest_date, loaded_at, age, due, expected_by, detail)


def readable_age(seconds: float) -> str:
    """Return an age in the unit that reads best: `42 s`, `17 min`, `5.3 h` or `2.1 d`."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 2 * 86400 else f"{seconds / 86400:.1f} d"


def parse_time(text: str, origin: str) -> dt.time:
    """Return the UTC time of day `HH:MM` names, or fail naming the setting."""
    try:
        value = dt.time.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(f"{origin} is {text!r}, not a UTC time of day like 03:00") from None
    return value.replace(tzinfo=None)


def expected_by(pipelines: Sequence[str], files: Sequence[str | Path] | None = None) -> dict[str, dt.time]:
    """Return each pipeline's expected time from luigi.cfg's [freshness] (`<pipeline>_expected_by`, else
    `expected_by`, else 03:00), read as luigi reads its files."""
    if files is None:
        files = [*LUIGI_CONFIG_FILES, *filter(None, [os.environ.get("LUIGI_CONFIG_PATH")])]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(files)
    section = parser["freshness"] if parser.has_section("freshness") else {}
    default = section.get("expected_by")
    times = {}
    for name in pipelines:
        option = f"{name}_expected_by" if section.get(f"{name}_expected_by") else "expected_by"
        text = section.get(option) or default
        times[name] = parse_time(text, f"[freshness] {option}") if text else DEFAULT_EXPECTED_BY
    return times
