"""The Spark engine: one SparkSession per process, and its frames read, written atomically as parquet folders, and
extracted."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from workflow import paths
from workflow.devspark import jdbc
from workflow.engines import spark_progress
from workflow.engines.spark_settings import SparkSettings, check_java, check_master, partitions_for, settings
from workflow.errors import EngineUnavailableError
from workflow.io import memory
from workflow.io.files import temporary_name
from workflow.io.parquet import count_rows, publish

log = logging.getLogger("luigi-interface.workflow.spark")


class SparkEngine:
    """Frames are Spark DataFrames of one SparkSession; targets are folders of part files with their _SUCCESS."""

    name = "spark"

    def __init__(self, spark_settings: SparkSettings) -> None:
        self.settings = spark_settings
        self._session: Any = None
        self._checked = False
        self._lock = threading.Lock()
        self._step_rows = 0  # the most rows of a parquet input the current step read (until release)

    def check(self) -> None:
        """Raise EngineUnavailableError when pyspark, Java 17+ or the master is missing; nothing is computed then."""
        try:
            import pyspark  # noqa: F401, PLC0415  (an optional extra: imported when chosen)
        except ImportError:
            raise EngineUnavailableError(
                "the Spark engine needs pyspark: pip install -e '.[spark]' (Python 3.11 or newer)"
            ) from None
        if self._checked:
            return
        check_java()
        check_master(self.settings.master, self.settings.master_timeout)
        self._checked = True

    def start_soon(self) -> None:
        """Start the session in the background (its JVM takes seconds to start), while this process does other work.

        A failure is left for the first step that uses the session: it starts it again and reports the error.
        """
        if self._session is None and not self._lock.locked():
            threading.Thread(target=self._start_quietly, name="spark-session-start", daemon=True).start()

    def _start_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.session  # noqa: B018

    @property
    def session(self) -> Any:
        """Return the process's SparkSession, started on first use (its driver memory is fixed from then on)."""
        with self._lock:
            if self._session is None:
                self.check()
                self._session = self._start()
            return self._session

    def _start(self) -> Any:
        from pyspark.sql import SparkSession  # noqa: PLC0415

        chosen = self.settings
        builder = SparkSession.builder.master(chosen.master).appName("course-recommendations")
        local = chosen.master.startswith("local") or re.match(r"spark://(127\.0\.0\.1|localhost)[:/]", chosen.master)
        defaults = {
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(chosen.shuffle_partitions or partitions_for(0)),
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.ui.showConsoleProgress": "false",
            # JDBC timestamps pass through the JVM's default zone: UTC, as the extract's stamps are.
            # The serial collector: the least native memory beside the heap (the whole process tree stays smaller).
            "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseSerialGC",
            "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
            **({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"} if local else {}),
            **({"spark.driver.memory": chosen.driver_memory} if chosen.driver_memory else {}),
            **({"spark.executor.memory": chosen.executor_memory} if chosen.executor_memory else {}),
        }
        jars = [*chosen.jars, *map(str, filter(None, [jdbc.jdbc_jar()]))]
        if jars:
            defaults["spark.jars"] = ",".join(jars)
        for key, value in {**defaults, **chosen.conf}.items():
            builder = builder.config(key, value)
        log.info("starting a Spark session on %s", chosen.master)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("WARN")
        if local:  # iterative jobs (ALS) cut their lineage there; a remote cluster's executors could not reach it
            session.sparkContext.setCheckpointDir(str(paths.spark_dir() / "checkpoints"))
        log.info("Spark session %s: UI at %s", session.sparkContext.applicationId, session.sparkContext.uiWebUrl)
        return session

    def read(self, path: str, columns: list[str] | None = None) -> Any:
        """Return a parquet file or folder as a DataFrame of the given columns; with `[spark] shuffle_partitions = 0`
        the step's shuffles get partitions_for its largest input so far, counted from the files' footers."""
        frame = self.session.read.parquet(str(path))
        if not self.settings.shuffle_partitions:
            self._step_rows = max(self._step_rows, count_rows(path))
            self.session.conf.set("spark.sql.shuffle.partitions", str(partitions_for(self._step_rows)))
        return frame.select(*columns) if columns else frame

    def write(
        self, frame: Any, path: str, task: Any = None, *, replace: bool = False, schema: pa.Schema | None = None
    ) -> None:
        """Write a DataFrame as a folder of part files through a temporary folder, renamed once Spark committed it
        (`schema` is ignored: a DataFrame carries its types)."""
        path = Path(path)
        temporary = temporary_name(path)
        with spark_progress.reporting(self.session.sparkContext, task, f"writing {path.name}"):
            frame.write.mode("overwrite").parquet(str(temporary))
        publish(temporary, path, replace=replace)

    def extract(self, url: str, table: str, columns: Any, path: str, task: Any = None, **options: Any) -> bool:
        """Write a source table to a parquet target: streamed by COPY on the driver (always for every column, when
        `columns` is None), or, with `[spark] extract = jdbc`, read by the executors over JDBC in ranges of its first
        column; return whether it was read as of a time."""
        from workflow.engines import pandas_engine, spark_jdbc  # noqa: PLC0415
        from workflow.io.extract import checked_extract  # noqa: PLC0415

        if columns is None or self.settings.extract != "jdbc":
            self.start_soon()  # the session starts while the driver streams COPY into the target
            return pandas_engine.ENGINE.extract(url, table, columns, path, task, **options)
        if not jdbc.jdbc_jar():
            raise EngineUnavailableError(
                "[spark] extract = jdbc needs PostgreSQL's JDBC driver: apt-get install libpostgresql-jdbc-java, "
                "or python -m workflow spark jdbc"
            )
        extract = checked_extract(url, table, columns, **options)
        frame = spark_jdbc.read_table(
            self.session, url, extract.query, extract.schema,
            partition_column=columns.names[0], partitions=self.settings.jdbc_partitions, name=extract.name,
        )  # fmt: skip
        self.write(frame, path, task)
        return extract.as_of

    def release(self) -> None:
        """Drop the frames a step kept on disk for its several outputs, once its target is written, and hand the
        memory this process freed back (the copy extract runs here)."""
        if self._session is not None:
            self._session.catalog.clearCache()
        self._step_rows = 0
        memory.give_back()

    def reason_counts(self, path: str) -> tuple[dict[str, int], list[dict]]:
        """Return a written quarantine's rows per reason, and its first row for each reason."""
        from pyspark.sql import functions as F  # noqa: N812, PLC0415

        quarantined = self.read(path)
        counts = {row["reason"]: row["count"] for row in quarantined.groupBy("reason").count().collect()}
        first = quarantined.groupBy("reason").agg(F.first(F.struct(*quarantined.columns)).alias("row"))
        examples = sorted((row["row"].asDict() for row in first.collect()), key=lambda row: row["reason"])
        return counts, examples


@cache
def engine() -> SparkEngine:
    """Return the process's Spark engine (one session for every task a long-lived worker runs)."""
    return SparkEngine(settings())
