"""The engines that run the transform steps: pandas in this process (the default) or Apache Spark (`.[spark]`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from luigi.cmdline_parser import CmdlineParser

from workflow import config
from workflow.errors import ConfigurationError

if TYPE_CHECKING:
    import pyarrow as pa

NAMES = ("pandas", "spark")


class Engine(Protocol):
    """What a transform task asks of an engine: frames read from and written to parquet, and the rules to apply."""

    name: str

    def check(self) -> None:
        """Raise EngineUnavailableError when the engine cannot run here (before anything is computed)."""

    def read(self, path: str, columns: list[str] | None = None) -> Any:
        """Return a parquet file, or a folder of part files, as the engine's frame."""

    def write(
        self, frame: Any, path: str, task: Any = None, *, replace: bool = False, schema: pa.Schema | None = None
    ) -> None:
        """Write a frame to a parquet path atomically: it appears whole or not at all (a target a concurrent run
        wrote first is kept, unless `replace`); pandas writes it in `schema`'s Arrow types when given, Spark's
        frames carry their own."""

    def extract(self, url: str, table: str, columns: Any, path: str, task: Any = None, **options: Any) -> bool:
        """Write a source table's columns to a parquet target atomically, or with `columns` None every column in
        its exact Arrow type (typed_extract.extract_whole_table); return whether it was read as of a time."""

    def release(self) -> None:
        """Free what a step kept for its several outputs, once its target is written."""

    def reason_counts(self, path: str) -> tuple[dict[str, int], list[dict]]:
        """Return a written quarantine's rows per reason, and its first row for each reason."""


def engine_name() -> str:
    """Return the chosen engine: --engine-name, else WORKFLOW_ENGINE, else luigi.cfg's [engine] name, else pandas."""
    parser = CmdlineParser.get_instance()
    from_command_line = getattr(parser.known_args, "engine_name", None) if parser else None
    if from_command_line:
        name, origin = from_command_line, "--engine-name"
    elif os.environ.get("WORKFLOW_ENGINE"):
        name, origin = os.environ["WORKFLOW_ENGINE"], "WORKFLOW_ENGINE"
    else:
        name, origin = config.engine().name or "pandas", "[engine] name"
    name = name.strip().lower()
    if name not in NAMES:
        raise ConfigurationError(f"unknown engine {name!r} ({origin}): choose one of {', '.join(NAMES)}")
    return name


def check() -> None:
    """Raise EngineUnavailableError when the chosen engine cannot run here, before anything is computed: Spark's session
    must be able to start; pandas always can, and its libraries are left for the first step that uses them."""
    if engine_name() == "spark":
        current().check()


def current() -> Engine:
    """Return the chosen engine (one instance per process, so a long-lived worker keeps its Spark session)."""
    name = engine_name()
    if name == "spark":
        from workflow.engines import spark_engine  # noqa: PLC0415  (pyspark is an optional extra)

        return spark_engine.engine()
    from workflow.engines import pandas_engine  # noqa: PLC0415

    return pandas_engine.ENGINE
