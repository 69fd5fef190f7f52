"""Which database a run uses, decided in one place: the configured URL, or the embedded server on first need; and
how connections to it retry."""

from __future__ import annotations

import os
from configparser import InterpolationError
from pathlib import Path

import luigi

from workflow import config
from workflow.core.pipeline import Source
from workflow.devdb import EmbeddedServer
from workflow.io import postgres
from workflow.io.urls import driver_url
from workflow.paths import embedded_server_dir


def embedded_server() -> EmbeddedServer:
    """Return the embedded server that lives under the output root."""
    return EmbeddedServer(embedded_server_dir())


def configured_url(option: str, env_var: str) -> str | None:
    """Return the URL set in the environment variable or in luigi.cfg's [database] option, with its driver named."""
    if os.environ.get(env_var):
        return driver_url(os.environ[env_var], env_var)
    try:
        value = getattr(config.database(), option)
    except InterpolationError:  # an older luigi.cfg's `${ENV_VAR}` with the variable unset: that option is unset
        value = _uninterpolated(option)
    return driver_url(value, f"[database] {option}") if value else None


def _uninterpolated(option: str) -> str | None:
    """Return one [database] option when another one refers to an unset variable (None when it is such a one)."""
    try:
        return luigi.configuration.get_config().get("database", option, None)
    except InterpolationError:
        return None


# The warehouse every pipeline loads into.
WAREHOUSE = Source("DWH_DATABASE_URL", "dwh_url", "dwh")
_created: set[tuple[Path, str]] = set()  # embedded databases this process made sure exist


def url_of(source: Source) -> str:
    """Return the URL of a database: configured, or one of the embedded server's (started and created if need be)."""
    settings = config.connection()
    postgres.use_retry(postgres.Retry(settings.attempts, settings.first_wait, settings.timeout))
    url = configured_url(source.option, source.env_var)
    if url:
        return url
    server = embedded_server()
    server.ensure_running()
    if (server.root, source.embedded_database) not in _created:  # a server started before the pipeline existed
        server.create_databases(source.embedded_database)
        _created.add((server.root, source.embedded_database))
    return server.url(source.embedded_database)


def warehouse_url() -> str:
    """Return the URL of the data warehouse."""
    return url_of(WAREHOUSE)
