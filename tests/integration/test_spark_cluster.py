"""A Spark standalone cluster on 127.0.0.1 from the pip package: started on free ports, used, and stopped by pid.

The driver runs in a child process, so this test's session never meets a Spark session other tests share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engines import require_spark

from workflow.devspark import cluster as devspark
from workflow.devspark.cluster import Cluster
from workflow.devspark.runtime import SparkClusterError, find_java, spark_home

DRIVER = textwrap.dedent(
    """
    import json, os, sys, urllib.request
    from pyspark.sql import SparkSession

    def ancestry(rows):
        chain = [os.getpid()]
        while chain[-1] > 1:
            with open(f"/proc/{chain[-1]}/stat") as stat:
                chain.append(int(stat.read().rsplit(")", 1)[1].split()[1]))
        return [chain]

    master, webui = sys.argv[1], sys.argv[2]
    spark = (
        SparkSession.builder.master(master).appName("cluster-test")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "512m").config("spark.executor.memory", "512m")
        .config("spark.ui.enabled", "false").config("spark.pyspark.python", sys.executable)
        .config("spark.scheduler.minRegisteredResourcesRatio", "1.0")
        .config("spark.scheduler.maxRegisteredResourcesWaitingTime", "60s")
        .getOrCreate()
    )
    try:
        total = spark.range(1000).selectExpr("sum(id) AS total").first()["total"]
        chains = spark.sparkContext.parallelize(range(8), 8).mapPartitions(ancestry).collect()
        with urllib.request.urlopen(webui + "/json/", timeout=5) as response:
            state = json.load(response)
        print(json.dumps({"total": total, "driver_pid": os.getpid(), "chains": chains, "state": state}))
    finally:
        spark.stop()
    """
)


def alive(pid: int) -> bool:
    """Return whether a process runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def running(groups: tuple[int, ...]) -> list[int]:
    """Return the pids of live processes (not zombies) in the process groups: the daemons and their executors."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) in groups and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Start a master and 2 workers on free ports in a temporary folder; always stop them by pid afterwards."""
    require_spark()
    folder = tmp_path / "spark"
    started = time.monotonic()
    try:
        running_cluster = devspark.start(folder, workers=2, worker_cores=1, worker_memory="512m", timeout=90)
        print(f"cluster started in {time.monotonic() - started:.1f} s")
        yield running_cluster
    finally:
        devspark.stop(folder)


def test_a_job_runs_on_the_workers_executors(cluster: Cluster) -> None:
    assert cluster.master_url.startswith("spark://127.0.0.1:")
    assert cluster.alive_workers() == 2
    environment = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, cluster.master_url, cluster.webui_url],
        capture_output=True, text=True, timeout=300, env=environment, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["total"] == 499500
    python_workers = {chain[0] for chain in report["chains"]}
    assert all(report["driver_pid"] not in chain for chain in report["chains"])
    # Each partition ran in a Python worker below an executor below one of our workers, and both workers took part.
    assert {pid for chain in report["chains"] for pid in chain} & set(cluster.pids) == set(cluster.worker_pids)
    state = report["state"]
    assert [worker["state"] for worker in state["workers"]] == ["ALIVE", "ALIVE"]
    assert [app["name"] for app in state["activeapps"]] == ["cluster-test"]

    stopped = devspark.stop(cluster.folder)
    assert sorted(stopped) == sorted(cluster.pids)
    assert running(cluster.pids) == []
    assert [pid for pid in python_workers if alive(pid)] == []
    assert devspark.status(cluster.folder) is None


def test_start_returns_the_running_cluster(cluster: Cluster) -> None:
    assert devspark.start(cluster.folder, workers=2) == cluster
    assert devspark.status(cluster.folder) == cluster


def test_stop_without_a_cluster_does_nothing(tmp_path: Path) -> None:
    assert devspark.stop(tmp_path / "never-made") == []
    assert devspark.stop(tmp_path) == []
    assert devspark.status(tmp_path) is None


def test_a_java_that_fails_stops_the_start_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        spark_home()
    except SparkClusterError as error:
        pytest.skip(str(error))
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(
        '#!/bin/sh\nif [ "$1" = -version ]; then echo \'openjdk version "17.0.99"\' >&2; exit 0; fi\n'
        'echo "this java refuses to run Spark" >&2; exit 3\n'
    )
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java.parents[1]))
    folder = tmp_path / "spark"
    with pytest.raises(SparkClusterError, match=r"exited while starting; read .*master\.log") as failure:
        devspark.start(folder, workers=1, timeout=30)
    assert "\n" not in str(failure.value)
    assert "this java refuses" in (folder / "logs" / "master.log").read_text()
    assert devspark.status(folder) is None
    assert not (folder / devspark.STATE_FILE).exists()


def test_a_missing_java_says_how_to_install_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(SparkClusterError, match="install Java 17 or newer"):
        find_java()
