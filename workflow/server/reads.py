"""What the API answers, as plain data read from the warehouse: recommendations, loads, health, freshness, runs,
charts, films."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import asyncpg

from workflow import registry
from workflow.core.pipeline import Marker
from workflow.freshness import Failure, assess, due_date
from workflow.io import urls
from workflow.server.queries import on_marker
from workflow.server.warehouse import Warehouse, WarehouseUnavailable

# Columns of recommendation_loads the history shows; those the warehouse lacks yet are null.
LOAD_COLUMNS = {
    "date": "recommendation_date",
    "rows": "n_recommendations",
    "users": "n_users",
    "invalid_rows": "n_invalid",
    "invalid_share": "invalid_share",
    "duration_s": "duration_s",
    "loaded_at": "loaded_at",
    "partial": "partial",
}
# A load row's columns that count something other than its rows (the rows are its other n_* column).
NOT_ROWS = ("n_invalid", "n_users", "n_fallback")
NO_FILM_PIPELINE = "no film pipeline loaded (store.film does not exist)"


class NotFoundError(LookupError):
    """What was asked for is not in the warehouse; the message says why."""


def not_loaded_yet(error: asyncpg.exceptions.UndefinedTableError) -> WarehouseUnavailable:
    """Return the reason to give while the warehouse has no recommendation tables (nothing loaded yet)."""
    relation = " ".join(str(error).split()).removeprefix("relation ").split(" does not exist")[0]
    return WarehouseUnavailable(
        f"the warehouse holds no recommendations yet ({relation} does not exist): run the pipeline"
    )


async def user_recommendations(warehouse: Warehouse, user_id: int, threshold: float, date: dt.date | None) -> tuple:
    """Return the user's recommendations above the threshold, best first, as dicts, and their date."""
    try:
        if date is None:
            rows = await warehouse.rows("user_recommendations", user_id, threshold)
        else:
            rows = await warehouse.rows("user_recommendations_on", user_id, threshold, date)
        if not rows:
            raise NotFoundError(await _why_none(warehouse, user_id, date))
    except asyncpg.exceptions.UndefinedTableError as error:
        raise not_loaded_yet(error) from None
    found = [{"course_id": course_id, "title": title, "rating": rating} for course_id, title, rating, above, _ in rows
             if above]  # fmt: skip
    return found, rows[0][4]


async def _why_none(warehouse: Warehouse, user_id: int, date: dt.date | None) -> str:
    """Return why a user has no recommendations on the date: nothing loaded, a date not loaded, or an unknown user."""
    first, last, count, loaded = (await warehouse.rows("loaded_range", date))[0]
    if count == 0:
        return "no recommendations are loaded yet"
    if date is not None and not loaded:
        return f"{date} was never loaded: loaded dates range from {first} to {last} ({count} loaded)"
    return f"unknown user {user_id}: no recommendations for them on {date or last}"


async def load_history(warehouse: Warehouse, limit: int, offset: int) -> dict[str, Any]:
    """Return one page of the load history, newest first, with the number of loads."""
    try:
        total = (await warehouse.rows("loaded_range", None))[0][2]
        rows = await warehouse.rows("loads", limit, offset)
    except asyncpg.exceptions.UndefinedTableError:
        total, rows = 0, []
    return {"total": total, "limit": limit, "offset": offset, "loads": [load_entry(row) for (row,) in rows]}


def load_entry(row: dict[str, Any]) -> dict[str, Any]:
    """Return a load's figures under the API's names (null when the warehouse has no such column yet)."""
    return {name: row.get(column) for name, column in LOAD_COLUMNS.items()}


async def health(warehouse: Warehouse, expected: dict[str, dt.time], now: dt.datetime) -> dict[str, Any]:
    """Return that the warehouse answers, every pipeline's freshness, and the course recommendations' newest load."""
    report = await freshness(warehouse, expected, now)
    try:
        newest_date, loaded_at, age_s, loads = (await warehouse.rows("newest_load"))[0]
    except asyncpg.exceptions.UndefinedTableError:
        newest_date, loaded_at, age_s, loads = None, None, None, 0
    return {
        "status": "ok",
        **report,
        "loads": loads,
        "newest_date": newest_date,
        "newest_loaded_at": loaded_at,
        "newest_load_age_s": age_s,
    }


async def _newest_load(warehouse: Warehouse, marker: Marker) -> tuple[dt.date | None, dt.datetime | None]:
    """Return the pipeline's newest whole-day load's date and its own load's time (None, None before any load)."""
    try:
        found = await warehouse.query(on_marker("marker_newest", marker))
    except asyncpg.exceptions.UndefinedTableError:
        return None, None
    return (found[0][0], found[0][1]) if found else (None, None)


