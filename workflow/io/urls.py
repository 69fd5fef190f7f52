"""Database URLs: the installed PostgreSQL driver named whatever form was given, and passwords hidden."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from workflow.errors import ConfigurationError

# PostgreSQL URLs may name no driver (the case study's `postgresql://`, so SQLAlchemy 2.1 would pick
# psycopg 3), psycopg 3 or psycopg2: all of them mean the psycopg2 driver installed with the project.
POSTGRES_DRIVER_ALIASES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgres+psycopg2"}


def driver_url(url: str, origin: str = "database URL") -> str:
    """Return the URL with the installed PostgreSQL driver named (psycopg2), whichever PostgreSQL form it had."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"{origin} is not a database URL like postgresql://user:password@host:5432/database"
        ) from None
    if parsed.drivername in POSTGRES_DRIVER_ALIASES:
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """Return the URL with its password masked, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)
