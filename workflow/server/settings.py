"""Which warehouse the server reads, as which role: SERVER_DATABASE_URL, or a reader role on the embedded server."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from workflow import freshness, registry
from workflow.devdb import EmbeddedServer  # this package's one import of the embedded server
from workflow.errors import ConfigurationError, EmbeddedServerError
from workflow.io import urls
from workflow.paths import embedded_server_dir
from workflow.server.queries import sql

READER_ROLE = "recommendations_reader"
PASSWORD_FILE = "reader.password"
# The run history the task kit keeps (workflow/core/sql/run_history_schema.sql): the reader may SELECT it too.
RUN_HISTORY = "workflow.task_runs"
# Connections per server process: a few keep two cores busy; more only add PostgreSQL backends.
DEFAULT_POOL_SIZE = 4


class SettingsError(ConfigurationError):
    """The server cannot tell which database to read, or cannot set up its reader role."""


@dataclass(frozen=True)
class Database:
    """The reader's URL, and on the embedded server a function that renews the reader's grants."""

    url: str
    regrant: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"Database(url={urls.safe_url(self.url)!r})"


def pool_size() -> int:
    """Return the number of warehouse connections each server process keeps (SERVER_POOL_SIZE, default 4)."""
    text = os.environ.get("SERVER_POOL_SIZE") or str(DEFAULT_POOL_SIZE)
    if not text.isdigit() or int(text) < 1:
        raise SettingsError(f"SERVER_POOL_SIZE must be a whole number of connections, 1 or more, not {text!r}")
    return int(text)


def expected_by() -> dict[str, dt.time]:
    """Return each pipeline's UTC time of day by which yesterday's load is due (luigi.cfg's [freshness])."""
    try:
        return freshness.expected_by([pipeline.name for pipeline in registry.pipelines()])
    except ConfigurationError as error:
        raise SettingsError(str(error)) from None


def embedded_server() -> EmbeddedServer:
    """Return the embedded server under the output root (not started)."""
    return EmbeddedServer(embedded_server_dir())


def database() -> Database:
    """Return the database to read: SERVER_DATABASE_URL, else the embedded server's reader role (set up here)."""
    if os.environ.get("SERVER_DATABASE_URL"):
        try:
            return Database(urls.plain(os.environ["SERVER_DATABASE_URL"], "SERVER_DATABASE_URL"))
        except urls.URLError as error:
            raise SettingsError(str(error)) from None
    if os.environ.get("DWH_DATABASE_URL"):
        raise SettingsError(
            "DWH_DATABASE_URL is set but SERVER_DATABASE_URL is not: set SERVER_DATABASE_URL to the warehouse's "
            "read-only role recommendations_reader (config/warehouse_grants.sql creates it); the server never "
            "reads with the loader's role"
        )
    return embedded_reader()


def embedded_reader() -> Database:
    """Start the embedded server if needed, make sure the reader role exists with its grants, and return its URL."""
    server = embedded_server()
    try:
        server.ensure_running()
        superuser = server.url("dwh")
    except EmbeddedServerError as error:
        raise SettingsError(str(error)) from None
    with _locked(server.root / "reader.lock"):  # several workers may start at once
        password = reader_password(server.root / PASSWORD_FILE)
        _run_as_superuser(superuser, "reader_role", {"password": password})
        grant_reader(superuser)
    return Database(
        urls.plain(urls.with_user(superuser, READER_ROLE, password)), regrant=lambda: grant_reader(superuser)
    )


def reader_password(path: Path) -> str:
    """Return the reader's password kept in `path` (mode 0600), made up and written there the first time."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        if path.is_symlink():
            raise SettingsError(f"{path} is a symbolic link; remove it") from None
        os.chmod(path, 0o600)
        password = path.read_text().strip()
        if password:
            return password
        path.unlink()
        return reader_password(path)
    password = secrets.token_urlsafe(24)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    return password


def reader_relations() -> list[str]:
    """Return what the reader may SELECT: the relations the registry's pipelines own, and the run history."""
    return [*(relation for pipeline in registry.pipelines() for relation in pipeline.owns), RUN_HISTORY]


def grant_reader(superuser_url: str) -> None:
    """Grant the reader SELECT on the relations it reads (`reader_relations`) that exist now, USAGE on their schemas."""
    relations = reader_relations()
    _run_as_superuser(superuser_url, "reader_grants", {"relations": relations})


def _run_as_superuser(url: str, name: str, params: dict) -> None:
    """Run one of this package's setup scripts on the warehouse as the embedded server's superuser."""
    parsed = urls.parse(url)
    try:
        connection = psycopg2.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, connect_timeout=10
        )
    except psycopg2.OperationalError as error:
        raise SettingsError(f"cannot connect to {urls.safe_url(url)}: {' '.join(str(error).split())}") from None
    try:
        connection.autocommit = False
        with connection, connection.cursor() as cursor:
            cursor.execute(sql(name), params or None)  # no parameters: no %-escaping
    finally:
        connection.close()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file while inside."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
