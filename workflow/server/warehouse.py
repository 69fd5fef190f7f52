"""The warehouse as the server reads it: a pool of read-only asyncpg connections of the reader role."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from workflow.io import urls
from workflow.server.queries import sql

log = logging.getLogger("workflow.server")

# A lost or refused connection: the server is down, restarting or shutting down. Worth one retry on a new one.
CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, "the database system is starting up"
)


class WarehouseUnavailable(RuntimeError):  # noqa: N818  (a state, not a bug)
    """The warehouse cannot answer now (down, restarting, busy, or not loaded yet); the reason names no host, port or
    role (the server's log does), so it is safe to show."""


class Warehouse:
    """A bounded pool of read-only connections to the warehouse that reconnects by itself after a restart."""

    def __init__(
        self,
        url: str,
        *,
        size: int = 4,
        statement_timeout_s: float = 5.0,
        connect_timeout_s: float = 3.0,
        wait_s: float = 5.0,
        regrant: Callable[[], None] | None = None,
    ) -> None:
        self.safe_url = urls.safe_url(url)
        self._password = urls.parse(url).password or ""
        self._dsn = urls.plain(url)
        self._size = size
        self._connect_timeout_s = connect_timeout_s
        self._wait_s = wait_s
        self._regrant = regrant
        # Every session: read-only (a second guard beside the role's grants), bounded statements, UTC.
        self._settings = {
            "default_transaction_read_only": "on",
            "statement_timeout": str(int(statement_timeout_s * 1000)),
            "TimeZone": "UTC",
            "application_name": "course-recommendations-server",
        }
        self._pool: asyncpg.Pool | None = None
        self._turns: asyncio.Semaphore | None = None

    async def open(self) -> None:
        """Create the pool; it connects lazily, so a warehouse that is down now does not stop the server."""
        # Requests wait for a connection here, first come first served: asyncpg's own queue lets a newcomer take
        # a connection just released before the request woken for it, and at 64 clients some waited 100 ms+.
        self._turns = asyncio.Semaphore(self._size)
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=self._size,
            timeout=self._connect_timeout_s,
            server_settings=self._settings,
            init=_decode_json,
            reset=_keep_session,
            max_inactive_connection_lifetime=300,
        )

    async def close(self) -> None:
        """Close the pool's connections."""
        if self._pool is not None:
            await self._pool.close()

    async def rows(self, name: str, *args: Any) -> list[asyncpg.Record]:
        """Return all rows of the query in `sql/<name>.sql` run with the arguments as $1, $2, ..."""
        return await self.query(sql(name), *args)

    async def query(self, text: str, *args: Any) -> list[asyncpg.Record]:
        """Return all rows of the query text (one of `sql/`'s) run with the arguments as $1, $2, ..."""
        try:
            return await self._rows(text, args)
        except asyncpg.exceptions.InsufficientPrivilegeError:
            if self._regrant is None:
                raise
            log.info("the reader was refused (a load recreated a table?); renewing its grants")
            await asyncio.to_thread(self._regrant)
            return await self._rows(text, args)

    async def _rows(self, text: str, args: tuple) -> list[asyncpg.Record]:
        for attempt in (1, 2):
            try:
                async with self.connection() as connection:
                    return await connection.fetch(text, *args)
            except asyncpg.exceptions.QueryCanceledError as error:
                log.warning("a warehouse query took too long: %s", self._reason(error))
                raise WarehouseUnavailable("a warehouse query took too long; try again") from None
            except CONNECTION_ERRORS as error:
                if attempt == 1 and not isinstance(error, (OSError, asyncio.TimeoutError)):
                    log.info("a pooled warehouse connection was lost (%s); reconnecting", self._reason(error))
                    continue  # a restarted server: its old connections are gone, a new one may work
                log.warning("cannot connect to %s: %s", self.safe_url, self._reason(error))
                raise WarehouseUnavailable(
                    "cannot connect to the warehouse (it is down or restarting); the server's log says more"
                ) from None
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """Yield one of the pool's connections, waiting at most `wait_s` seconds for one."""
        if self._pool is None or self._turns is None:
            raise RuntimeError("the warehouse pool is not open")
        try:
            if self._turns.locked():
                await asyncio.wait_for(self._turns.acquire(), self._wait_s)
            else:
                await self._turns.acquire()
        except asyncio.TimeoutError:
            raise WarehouseUnavailable(
                f"all {self._size} warehouse connections stayed busy for {self._wait_s:g} s; try again"
            ) from None
        try:
            connection = await self._pool.acquire(timeout=self._connect_timeout_s + 1)
            try:
                yield connection
            finally:
                await self._pool.release(connection)
        finally:
            self._turns.release()

    def _reason(self, error: BaseException) -> str:
        """Return the driver's message as one line, the password masked just in case."""
        if isinstance(error, ConnectionRefusedError):
            return "connection refused (the warehouse is down or restarting)"
        if isinstance(error, asyncio.TimeoutError):
            return f"no answer within {self._connect_timeout_s:g} s"
        text = " ".join(str(error).split()) or type(error).__name__
        return text.replace(self._password, "***") if self._password else text


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is: the server's queries change no session state, so asyncpg's
    default reset (RESET ALL, CLOSE ALL, UNLISTEN *, advisory unlocks) would only cost a round trip per request."""


async def _decode_json(connection: asyncpg.Connection) -> None:
    """Read json and jsonb values as Python objects."""
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