async def freshness(warehouse: Warehouse, expected: dict[str, dt.time], now: dt.datetime) -> dict[str, Any]:
    """Return every pipeline's freshness at `now`, as `python -m workflow freshness --json` prints it."""
    pipelines = registry.pipelines()
    newest = await asyncio.gather(*(_newest_load(warehouse, pipeline.marker) for pipeline in pipelines))
    names = [pipeline.name for pipeline in pipelines]
    try:
        rows = await warehouse.rows("failed_runs", names, [date for date, _ in newest])
    except asyncpg.exceptions.UndefinedTableError:  # no run history yet
        rows = []
    failures: dict[str, list[Failure]] = {name: [] for name in names}
    for pipeline, date, task, error, finished_at in rows:
        failures[pipeline].append(Failure(date, task, error and urls.hide_locations(error), finished_at))
    found = [
        assess(name, newest_date=date, loaded_at=at, failures=failures[name], now=now, expected_by=expected[name])
        for name, (date, at) in zip(names, newest, strict=True)
    ]
    return {"checked_at": now, "fresh": all(each.fresh for each in found), "pipelines": [f.as_dict() for f in found]}


async def runs(warehouse: Warehouse, expected: dict[str, dt.time], days: int, now: dt.datetime) -> dict[str, Any]:
    """Return every pipeline's last `days` dates up to yesterday (UTC), newest first, with their states and figures."""
    last = now.astimezone(dt.timezone.utc).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    pipelines = registry.pipelines()
    loads = await asyncio.gather(*(_loads_between(warehouse, pipeline.marker, first, last) for pipeline in pipelines))
    try:
        history = await warehouse.rows("task_runs", first, last)
    except asyncpg.exceptions.UndefinedTableError:  # no run history yet
        history = []
    by_date: dict[tuple[str, dt.date, bool], list[asyncpg.Record]] = {}
    for run in history:
        by_date.setdefault((run["pipeline"], run["run_date"], run["partial"]), []).append(run)
    report = []
    for pipeline, loaded in zip(pipelines, loads, strict=True):
        due = due_date(now, expected[pipeline.name])
        dates = []
        for offset in range(days):
            date = last - dt.timedelta(days=offset)
            whole, partial = by_date.get((pipeline.name, date, False), []), by_date.get((pipeline.name, date, True), [])
            dates.append(date_runs(date, loaded.get(date), whole=whole, partial=partial, due=due,
                                   expected_by=expected[pipeline.name]))  # fmt: skip
        report.append({"pipeline": pipeline.name, "expected_by": f"{expected[pipeline.name]:%H:%M}", "due_date": due,
                       "dates": dates})  # fmt: skip
    return {"checked_at": now, "first": first, "last": last, "pipelines": report}


async def _loads_between(
    warehouse: Warehouse, marker: Marker, first: dt.date, last: dt.date
) -> dict[dt.date, dict[str, Any]]:
    """Return the pipeline's load rows of the dates from `first` to `last`, by date (none before its first load)."""
    try:
        return dict(await warehouse.query(on_marker("marker_loads", marker), first, last))
    except asyncpg.exceptions.UndefinedTableError:
        return {}


def date_runs(
    date: dt.date,
    load: dict[str, Any] | None,
    *,
    whole: list[asyncpg.Record],
    partial: list[asyncpg.Record],
    due: dt.date,
    expected_by: dt.time,
) -> dict[str, Any]:
    """Return a date's state and figures from its load row (if any) and the last run of each of its tasks.

    Loaded: its whole day is loaded. Failed: not loaded whole, and the last whole-day run of one of its
    tasks failed. Partial: a partial day is loaded. Late: the date due by now is not loaded. Missing: any
    other date not loaded (a gap, or a date not due yet: `due_by` says).
    """
    failed = sorted((run for run in whole if run["status"] == "failed"), key=lambda run: run["finished_at"])
    if load is not None and not load.get("partial"):
        state = "loaded"
    elif failed:
        state = "failed"
    elif load is not None:
        state = "partial"
    else:
        state = "late" if date == due else "missing"
    steps = partial if state == "partial" else whole
    done = [run for run in steps if run["status"] == "done"]
    set_aside: dict[str, int] = {}
    for run in done:
        for reason, count in (run["set_aside"] or {}).items():
            if count:
                set_aside[reason] = set_aside.get(reason, 0) + count
    load = load or {}
    load_run = next((run for run in steps if load.get("run_id") and str(run["run_id"]) == load["run_id"]), None)
    engine_of = load_run or max(steps, key=lambda run: run["finished_at"], default=None)
    shares = [run["invalid_share"] for run in done if run["invalid_share"] is not None]
    rows = next((value for key, value in sorted(load.items()) if key.startswith("n_") and key not in NOT_ROWS), None)
    return {
        "date": date,
        "state": state,
        "due_by": dt.datetime.combine(date + dt.timedelta(days=1), expected_by, dt.timezone.utc),
        "rows": rows,
        "set_aside": set_aside,
        "invalid_rows": load.get("n_invalid"),
        "invalid_share": load.get("invalid_share", max(shares, default=None)),
        "duration_s": load.get("duration_s", round(sum(run["duration_s"] for run in steps), 3) if steps else None),
        "engine": engine_of["engine"] if engine_of else None,
        "loaded_at": load.get("loaded_at"),
        "runs": (whole or partial)[0]["runs"] if (whole or partial) else 0,
        "failed_task": failed[-1]["task"] if state == "failed" else None,
        # The error as the history holds it, but for where the databases are: the page shows no connection details.
        "error": urls.hide_locations(failed[-1]["error"]) if state == "failed" else None,
    }


