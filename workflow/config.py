"""Settings: where outputs go, which databases to use, and the business rules' parameters."""

from __future__ import annotations

import datetime as dt
import os
from configparser import InterpolationError
from pathlib import Path

import luigi

from workflow.embedded import EmbeddedServer
from workflow.io.postgres import DatabaseURLError, driver_url, safe_url  # noqa: F401  (used as config.*)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The repository's luigi.cfg applies wherever the command is started from. Started from the
# repository, luigi has read it already, before LUIGI_CONFIG_PATH, which must keep the last word.
if (PROJECT_ROOT / "luigi.cfg").exists() and Path("luigi.cfg").resolve() != PROJECT_ROOT / "luigi.cfg":
    luigi.configuration.get_config().add_config_path(str(PROJECT_ROOT / "luigi.cfg"))


class rules(luigi.Config):  # noqa: N801  (luigi maps the class name to the [rules] section)
    """The configurable business rules ([rules] in luigi.cfg)."""

    min_rating = luigi.FloatParameter(default=1.0, description="lowest valid rating")
    max_rating = luigi.FloatParameter(default=5.0, description="highest valid rating")
    language_fill = luigi.Parameter(default="R", description="language of courses with none")
    recommendations_per_user = luigi.IntParameter(default=3)
    max_invalid_share = luigi.FloatParameter(
        default=0.01, description="share of a table's rows that may break the rules before the run fails"
    )


class source(luigi.Config):  # noqa: N801
    """How the source database is read ([source] in luigi.cfg)."""

    schema = luigi.Parameter(default="public", description="schema of the source tables")
    courses_table = luigi.Parameter(default="courses")
    rating_table = luigi.Parameter(default="rating")
    rating_timestamp_column = luigi.Parameter(
        default="rated_at", description="timestamp of a rating; the extract for date D takes those before D+1 00:00 UTC"
    )


class connection(luigi.Config):  # noqa: N801
    """How database connections retry while a server is starting or restarting ([connection] in luigi.cfg)."""

    attempts = luigi.IntParameter(default=5, description="connection attempts before the task fails")
    first_wait = luigi.FloatParameter(default=1.0, description="seconds before the first retry; doubles each time")
    timeout = luigi.IntParameter(default=10, description="seconds one connection attempt may take (connect_timeout)")


def output_dir() -> Path:
    """Return the root of parquet targets and the embedded server's data (WORKFLOW_OUTPUT_DIR or output/)."""
    return Path(os.environ.get("WORKFLOW_OUTPUT_DIR") or PROJECT_ROOT / "output").resolve()


def date_dir(date: dt.date) -> Path:
    """Return the folder of a date's parquet targets, quarantine files and run records."""
    return output_dir() / f"{date:%Y-%m-%d}"


def embedded_server() -> EmbeddedServer:
    """Return the embedded server that lives under the output root."""
    return EmbeddedServer(output_dir() / "postgres")


def _configured_url(option: str, env_var: str) -> str | None:
    if os.environ.get(env_var):
        return driver_url(os.environ[env_var], env_var)
    try:
        value = luigi.configuration.get_config().get("database", option, None)
    except InterpolationError:  # luigi.cfg says ${ENV_VAR} and the variable is unset
        return None
    return driver_url(value, f"[database] {option}") if value else None


def _database_url(option: str, env_var: str, embedded_database: str) -> str:
    """Return the configured URL, or that of a database on the embedded server (started if need be)."""
    url = _configured_url(option, env_var)
    if url:
        return url
    server = embedded_server()
    server.ensure_running()
    return server.url(embedded_database)


def source_url() -> str:
    """Return the SQLAlchemy URL of the application (source) database."""
    return _database_url("source_url", "SOURCE_DATABASE_URL", "datacamp_application")


def warehouse_url() -> str:
    """Return the SQLAlchemy URL of the data warehouse."""
    return _database_url("dwh_url", "DWH_DATABASE_URL", "dwh")
