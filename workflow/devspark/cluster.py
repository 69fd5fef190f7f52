"""A Spark standalone cluster on 127.0.0.1 from the pyspark package: a master and workers, their pids in a state file.

The pip package has no sbin/start-master.sh, so each daemon is `<pyspark>/bin/spark-class` with the master's or the
worker's class, in a session of its own (its executors join its process group). Logs, work, pid and scratch folders
live in the state folder (`<output>/spark/` by default), never in site-packages.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workflow.devspark import processes
from workflow.devspark.runtime import SparkClusterError, default_folder, find_java, spark_home

log = logging.getLogger("luigi-interface.workflow.devspark")

STATE_FILE = "cluster.json"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster: where its master listens and the pids of its daemons."""

    folder: Path
    master_url: str
    webui_url: str
    master_pid: int
    worker_pids: tuple[int, ...]

    @property
    def pids(self) -> tuple[int, ...]:
        """Return the master's pid, then the workers'."""
        return (self.master_pid, *self.worker_pids)

    def alive_workers(self) -> int:
        """Return how many workers the master's web UI reports ALIVE (0 when it does not answer)."""
        try:
            with urllib.request.urlopen(f"{self.webui_url}/json/", timeout=2) as response:
                state = json.load(response)
        except (OSError, ValueError):
            return 0
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")


def free_ports(count: int) -> list[int]:
    """Return `count` distinct ports free on 127.0.0.1 (bound to port 0, then released)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def start(
    folder: Path | None = None,
    *,
    workers: int = 2,
    worker_cores: int = 1,
    worker_memory: str = "1g",
    master_port: int | None = None,
    webui_port: int | None = None,
    timeout: float = 60.0,
) -> Cluster:
    """Start a master and `workers` workers on 127.0.0.1 unless one runs in `folder`; return it once all are ALIVE."""
    folder = (folder or default_folder()).resolve()
    if workers < 1:
        raise SparkClusterError(f"a cluster needs at least one worker, not {workers}")
    with _lock(folder):
        running = status(folder)
        if running is not None:
            log.info("Spark cluster already running in %s: %s", folder, running.master_url)
            return running
        _stop(folder)  # whatever a half-dead earlier cluster left
        home = spark_home()
        java = find_java()
        folders = {name: folder / name for name in ("logs", "work", "pids", "local")}
        for path in folders.values():
            path.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ,
            "SPARK_HOME": str(home),
            "JAVA_HOME": str(java.resolve().parents[1]),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(folders["logs"]),
            "SPARK_WORKER_DIR": str(folders["work"]),
            "SPARK_PID_DIR": str(folders["pids"]),
            "SPARK_LOCAL_DIRS": str(folders["local"]),
            # Spark 4 opens its REST submission server on port 6066 by default: unauthenticated and a fixed port.
            "SPARK_MASTER_OPTS": f"{os.environ.get('SPARK_MASTER_OPTS', '')} -Dspark.master.rest.enabled=false".strip(),
        }
        ports = iter(free_ports(2 + 2 * workers))
        master_port = master_port or next(ports)
        webui_port = webui_port or next(ports)
        master_url = f"spark://127.0.0.1:{master_port}"
        state: dict = {
            "master_url": master_url,
            "webui_url": f"http://127.0.0.1:{webui_port}",
            "master": {"port": master_port, "webui_port": webui_port, "log": str(folders["logs"] / "master.log")},
            "workers": [
                {
                    "port": next(ports),
                    "webui_port": next(ports),
                    "cores": worker_cores,
                    "memory": worker_memory,
                    "log": str(folders["logs"] / f"worker-{number}.log"),
                }
                for number in range(1, workers + 1)
            ],
        }
        spark_class = str(home / "bin" / "spark-class")
        _launch(
            [spark_class, MASTER_CLASS, "--host", "127.0.0.1", "--port", str(master_port),
             "--webui-port", str(webui_port)],
            state["master"], environment, folder, state,
        )  # fmt: skip
        for daemon in state["workers"]:
            _launch(
                [spark_class, WORKER_CLASS, "--host", "127.0.0.1", "--port", str(daemon["port"]),
                 "--webui-port", str(daemon["webui_port"]), "--cores", str(worker_cores),
                 "--memory", worker_memory, "--work-dir", str(folders["work"]), master_url],
                daemon, environment, folder, state,
            )  # fmt: skip
        cluster = _cluster(folder, state)
        try:
            _wait_until_alive(cluster, state, timeout)
        except BaseException:
            _stop(folder)
            raise
        log.info("Spark cluster %s with %d worker(s) started; web UI %s", master_url, workers, cluster.webui_url)
        return cluster


def _launch(command: list[str], daemon: dict, environment: dict[str, str], folder: Path, state: dict) -> None:
    """Start one daemon in a session of its own, its output in its log; record its pid in `state` and on disk."""
    log_file = Path(daemon["log"])
    with open(log_file, "ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=folder, env=environment, start_new_session=True,
        )  # fmt: skip
    daemon["pid"] = process.pid
    (folder / "pids" / f"{log_file.stem}.pid").write_text(f"{process.pid}\n")
    _write_state(folder, state)  # a stop() after a crash here still finds every daemon started so far


def _wait_until_alive(cluster: Cluster, state: dict, timeout: float) -> None:
    """Wait until the master reports every worker ALIVE; fail naming the log of a daemon that died, or the master's."""
    daemons = [state["master"], *state["workers"]]
    expected = len(state["workers"])
    deadline = time.monotonic() + timeout
    alive = 0
    while time.monotonic() < deadline:
        for daemon in daemons:
            if not processes.alive(daemon["pid"]):
                raise SparkClusterError(
                    f"Spark daemon {Path(daemon['log']).stem} (pid {daemon['pid']}) exited while starting; "
                    f"read {daemon['log']}"
                )
        alive = cluster.alive_workers()
        if alive >= expected:
            return
        time.sleep(0.5)
    raise SparkClusterError(
        f"the Spark master {cluster.master_url} reported {alive} of {expected} worker(s) ALIVE after {timeout:.0f} s; "
        f"read {state['master']['log']} and the worker logs beside it"
    )


