"""The ASGI application: a read API over the warehouse and the daily dashboard (FastAPI, served by uvicorn)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParameter
from fastapi import Query as QueryParameter
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from workflow.server import reads, settings
from workflow.server.warehouse import Warehouse, WarehouseUnavailable

log = logging.getLogger("workflow.server")

STATIC_DIR = Path(__file__).parent / "static"
INT64 = (-(2**63), 2**63 - 1)
# The dashboard loads nothing from elsewhere: scripts from this server only (plotly.js from its Python wheel).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

UserId = Annotated[int, PathParameter(ge=INT64[0], le=INT64[1], description="the user's id (a 64-bit integer)")]
FilmId = Annotated[int, PathParameter(ge=INT64[0], le=INT64[1])]
Threshold = Annotated[float, QueryParameter(allow_inf_nan=False, description="only ratings above this")]
Day = Annotated[str | None, QueryParameter(pattern=r"^\d{4}-\d{2}-\d{2}$", description="a loaded date, YYYY-MM-DD")]


def plotly_js() -> Path | None:
    """Return the path of plotly.min.js inside the installed plotly wheel (located, not imported), or None."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"
    return path if path.exists() else None


def _jsonable(value: Any) -> Any:
    """Return a JSON-ready form of a date or decimal read from the warehouse."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(payload: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return the payload as a JSON response (serialised once, without a validation pass)."""
    body = json.dumps(payload, default=_jsonable, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


def create_app(database: settings.Database | None = None) -> FastAPI:
    """Return the application reading the given database (by default the one `settings.database()` chooses)."""
    database = database or settings.database()
    warehouse = Warehouse(database.url, size=settings.pool_size(), regrant=database.regrant)
    dashboard = reads.Dashboard(warehouse)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await warehouse.open()
        log.info("reading the warehouse %s", warehouse.safe_url)
        yield
        await warehouse.close()

    # No /docs or /redoc: FastAPI's pages load their scripts from a CDN. The schema stays at /openapi.json.
    app = FastAPI(title="Course recommendations", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.warehouse = warehouse
    _add_error_handlers(app)

    @app.get("/api/users/{user_id}/recommendations")
    async def user_recommendations(user_id: UserId, threshold: Threshold = 4.5, date: Day = None) -> Response:
        """Return the user's recommendations rated above the threshold, best first: [{course_id, title, rating}]."""
        day = _calendar_date(date)
        found, on = await reads.user_recommendations(warehouse, user_id, threshold, day)
        return json_response(found, headers={"X-Recommendation-Date": on.isoformat()})

    @app.get("/api/loads")
    async def loads(
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50, offset: Annotated[int, QueryParameter(ge=0)] = 0
    ) -> Response:
        """Return the load history, newest first: date, rows, users, invalid rows and share, duration, loaded at."""
        return json_response(await reads.load_history(warehouse, limit, offset))

    @app.get("/api/films/{film_id}")
    async def film(film_id: FilmId) -> Response:
        """Return the film's store.film row with its recommended films' titles."""
        return json_response(await reads.film(warehouse, film_id))

    @app.get("/api/dashboard")
    async def dashboard_data() -> Response:
        """Return the dashboard's chart data: loads over time, ratings, languages, top courses."""
        return json_response(await dashboard.data())

    @app.get("/healthz")
    async def healthz() -> Response:
        """Return whether the warehouse answers and the age of its newest load; 503 with the reason when not."""
        try:
            return json_response(await reads.health(warehouse))
        except WarehouseUnavailable as error:
            body = {"status": "unavailable", "warehouse": warehouse.safe_url, "detail": str(error)}
            return json_response(body, status_code=503)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly() -> FileResponse:
        path = plotly_js()
        if path is None:
            raise HTTPException(404, "plotly is not installed (pip install -r requirements.txt)")
        return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _calendar_date(text: str | None) -> dt.date | None:
    """Return the date the YYYY-MM-DD text names; 422 when it names none (2026-02-30)."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"date {text!r} is not a calendar date (YYYY-MM-DD)") from None


def _add_error_handlers(app: FastAPI) -> None:
    """Answer a missing thing with 404, an unavailable warehouse with 503, a bug with 500: JSON, no password."""

    @app.exception_handler(reads.NotFoundError)
    async def not_found(_: Request, error: reads.NotFoundError) -> Response:
        return json_response({"detail": str(error)}, status_code=404)

    @app.exception_handler(WarehouseUnavailable)
    async def unavailable(_: Request, error: WarehouseUnavailable) -> Response:
        return json_response({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(asyncpg.exceptions.InsufficientPrivilegeError)
    async def refused(_: Request, error: asyncpg.PostgresError) -> Response:
        reason = " ".join(str(error).split())
        detail = f"the reader role may not read this ({reason}): grant it SELECT (config/warehouse_grants.sql)"
        return json_response({"detail": detail}, status_code=503)

    @app.exception_handler(asyncpg.PostgresError)
    async def failed(request: Request, error: asyncpg.PostgresError) -> Response:
        log.error("%s failed: %s", request.url.path, " ".join(str(error).split()))
        return json_response({"detail": "the warehouse query failed; see the server's log"}, status_code=500)
