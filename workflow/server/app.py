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
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflow.server import models, reads, settings
from workflow.server.files import StaticFile
from workflow.server.warehouse import Warehouse, WarehouseUnavailable

log = logging.getLogger("workflow.server")

STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript"}
RETRY_AFTER_S = 5
# The dashboard loads nothing from elsewhere: scripts from this server only (plotly.js from its Python wheel).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

UserId = Annotated[
    int, PathParameter(ge=models.INT64_MIN, le=models.INT64_MAX, description="the user's id (a 64-bit integer)")
]
FilmId = Annotated[int, PathParameter(ge=models.INT64_MIN, le=models.INT64_MAX, description="a 64-bit integer")]
Threshold = Annotated[float, QueryParameter(allow_inf_nan=False, description="only ratings above this")]
LoadedDate = Annotated[models.Day | None, QueryParameter(description="a loaded date (YYYY-MM-DD); default: current")]
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="loads per page")]
Offset = Annotated[int, QueryParameter(ge=0, le=models.INT64_MAX, description="loads skipped (a 64-bit integer)")]
Days = Annotated[int, QueryParameter(ge=1, le=366, description="how many dates, up to yesterday (UTC)")]
Evaluated = Annotated[int, QueryParameter(ge=1, le=3660, description="how many of the newest evaluated dates")]
# Text PostgreSQL can hold: no NUL character.
TitlePart = Annotated[
    str, QueryParameter(min_length=1, max_length=200, pattern=r"^[^\x00]*$", description="part of a film's title")
]
Matches = Annotated[int, QueryParameter(ge=1, le=100, description="films at most")]

RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before asking again", "schema": {"type": "integer"}}}
UNAVAILABLE = {"model": models.Problem, "description": "the warehouse cannot answer now", "headers": RETRY_AFTER}
NOT_FOUND = {"model": models.Problem, "description": "not in the warehouse; the detail says why"}


