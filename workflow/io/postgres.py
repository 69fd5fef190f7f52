"""PostgreSQL connections: retried only while a server may be starting, failing in one line otherwise."""

from __future__ import annotations

import atexit
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from workflow.errors import DatabaseUnavailableError
from workflow.io.urls import safe_url

log = logging.getLogger("luigi-interface.workflow.postgres")


@dataclass(frozen=True)
class Retry:
    """How connections retry while a server is starting or restarting ([connection] in luigi.cfg)."""

    attempts: int = 5
    first_wait: float = 1.0  # seconds before the first retry; doubles each time
    timeout: int = 10  # seconds one connection attempt may take (libpq's connect_timeout)


_retry = Retry()
# For what can wait for a later run or go without (a run record, a lineage event's schema): one quick attempt.
ONE_ATTEMPT = Retry(attempts=1, first_wait=0, timeout=5)


def use_retry(retry: Retry) -> None:
    """Make the process's connections retry so (workflow.databases passes the configured policy)."""
    global _retry  # noqa: PLW0603  (one policy per process, as configured)
    _retry = retry


def current_retry() -> Retry:
    """Return the process's connection policy."""
    return _retry


def connect(url: str, retry: Retry | None = None) -> AbstractContextManager[Connection]:
    """Return a context manager of a new connection inside a transaction that commits on success.

    Connecting retries as the process's policy says, or as `retry` says (a record that can wait for
    the next run needs no retries, say).
    """
    retry = retry or _retry
    return _in_transaction(_engine(url, retry.timeout), url, retry)


@contextmanager
def _in_transaction(engine: Engine, url: str, retry: Retry) -> Iterator[Connection]:
    """Yield a connection of the engine inside a transaction that commits on success; a connection that cannot be
    made, or is lost, fails in one line naming the database (its password hidden)."""
    try:
        with _connect_with_retries(engine, url, retry) as connection, connection.begin():
            yield connection
    except sa.exc.OperationalError as error:
        raise DatabaseUnavailableError(f"database {safe_url(url)}: {_reason(error)}") from None


@cache
def _engine(url: str, timeout: int) -> Engine:
    """Return this process's engine of a URL, so its dialect asks the server about itself once (a new engine per
    connection cost 15 ms); it keeps no connections (NullPool), so every connection is closed when its block ends and
    a forked worker inherits none."""
    return sa.create_engine(url, poolclass=NullPool, **_engine_options(url, timeout))


def _engine_options(url: str, timeout: int) -> dict[str, Any]:
    """Return the create_engine options of every engine here: libpq's connect timeout, and no hstore (psycopg2's
    dialect would otherwise look its type up on every new connection)."""
    options: dict[str, Any] = {"connect_args": {"connect_timeout": timeout}}
    if sa.make_url(url).get_driver_name() == "psycopg2":
        options["use_native_hstore"] = False
    return options


def kept(url: str, retry: Retry | None = None) -> AbstractContextManager[Connection]:
    """Return a context manager of this process's kept connection to the URL inside a transaction that commits on
    success, for small writes that come often (a run record per task): a new connection takes about 5 ms, a kept one
    a round trip to check.

    The pool holds one connection, checked with a ping before each use and replaced when the server closed it
    meanwhile (a restart, a dropped database); it is closed before this process forks, so a child inherits no socket
    of its parent's, and at exit.
    """
    retry = retry or _retry
    return _in_transaction(_kept_engine(url, retry.timeout), url, retry)


@cache
def _kept_engine(url: str, timeout: int) -> Engine:
    """Return this process's pool of one kept connection to a URL (a second user at once gets a connection of its own,
    closed after use)."""
    engine = sa.create_engine(url, pool_size=1, max_overflow=4, pool_pre_ping=True, **_engine_options(url, timeout))
    if not _kept_engines:
        os.register_at_fork(before=_close_kept)
        atexit.register(_close_kept)
    _kept_engines.append(engine)
    return engine


_kept_engines: list[Engine] = []


def _close_kept() -> None:
    """Close the kept connections (before a fork, at exit)."""
    for engine in _kept_engines:
        engine.dispose()


# What a server says while it is starting, stopping or restarting: worth waiting for. Anything else
# (a wrong password, an unknown database, role or host, a timeout) will not heal by itself.
TRANSIENT_FAILURES = (
    "connection refused",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "server closed the connection unexpectedly",
    "connection reset",
    "sorry, too many clients already",
    "terminating connection due to administrator command",
)


def _reason(error: sa.exc.DBAPIError) -> str:
    """Return the server's or driver's reason for a failure as one line, without libpq's framing."""
    text = " ".join(str(error.orig).split())
    text = re.sub(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: ', "", text)
    text = re.sub(r"\s*Is the server running on that host and accepting TCP/IP connections\?", "", text)
    return text.replace("FATAL: ", "").strip()


def _connect_with_retries(engine: Engine, url: str, settings: Retry) -> Connection:
    """Connect, retrying only failures that may heal (a server starting or restarting), as the retry policy says."""
    for attempt in range(1, settings.attempts + 1):
        try:
            return engine.connect()
        except sa.exc.OperationalError as error:
            reason = _reason(error)
            if not any(failure in reason.lower() for failure in TRANSIENT_FAILURES):
                raise DatabaseUnavailableError(f"cannot connect to {safe_url(url)}: {reason}") from None
            if attempt == settings.attempts:
                raise DatabaseUnavailableError(
                    f"cannot connect to {safe_url(url)} after {attempt} attempts: {reason}"
                ) from None
            wait = settings.first_wait * 2 ** (attempt - 1)
            log.warning("cannot connect to %s (%s); retry %d in %.1f s", safe_url(url), reason, attempt, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def has_column(url: str, table: str, column: str, *, schema: str | None = None) -> bool:
    """Return whether the source table exists and has the column."""
    with connect(url) as connection:
        inspector = sa.inspect(connection)
        if not inspector.has_table(table, schema=schema):
            return False
        return column in {found["name"] for found in inspector.get_columns(table, schema=schema)}


def table_exists(url: str, table: str, *, schema: str | None = None) -> bool:
    """Return whether the database holds the table (or view)."""
    with connect(url) as connection:
        inspector = sa.inspect(connection)
        return inspector.has_table(table, schema=schema) or table in inspector.get_view_names(schema=schema)


@cache
def read_sql(folder: Path, name: str) -> str:
    """Return the text of `<folder>/<name>.sql`."""
    return (folder / f"{name}.sql").read_text()
