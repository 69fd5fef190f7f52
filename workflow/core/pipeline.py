"""What the rest of the project knows of a pipeline: one declaration per pipeline folder, listed in workflow.registry.

A declaration imports no luigi and no pyspark: the read server and the command line read it too.
Its tasks and its Spark rules are imported on first use, through functions the pipeline declares.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import sqlalchemy as sa

from workflow.errors import ConfigurationError


@dataclass(frozen=True)
class Marker:
    """A warehouse table of one row per loaded date (`date_column`) with a boolean `partial`: a date's completion
    marker, committed in the transaction of the date's rows."""

    table: str
    date_column: str
    schema: str | None = None

    @property
    def name(self) -> str:
        """Return the table's qualified name, as in messages and lock names."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def exists(self, connection: sa.Connection) -> bool:
        """Return whether the database behind the connection holds the marker table (made by the first load)."""
        return connection.execute(sa.text("SELECT to_regclass(:name)"), {"name": self._regclass()}).scalar() is not None

    def columns(self, connection: sa.Connection) -> set[str]:
        """Return the names of the marker table's columns (an older table may lack `partial` or `loaded_at`), none
        when the database has no marker table: one catalog query, where reflection took several."""
        query = (
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:name) AND attnum > 0 AND NOT attisdropped"
        )
        return set(connection.execute(sa.text(query), {"name": self._regclass()}).scalars())

    def _regclass(self) -> str:
        """Return the table's name as to_regclass reads it: quoted, qualified when it has a schema (else the search
        path finds it, as for unqualified names in queries)."""
        return ".".join('"' + part.replace('"', '""') + '"' for part in (self.schema, self.table) if part)

    def clause(self) -> sa.TableClause:
        """Return the table for queries, its names quoted by SQLAlchemy."""
        return sa.table(self.table, sa.column(self.date_column), sa.column("partial"), schema=self.schema)


@dataclass(frozen=True)
class Source:
    """Where a pipeline reads its source: an environment variable, else a [database] option, else a database of
    the embedded server (workflow.databases decides)."""

    env_var: str
    option: str
    embedded_database: str


@dataclass(frozen=True)
class Pipeline:
    """A pipeline's declaration: its name, tasks, load marker, rules per engine, source and warehouse objects."""

    name: str
    # Every task users may run by name (`luigi --module workflow <Task>`), the load task of a date first.
    tasks: Callable[[], Sequence[type]]
    marker: Marker
    # The pipeline's rules module for each engine, by engine name (imported when an engine first asks for it).
    rules: Mapping[str, Callable[[], ModuleType]]
    source: Source
    # The warehouse relations the pipeline creates (schema.name), which the read server's role may SELECT.
    owns: tuple[str, ...] = ()
    # The warehouse tables its load writes (schema.name), the table of its rows first: the load's lineage outputs.
    loads_into: tuple[str, ...] = ()
    # Lines `python -m workflow summary` prints of the pipeline, given the warehouse URL and a number of examples.
    summary: Callable[[str, int], list[str]] | None = field(default=None, compare=False)
    # Retention: removes a date's rows and marker from the warehouse, given the warehouse URL, the date and whether it
    # is a dry run (count only); returns the rows, or None when the date is not loaded or is the newest loaded.
    remove_date: Callable[[str, dt.date, bool], int | None] | None = field(default=None, compare=False)
    # Dated loads DailyPipelines runs for a date beside the pipeline's load, each with a marker of its own (an offline
    # evaluation of the date, say): a function returning their task classes.
    also_daily: Callable[[], Sequence[type]] | None = field(default=None, compare=False)

    def load_task(self) -> type:
        """Return the task that loads a date into the warehouse (its output is the date's marker)."""
        return self.tasks()[0]

    def daily_tasks(self) -> list[type]:
        """Return the dated loads DailyPipelines runs for a date: the pipeline's load first, then the others."""
        return [self.load_task(), *(self.also_daily() if self.also_daily else ())]

    def rules_for(self, engine: str) -> ModuleType:
        """Return the pipeline's rules for the engine, or fail naming the engines it has rules for."""
        if engine not in self.rules:
            choices = ", ".join(self.rules)
            raise ConfigurationError(f"the {self.name} pipeline has no rules for the {engine} engine, only {choices}")
        return self.rules[engine]()
