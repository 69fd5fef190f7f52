"""The Spark engine: one SparkSession per process, parquet folders written atomically, progress reported by stage."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from luigi.configuration import get_config

from workflow.devspark import cluster, jdbc
from workflow.errors import ConfigurationError, EngineUnavailableError
from workflow.io import memory
from workflow.io.files import temporary_name
from workflow.io.parquet import publish

log = logging.getLogger("luigi-interface.workflow.spark")


@dataclass(frozen=True)
class SparkSettings:
    """The [spark] section (option names as in luigi.contrib.spark where they overlap), SPARK_MASTER first."""

    master: str = "local[*]"
    conf: dict[str, str] = field(default_factory=dict)
    jars: tuple[str, ...] = ()
    driver_memory: str = ""
    executor_memory: str = ""
    shuffle_partitions: int = 48  # 20M ratings: tasks of ~0.4M rows sort and aggregate in 1 GB without spilling
    master_timeout: float = 10.0
    extract: str = "copy"  # or "jdbc": the executors read the ratings over JDBC, in ranges of user_id
    jdbc_partitions: int = 8


def settings() -> SparkSettings:
    """Return the Spark settings: luigi.cfg's [spark], with SPARK_MASTER in the environment before its master."""
    section = get_config()

    def option(name: str, default: str = "") -> str:
        return str(section.get("spark", name, default) or default).strip()

    conf = {}
    for pair in filter(None, (part.strip() for part in option("conf").split("|"))):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ConfigurationError(f"[spark] conf: {pair!r} is not key=value (pairs are separated by |)")
        conf[key.strip()] = value.strip()
    defaults = SparkSettings()  # the defaults are declared once, on the dataclass
    try:
        partitions = int(option("shuffle-partitions", str(defaults.shuffle_partitions)))
        timeout = float(option("master-timeout", str(defaults.master_timeout)))
        jdbc_partitions = int(option("jdbc-partitions", str(defaults.jdbc_partitions)))
    except ValueError as error:
        raise ConfigurationError(f"[spark] shuffle-partitions, jdbc-partitions or master-timeout: {error}") from None
    extract = option("extract", defaults.extract).lower()
    if extract not in ("copy", "jdbc"):
        raise ConfigurationError(f"[spark] extract: {extract!r} is neither copy nor jdbc")
    return SparkSettings(
        master=os.environ.get("SPARK_MASTER") or option("master", defaults.master),
        conf=conf,
        jars=tuple(filter(None, (jar.strip() for jar in option("jars").split(",")))),
        driver_memory=option("driver-memory"),
        executor_memory=option("executor-memory"),
        shuffle_partitions=partitions,
        master_timeout=timeout,
        extract=extract,
        jdbc_partitions=jdbc_partitions,
    )


def check_java() -> str:
    """Return the java Spark will run, or raise EngineUnavailableError saying how to install Java 17 or newer."""
    try:
        return str(cluster.find_java())
    except cluster.SparkClusterError as error:
        raise EngineUnavailableError(f"the Spark engine needs Java {cluster.JAVA_MINIMUM} or newer: {error}") from None


def check_master(master: str, timeout: float) -> None:
    """Raise EngineUnavailableError when a spark:// master accepts no connection within `timeout` seconds."""
    if not master.startswith("spark://"):
        return
    errors = []
    for address in master.removeprefix("spark://").split(","):  # standby masters are listed with commas
        parts = urlsplit(f"//{address}")
        try:
            with socket.create_connection((parts.hostname, parts.port or 7077), timeout=timeout):
                return
        except OSError as error:
            errors.append(f"{address}: {error.strerror or error}")
    raise EngineUnavailableError(
        f"the Spark master {master} is unreachable ({'; '.join(errors)}): start one (make spark-up) "
        "or set [spark] master / SPARK_MASTER"
    )


