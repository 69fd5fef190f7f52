"""Database URLs: any PostgreSQL form read as the installed driver's, or as libpq's plain form, passwords hidden."""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from workflow.errors import ConfigurationError

# PostgreSQL URLs may name no driver (the case study's `postgresql://`, so SQLAlchemy 2.1 would pick
# psycopg 3), psycopg 3 or psycopg2: all of them mean the psycopg2 driver installed with the project.
POSTGRES_DRIVER_ALIASES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgres+psycopg2"}
# Every form that names a PostgreSQL server, asyncpg's (the read server's driver) included.
POSTGRES_SCHEMES = POSTGRES_DRIVER_ALIASES | {"postgresql+asyncpg"}


class URLError(ConfigurationError):
    """A database URL cannot be parsed, or names no PostgreSQL server where one is needed."""


def parse(url: str, origin: str = "database URL") -> URL:
    """Return the parsed URL; an unreadable one raises URLError naming its origin."""
    try:
        return make_url(url)
    except ArgumentError:
        raise URLError(f"{origin} is not a database URL like postgresql://user:password@host:5432/database") from None


def driver_url(url: str, origin: str = "database URL") -> str:
    """Return the URL with the installed PostgreSQL driver named (psycopg2), whichever PostgreSQL form it had."""
    parsed = parse(url, origin)
    if parsed.drivername in POSTGRES_DRIVER_ALIASES:
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def plain(url: str, origin: str = "database URL") -> str:
    """Return a PostgreSQL URL in the plain `postgresql://` form that libpq and asyncpg read, password included."""
    parsed = parse(url, origin)
    if parsed.drivername not in POSTGRES_SCHEMES:
        raise URLError(f"{origin} names {parsed.drivername!r}, not a PostgreSQL server (postgresql://...)")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """Return the URL with its password masked, for logs, pages and messages."""
    return make_url(url).render_as_string(hide_password=True)


def with_user(url: str, user: str, password: str) -> str:
    """Return the URL of the same database for another role."""
    return make_url(url).set(username=user, password=password).render_as_string(hide_password=False)


# user:password@ in any URL inside a text (an error message, say).
_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@\s]*@")


def mask_passwords(text: str) -> str:
    """Return the text with the password of every URL in it masked (`postgresql://user:***@host/db`)."""
    return _CREDENTIALS.sub(r"\1:***@", text)


# The user, password, host and port of every URL inside a text: what a browser is not shown.
_LOCATION = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s'\"]*")


def hide_locations(text: str) -> str:
    """Return the text with every URL's user, password, host and port replaced by *** (`postgresql://***/db`)."""
    return _LOCATION.sub(r"\1***", text)