async def quality(warehouse: Warehouse, days: int) -> dict[str, Any]:
    """Return both methods' quality figures of the newest `days` evaluated dates, oldest first (none before the first
    evaluation)."""
    try:
        rows = await warehouse.rows("quality", days)
    except asyncpg.exceptions.UndefinedTableError:
        rows = []
    return {"figures": [dict(row) for row in rows]}


class Dashboard:
    """The dashboard's chart data, computed with SQL aggregates once per date and warehouse state (a load renews it)."""

    def __init__(self, warehouse: Warehouse, top: int = 15, kept: int = 16) -> None:
        self.warehouse = warehouse
        self.top = top
        self.kept = kept
        self._cached: dict[dt.date | None, tuple[tuple, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def data(self, date: dt.date | None = None) -> dict[str, Any]:
        """Return every load and the results of the date (the current one by default): ratings, languages, courses."""
        try:
            state = tuple((await self.warehouse.rows("loads_state"))[0])
            if date is not None:
                first, last, count, loaded = (await self.warehouse.rows("loaded_range", date))[0]
                if not loaded:
                    raise NotFoundError(
                        f"{date} was never loaded: loaded dates range from {first} to {last} ({count} loaded)"
                        if count else "no recommendations are loaded yet"
                    )  # fmt: skip
        except asyncpg.exceptions.UndefinedTableError as error:
            raise not_loaded_yet(error) from None
        day = date or state[0]
        async with self._lock:
            cached = self._cached.get(day)
            if cached is not None and cached[0] == state:
                return cached[1]
            data = await self._compute(day)
            self._cached.pop(day, None)
            self._cached[day] = (state, data)
            while len(self._cached) > self.kept:
                self._cached.pop(next(iter(self._cached)))
            return data

    async def _compute(self, day: dt.date | None) -> dict[str, Any]:
        rows = self.warehouse.rows
        loads = [load_entry(row) for (row,) in await rows("load_series")]
        if day is None:
            return {"date": None, "loads": loads, "ratings": [], "languages": [], "top_courses": []}
        return {
            "date": day,
            "loads": loads,
            "ratings": [{"rating": r, "recommendations": n} for r, n in await rows("rating_distribution", day)],
            "languages": [
                {"language": language, "recommendations": n, "users": users}
                for language, n, users in await rows("languages", day)
            ],
            "top_courses": [
                {"course_id": course_id, "title": title, "language": language, "recommendations": n, "rating": r}
                for course_id, title, language, n, r in await rows("top_courses", day, self.top)
            ],
        }


async def film(warehouse: Warehouse, film_id: int) -> dict[str, Any]:
    """Return the film's store.film row with the titles of its recommended films, in their order."""
    if not (await warehouse.rows("film_table"))[0][0]:
        raise NotFoundError(NO_FILM_PIPELINE)
    found = await warehouse.rows("film", film_id)
    if not found:
        raise NotFoundError(f"unknown film {film_id}: it is not in store.film")
    row = found[0][0]
    ids = row.get("recommended_film_ids") or []
    titles = {row["film_id"]: row["title"] for row in await warehouse.rows("film_titles", ids)} if ids else {}
    row["recommended_films"] = [{"film_id": i, "title": titles[i]} for i in ids if i in titles]
    return row


def like_pattern(text: str) -> str:
    """Return the text with LIKE's wildcards and escape character escaped, so it matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def film_search(warehouse: Warehouse, text: str, limit: int) -> list[dict[str, Any]]:
    """Return the current films whose title holds the text (case aside), by title, as ids and titles."""
    if not (await warehouse.rows("film_table"))[0][0]:
        raise NotFoundError(NO_FILM_PIPELINE)
    rows = await warehouse.rows("film_search", like_pattern(text), limit)
    return [{"film_id": film_id, "title": title} for film_id, title in rows]
