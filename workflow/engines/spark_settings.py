"""The Spark engine's settings (luigi.cfg's [spark], declared in workflow.config) and its checks before it starts."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from workflow import config
from workflow.devspark import runtime
from workflow.errors import ConfigurationError, EngineUnavailableError


@dataclass(frozen=True)
class SparkSettings:
    """The [spark] settings as the engine uses them: SPARK_MASTER first, conf as a dict, jars as a tuple."""

    master: str
    conf: dict[str, str]
    jars: tuple[str, ...]
    driver_memory: str
    executor_memory: str
    shuffle_partitions: int  # 0: follow each step's input (partitions_for), else this number for every step
    master_timeout: float
    extract: str  # "copy", or "jdbc": the executors read the ratings over JDBC, in ranges of user_id
    jdbc_partitions: int


# A shuffle task's share of rows: ~0.4M rows sort and aggregate in 1 GB of driver memory without spilling.
ROWS_PER_PARTITION = 400_000
FEWEST_PARTITIONS = 10  # ALS's blocks (at most 10) and small steps: fewer tasks cost more in scheduling than they save
MOST_PARTITIONS = 1_000


def partitions_for(rows: int) -> int:
    """Return the shuffle partitions of a step whose largest input has `rows` rows (when [spark] shuffle_partitions
    is 0): one per ROWS_PER_PARTITION, FEWEST_PARTITIONS to MOST_PARTITIONS."""
    return min(MOST_PARTITIONS, max(FEWEST_PARTITIONS, -(-rows // ROWS_PER_PARTITION)))


def settings() -> SparkSettings:
    """Return the Spark settings: luigi.cfg's [spark] (workflow.config.spark), with SPARK_MASTER before its master."""
    declared = _declared()
    master = os.environ.get("SPARK_MASTER") or declared.master.strip()
    if not master:
        raise ConfigurationError(
            "[spark] master is empty: set local[*], local[2] or spark://host:7077 (or SPARK_MASTER)"
        )
    return SparkSettings(
        master=master,
        conf=parse_conf(declared.conf),
        jars=tuple(filter(None, (jar.strip() for jar in declared.jars.split(",")))),
        driver_memory=declared.driver_memory.strip(),
        executor_memory=declared.executor_memory.strip(),
        shuffle_partitions=declared.shuffle_partitions,
        master_timeout=declared.master_timeout,
        extract=declared.extract,
        jdbc_partitions=declared.jdbc_partitions,
    )


def _declared() -> config.spark:
    """Return luigi.cfg's [spark] section as workflow.config declares it, or raise ConfigurationError naming the
    option whose value does not parse."""
    try:
        return config.spark()
    except ValueError as error:  # luigi: "spark[...]: Error when parsing the default value of '<option>'"
        option = str(error).rpartition(" of ")[2]
        raise ConfigurationError(f"[spark] {option}: {error.__cause__ or error}") from None


def parse_conf(text: str) -> dict[str, str]:
    """Return [spark] conf's `key=value|key=value` pairs as a dict, or raise ConfigurationError naming a bad pair."""
    conf = {}
    for pair in filter(None, (part.strip() for part in text.split("|"))):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ConfigurationError(f"[spark] conf: {pair!r} is not key=value (pairs are separated by |)")
        conf[key.strip()] = value.strip()
    return conf


def check_java() -> str:
    """Return the java Spark will run, or raise EngineUnavailableError saying how to install Java 17 or newer."""
    try:
        return str(runtime.find_java())
    except runtime.SparkClusterError as error:
        raise EngineUnavailableError(f"the Spark engine needs Java {runtime.JAVA_MINIMUM} or newer: {error}") from None


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
