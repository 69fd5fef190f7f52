"""Database URLs as the server uses them: any PostgreSQL form accepted, passwords hidden in messages."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# The forms the pipeline accepts (`postgresql://`, the case study's, and those naming a driver): all the same server.
POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgres+psycopg2",
                    "postgresql+asyncpg"}  # fmt: skip


class URLError(ValueError):
    """A database URL cannot be parsed or names no PostgreSQL server."""


def parse(url: str, origin: str = "database URL") -> URL:
    """Return the parsed PostgreSQL URL; an unreadable one, or one of another database, raises URLError."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise URLError(f"{origin} is not a database URL like postgresql://user:password@host:5432/database") from None
    if parsed.drivername not in POSTGRES_SCHEMES:
        raise URLError(f"{origin} names {parsed.drivername!r}, not a PostgreSQL server (postgresql://...)")
    return parsed


def plain(url: str, origin: str = "database URL") -> str:
    """Return the URL in the plain `postgresql://` form that libpq and asyncpg read, password included."""
    return parse(url, origin).set(drivername="postgresql").render_as_string(hide_password=False)


def safe(url: str) -> str:
    """Return the URL with its password masked, for logs, pages and messages."""
    return make_url(url).render_as_string(hide_password=True)


def with_user(url: str, user: str, password: str) -> str:
    """Return the URL of the same database for another role."""
    return make_url(url).set(username=user, password=password).render_as_string(hide_password=False)
