"""Which database a run uses, decided in one place: the configured URL, or the embedded server on first need."""

from __future__ import annotations

import os
from configparser import InterpolationError

import luigi

from workflow import config
from workflow.devdb import EmbeddedServer
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


def _database_url(option: str, env_var: str, embedded_database: str) -> str:
    """Return the configured URL, or that of a database on the embedded server (started if need be)."""
    url = configured_url(option, env_var)
    if url:
        return url
    server = embedded_server()
    server.ensure_running()
    return server.url(embedded_database)


def source_url() -> str:
    """Return the URL of the application (source) database."""
    return _database_url("source_url", "SOURCE_DATABASE_URL", "datacamp_application")


def films_url() -> str:
    """Return the URL of the film pipeline's source (Pagila): FILMS_DATABASE_URL, else `pagila` embedded."""
    url = configured_url("films_url", "FILMS_DATABASE_URL")
    if url:
        return url
    server = embedded_server()
    server.ensure_running()
    if server.root not in _pagila_checked:  # a server started before `pagila` was one of its databases lacks it
        server.create_databases("pagila")
        _pagila_checked.add(server.root)
    return server.url("pagila")


_pagila_checked: set = set()


def warehouse_url() -> str:
    """Return the URL of the data warehouse."""
    return _database_url("dwh_url", "DWH_DATABASE_URL", "dwh")