def status(folder: Path | None = None) -> Cluster | None:
    """Return the cluster recorded in `folder` when its master runs, else None."""
    folder = (folder or default_folder()).resolve()
    state = _read_state(folder)
    if state is None or not processes.is_daemon(state["master"].get("pid"), MASTER_CLASS):
        return None
    return _cluster(folder, state)


def stop(folder: Path | None = None, grace: float = 5.0) -> list[int]:
    """Stop the daemons recorded in `folder` and their process groups (SIGTERM, then SIGKILL); return the pids ended."""
    folder = (folder or default_folder()).resolve()
    if not folder.exists():
        return []
    with _lock(folder):
        return _stop(folder, grace)


def _stop(folder: Path, grace: float = 5.0) -> list[int]:
    """Stop the daemons recorded in `folder` (its lock held) and forget them; return the pids ended."""
    state = _read_state(folder)
    if state is None:
        return []
    daemons = [(daemon, WORKER_CLASS) for daemon in state["workers"]] + [(state["master"], MASTER_CLASS)]
    groups = [daemon["pid"] for daemon, main_class in daemons if processes.owns_group(daemon.get("pid"), main_class)]
    left = processes.end(groups, grace)
    if left:
        raise SparkClusterError(f"Spark processes {left} survived SIGKILL; see {folder / 'logs'}")
    (folder / STATE_FILE).unlink(missing_ok=True)
    for pid_file in (folder / "pids").glob("*.pid"):
        pid_file.unlink()
    if groups:
        log.info("Spark cluster in %s stopped (pids %s)", folder, ", ".join(map(str, groups)))
    return groups


def _cluster(folder: Path, state: dict) -> Cluster:
    """Return the cluster a state file records."""
    return Cluster(
        folder=folder,
        master_url=state["master_url"],
        webui_url=state["webui_url"],
        master_pid=state["master"]["pid"],
        worker_pids=tuple(daemon["pid"] for daemon in state["workers"] if "pid" in daemon),
    )


def _read_state(folder: Path) -> dict | None:
    """Return the state file of `folder`, or None when it has none."""
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise SparkClusterError(f"{folder / STATE_FILE} is not valid JSON ({error}); delete it") from None


def _write_state(folder: Path, state: dict) -> None:
    """Write the state file of `folder` through a temporary name."""
    pending = folder / f"{STATE_FILE}.tmp"
    pending.write_text(json.dumps(state, indent=2) + "\n")
    pending.replace(folder / STATE_FILE)  # whole, for readers that take no lock


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """Hold `folder`'s lock, so one start or stop runs at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