def plotly_js() -> Path | None:
    """Return the path of plotly.min.js inside the installed plotly wheel (located, not imported), or None."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"
    return path if path.exists() else None


def _jsonable(value: Any) -> Any:
    """Return a JSON-ready form of a date, time or decimal read from the warehouse."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(payload: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return the payload as a JSON response (serialised once, without a validation pass)."""
    body = json.dumps(payload, default=_jsonable, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


class HeadAsGet:
    """Answer HEAD wherever GET is answered: the GET's status and headers, without its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def create_app(database: settings.Database | None = None) -> FastAPI:
    """Return the application reading the given database (by default the one `settings.database()` chooses)."""
    database = database or settings.database()
    warehouse = Warehouse(database.url, size=settings.pool_size(), regrant=database.regrant)
    dashboard = reads.Dashboard(warehouse)
    expected = settings.expected_by()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await warehouse.open()
        log.info("reading the warehouse %s", warehouse.safe_url)
        yield
        await warehouse.close()

    # No /docs or /redoc: FastAPI's pages load their scripts from a CDN. The schema stays at /openapi.json.
    app = FastAPI(
        title="Course recommendations",
        version="2",
        description="A read API over the warehouse: recommendations, loads, freshness, runs, quality, the dashboard.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses={503: UNAVAILABLE},
    )
    app.state.warehouse = warehouse
    app.add_middleware(HeadAsGet)
    _add_error_handlers(app)

    @app.get(
        "/api/users/{user_id}/recommendations",
        response_model=list[models.Recommendation],
        responses={
            200: {"headers": {"X-Recommendation-Date": {"description": "the date of these recommendations",
                                                        "schema": {"type": "string", "format": "date"}}}},
            404: NOT_FOUND,
        },
    )  # fmt: skip
    async def user_recommendations(user_id: UserId, threshold: Threshold = 4.5, date: LoadedDate = None) -> Response:
        """Return the user's recommendations rated above the threshold, best first, current or of a loaded date."""
        found, on = await reads.user_recommendations(warehouse, user_id, threshold, date)
        return json_response(found, headers={"X-Recommendation-Date": on.isoformat()})

    @app.get("/api/loads", response_model=models.LoadPage)
    async def loads(limit: Limit = 50, offset: Offset = 0) -> Response:
        """Return the load history of the course recommendations, newest first, a page at a time."""
        return json_response(await reads.load_history(warehouse, limit, offset))

    @app.get("/api/films", response_model=list[models.FilmTitle], responses={404: NOT_FOUND})
    async def films(title: TitlePart, limit: Matches = 20) -> Response:
        """Return the current films whose title holds the text (case aside), by title."""
        return json_response(await reads.film_search(warehouse, title, limit))

    @app.get("/api/films/{film_id}", response_model=models.Film, responses={404: NOT_FOUND})
    async def film(film_id: FilmId) -> Response:
        """Return the film's store.film row with its recommended films' titles."""
        return json_response(await reads.film(warehouse, film_id))

    @app.get("/api/dashboard", response_model=models.Dashboard, responses={404: NOT_FOUND})
    async def dashboard_data(date: LoadedDate = None) -> Response:
        """Return the dashboard's charts: every load, and the ratings, languages and top courses of a loaded date."""
        return json_response(await dashboard.data(date))

    @app.get("/api/freshness", response_model=models.FreshnessReport)
    async def freshness() -> Response:
        """Return every pipeline's freshness, as `python -m workflow freshness --json` prints it."""
        return json_response(await reads.freshness(warehouse, expected, dt.datetime.now(dt.timezone.utc)))

    @app.get("/api/runs", response_model=models.RunsReport)
    async def runs(days: Days = 30) -> Response:
        """Return every pipeline's last dates up to yesterday (UTC), each with its state and figures."""
        return json_response(await reads.runs(warehouse, expected, days, dt.datetime.now(dt.timezone.utc)))

    @app.get("/api/quality", response_model=models.QualityReport)
    async def quality(days: Evaluated = 90) -> Response:
        """Return both methods' offline quality figures of the newest evaluated dates, oldest first."""
        return json_response(await reads.quality(warehouse, days))

    @app.get(
        "/healthz",
        response_model=models.Health,
        responses={503: {"model": models.Unavailable, "description": "the warehouse cannot be reached",
                         "headers": RETRY_AFTER}},
    )  # fmt: skip
    async def healthz() -> Response:
        """Return that the warehouse answers, with every pipeline's freshness; 503 only when it cannot be reached."""
        try:
            return json_response(await reads.health(warehouse, expected, dt.datetime.now(dt.timezone.utc)))
        except WarehouseUnavailable as error:
            return json_response({"status": "unavailable", "detail": str(error)}, status_code=503,
                                 headers={"Retry-After": str(RETRY_AFTER_S)})  # fmt: skip

    files = {path.name: StaticFile(path, MEDIA_TYPES.get(path.suffix, "application/octet-stream"), PAGE_HEADERS)
             for path in STATIC_DIR.iterdir() if path.is_file()}  # fmt: skip
    plotly_path = plotly_js()
    plotly_file = plotly_path and StaticFile(
        plotly_path, "text/javascript", {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    )

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        return await files["index.html"].response(request)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str, request: Request) -> Response:
        if name not in files:
            raise HTTPException(404, f"no file {name!r} here")
        return await files[name].response(request)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly(request: Request) -> Response:
        if not plotly_file:
            raise HTTPException(404, "plotly is not installed (pip install -r requirements.txt)")
        return await plotly_file.response(request)

    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Answer a missing thing with 404, an unavailable warehouse with 503, a bug with 500: JSON, no password."""
    retry = {"Retry-After": str(RETRY_AFTER_S)}

    @app.exception_handler(reads.NotFoundError)
    async def not_found(_: Request, error: reads.NotFoundError) -> Response:
        return json_response({"detail": str(error)}, status_code=404)

    @app.exception_handler(WarehouseUnavailable)
    async def unavailable(_: Request, error: WarehouseUnavailable) -> Response:
        return json_response({"detail": str(error)}, status_code=503, headers=retry)

    @app.exception_handler(asyncpg.exceptions.InsufficientPrivilegeError)
    async def refused(_: Request, error: asyncpg.PostgresError) -> Response:
        reason = " ".join(str(error).split())
        detail = f"the reader role may not read this ({reason}): grant it SELECT (config/warehouse_grants.sql)"
        return json_response({"detail": detail}, status_code=503, headers=retry)

    @app.exception_handler(asyncpg.PostgresError)
    async def failed(request: Request, error: asyncpg.PostgresError) -> Response:
        log.error("%s failed: %s", request.url.path, " ".join(str(error).split()))
        return json_response({"detail": "the warehouse query failed; see the server's log"}, status_code=500)
