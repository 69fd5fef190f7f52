"""The project's errors: failures it expects and explains in one line, all under WorkflowError."""

from __future__ import annotations


class WorkflowError(Exception):
    """A failure the project expects (bad input or configuration, an unreachable database): one line, no traceback."""


class ConfigurationError(WorkflowError):
    """A setting is missing or malformed (a database URL, an engine name)."""


class DatabaseUnavailableError(WorkflowError):
    """A database cannot be reached: a wrong password, an unknown database, role or host, or a server down."""


class SourceDataError(WorkflowError):
    """The source database lacks a table or column the workflow needs, or holds values it cannot read."""


class InvalidSourceDataError(SourceDataError):
    """Too many source rows break the rules for the run to go on."""


class DayNotOverError(WorkflowError):
    """The date's day (UTC) has not ended, so its ratings are not all in yet."""


class DateInUseError(WorkflowError):
    """Another run is using the date's folder."""


class EmbeddedServerError(WorkflowError):
    """The embedded PostgreSQL server could not be found, set up or started."""


class EngineUnavailableError(WorkflowError):
    """The chosen engine cannot start: Spark without Java 17+, without pyspark, or with its master unreachable."""
