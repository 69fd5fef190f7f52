"""What the API answers, as plain data read from the warehouse: recommendations, loads, health, charts, films."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import asyncpg

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


async def health(warehouse: Warehouse) -> dict[str, Any]:
    """Return that the warehouse answers, its newest load and that load's age in seconds."""
    try:
        newest_date, loaded_at, age_s, loads = (await warehouse.rows("newest_load"))[0]
    except asyncpg.exceptions.UndefinedTableError:
        newest_date, loaded_at, age_s, loads = None, None, None, 0
    return {
        "status": "ok",
        "warehouse": warehouse.safe_url,
        "loads": loads,
        "newest_date": newest_date and newest_date.isoformat(),
        "newest_loaded_at": loaded_at and loaded_at.isoformat(),
        "newest_load_age_s": age_s,
    }


class Dashboard:
    """The dashboard's chart data, computed with SQL aggregates once per warehouse state (a new load renews it)."""

    def __init__(self, warehouse: Warehouse, top: int = 15) -> None:
        self.warehouse = warehouse
        self.top = top
        self._cached: tuple[tuple, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def data(self) -> dict[str, Any]:
        """Return loads over time, the rating distribution, recommendations per language and the top courses."""
        try:
            newest_date, loaded_at, _, loads = (await self.warehouse.rows("newest_load"))[0]
        except asyncpg.exceptions.UndefinedTableError as error:
            raise not_loaded_yet(error) from None
        async with self._lock:
            state = (newest_date, loaded_at, loads)
            if self._cached is not None and self._cached[0] == state:
                return self._cached[1]
            data = await self._compute()
            self._cached = (state, data)
            return data

    async def _compute(self) -> dict[str, Any]:
        rows = self.warehouse.rows
        return {
            "loads": [load_entry(row) for (row,) in await rows("load_series")],
            "ratings": [{"rating": r, "recommendations": n} for r, n in await rows("rating_distribution")],
            "languages": [
                {"language": language, "recommendations": n, "users": users}
                for language, n, users in await rows("languages")
            ],
            "top_courses": [
                {"course_id": course_id, "title": title, "language": language, "recommendations": n, "rating": r}
                for course_id, title, language, n, r in await rows("top_courses", self.top)
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
