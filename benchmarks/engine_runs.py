"""What the benchmarks need to run our graph on either engine: a child's environment and what Spark spilled.

A child chooses its engine by WORKFLOW_ENGINE (or `--engine-name`, which wins), its master by SPARK_MASTER, and its
Spark memory by a luigi config file in the benchmark's work folder (LUIGI_CONFIG_PATH), read after the repository's
luigi.cfg when the child starts in the repository (as `bench.spawn` starts it), so that its values win.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path

import luigi

ENGINES = ("pandas", "spark")
LOCAL_MASTER = "local[2]"
DRIVER_MEMORY = "1g"
EXECUTOR_MEMORY = "1g"
CONFIG_NAME = "spark-bench.cfg"


def environment(engine: str, folder: Path, master: str | None = None) -> dict[str, str]:
    """Return the environment of a child running our graph on `engine`: for Spark on `master` (else SPARK_MASTER,
    else local[2]) with 1g of driver and executor memory."""
    env = {**os.environ, "WORKFLOW_ENGINE": engine}
    if engine == "spark":
        env["SPARK_MASTER"] = master or os.environ.get("SPARK_MASTER") or LOCAL_MASTER
        config = folder / CONFIG_NAME
        config.write_text(f"[spark]\ndriver-memory = {DRIVER_MEMORY}\nexecutor-memory = {EXECUTOR_MEMORY}\n")
        env["LUIGI_CONFIG_PATH"] = str(config)
    return env


def spilled_mb(task_classes: Iterable[type[luigi.Task]], date: dt.date, since: float) -> tuple[float, float]:
    """Return the MB the tasks' run records written since `since` (a time.time()) say Spark spilled: the size in
    memory, then on disk (a pandas run records none: 0)."""
    memory = disk = 0
    for task_class in task_classes:
        task = task_class(date=date)
        record = task.folder / "runs" / f"{task.name}.json"
        if record.exists() and record.stat().st_mtime >= since:
            facts = json.loads(record.read_text())
            memory += facts.get("spill_memory_bytes", 0)
            disk += facts.get("spill_disk_bytes", 0)
    return memory / 2**20, disk / 2**20