class SparkEngine:
    """Frames are Spark DataFrames of one SparkSession; targets are folders of part files with their _SUCCESS."""

    name = "spark"

    def __init__(self, spark_settings: SparkSettings) -> None:
        self.settings = spark_settings
        self._session: Any = None
        self._checked = False
        self._lock = threading.Lock()

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
            "spark.sql.shuffle.partitions": str(chosen.shuffle_partitions),
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
        log.info("Spark session %s: UI at %s", session.sparkContext.applicationId, session.sparkContext.uiWebUrl)
        return session

    def read(self, path: str, columns: list[str] | None = None) -> Any:
        """Return a parquet file or folder as a DataFrame of the given columns."""
        frame = self.session.read.parquet(str(path))
        return frame.select(*columns) if columns else frame

    def write(self, frame: Any, path: str, task: Any = None, *, replace: bool = False) -> None:
        """Write a DataFrame as a folder of part files through a temporary folder, renamed once Spark committed it."""
        path = Path(path)
        temporary = temporary_name(path)
        with self.reporting(task, f"writing {path.name}"):
            frame.write.mode("overwrite").parquet(str(temporary))
        publish(temporary, path, replace=replace)

    def extract(self, url: str, table: str, columns: Any, path: str, task: Any = None, **options: Any) -> bool:
        """Write a source table to a parquet target: streamed by COPY on the driver, or, with `[spark] extract =
        jdbc`, read by the executors over JDBC in ranges of its first column; return whether it was read as of a
        time."""
        from workflow.engines import pandas_engine, spark_jdbc  # noqa: PLC0415
        from workflow.io.extract import checked_extract  # noqa: PLC0415

        if self.settings.extract != "jdbc":
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
        memory.give_back()

    def reason_counts(self, path: str) -> tuple[dict[str, int], list[dict]]:
        """Return a written quarantine's rows per reason, and its first row for each reason."""
        from pyspark.sql import functions as F  # noqa: N812, PLC0415

        quarantined = self.read(path)
        counts = {row["reason"]: row["count"] for row in quarantined.groupBy("reason").count().collect()}
        first = quarantined.groupBy("reason").agg(F.first(F.struct(*quarantined.columns)).alias("row"))
        examples = sorted((row["row"].asDict() for row in first.collect()), key=lambda row: row["reason"])
        return counts, examples

    @contextmanager
    def reporting(self, task: Any, what: str) -> Iterator[None]:
        """Show the Spark UI as the task's tracking URL and its stages' progress as its status while jobs run."""
        if task is None:
            yield
            return
        context = self.session.sparkContext
        group = f"{task.task_id}"
        context.setJobGroup(group, what)
        if context.uiWebUrl:
            task.set_tracking_url(context.uiWebUrl)
        done = threading.Event()
        reporter = threading.Thread(target=_report_stages, args=(context, group, task, what, done), daemon=True)
        reporter.start()
        spilled = _spilled_bytes(context)
        try:
            yield
        finally:
            done.set()
            reporter.join()
            context.setLocalProperty("spark.jobGroup.id", None)
            if spilled is not None and (after := _spilled_bytes(context)) is not None:
                for kind, before, now in zip(("spill_memory_bytes", "spill_disk_bytes"), spilled, after, strict=True):
                    task.facts[kind] = task.facts.get(kind, 0) + now - before


def _report_stages(context: Any, group: str, task: Any, what: str, done: threading.Event) -> None:
    """Every second until `done`: set the task's status to the running stages' completed tasks, and its progress."""
    tracker = context.statusTracker()
    while not done.wait(1.0):
        try:
            stages = [
                tracker.getStageInfo(stage)
                for job in tracker.getJobIdsForGroup(group)
                if (info := tracker.getJobInfo(job)) is not None and info.status == "RUNNING"
                for stage in info.stageIds
            ]
        except Exception:  # the session is stopping: nothing more to report
            return
        running = [stage for stage in stages if stage is not None and stage.numActiveTasks]
        if not running:
            continue
        total = sum(stage.numTasks for stage in running)
        completed = sum(stage.numCompletedTasks for stage in running)
        task.set_status_message(
            f"{what}: " + ", ".join(f"stage {s.stageId} {s.numCompletedTasks}/{s.numTasks} tasks" for s in running)
        )
        task.set_progress_percentage(int(100 * completed / max(total, 1)))


def _spilled_bytes(context: Any) -> tuple[int, int] | None:
    """Return what the application's finished stages spilled (its size in memory, then on disk), from the Spark UI's
    REST API."""
    if not context.uiWebUrl:
        return None
    address = f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}/stages?status=complete"
    try:
        with urllib.request.urlopen(address, timeout=5) as response:
            stages = json.load(response)
    except (OSError, ValueError):
        return None
    return (
        sum(stage.get("memoryBytesSpilled", 0) for stage in stages),
        sum(stage.get("diskBytesSpilled", 0) for stage in stages),
    )


@cache
def engine() -> SparkEngine:
    """Return the process's Spark engine (one session for every task a long-lived worker runs)."""
    return SparkEngine(settings())
