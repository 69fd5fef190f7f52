"""A Spark standalone cluster on 127.0.0.1 from the pyspark package: a master and workers, their pids in a state file.

The pip package has no sbin/start-master.sh, so each daemon is `<pyspark>/bin/spark-class` with the master's or the
worker's class, in a session of its own (its executors join its process group). Logs, work, pid and scratch folders
live in the state folder (`<output>/spark/` by default), never in site-packages.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workflow.errors import WorkflowError
from workflow.paths import spark_dir

log = logging.getLogger("luigi-interface.workflow.devspark")

STATE_FILE = "cluster.json"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
JAVA_MINIMUM = 17
JAVA_HINT = "install Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


class SparkClusterError(WorkflowError):
    """The Spark standalone cluster could not be found, started or stopped."""


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


def default_folder() -> Path:
    """Return the cluster's default state folder: `<output>/spark/`."""
    return spark_dir()


def spark_home() -> Path:
    """Return the installed pyspark package's folder, which holds bin/spark-class and the jars."""
    spec = importlib.util.find_spec("pyspark")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise SparkClusterError("pyspark is not installed; install the Spark extra: pip install -e '.[spark]'")
    home = Path(spec.submodule_search_locations[0])
    if not (home / "bin" / "spark-class").exists():
        raise SparkClusterError(f"{home} has no bin/spark-class; reinstall pyspark")
    return home


def find_java() -> Path:
    """Return the java that spark-class will run (JAVA_HOME's, else the one on PATH), checked to be 17 or newer."""
    if os.environ.get("JAVA_HOME"):
        java = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if not java.exists():
            raise SparkClusterError(f"JAVA_HOME is {os.environ['JAVA_HOME']}, which has no bin/java; {JAVA_HINT}")
    else:
        found = shutil.which("java")
        if found is None:
            raise SparkClusterError(f"no java on PATH; {JAVA_HINT}")
        java = Path(found)
    try:
        result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SparkClusterError(f"cannot run {java}: {error}; {JAVA_HINT}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise SparkClusterError(f"{java} -version says no version (exit {result.returncode}); {JAVA_HINT}")
    major = int(match.group(2)) if match.group(1) == "1" else int(match.group(1))  # "1.8.0" is Java 8
    if major < JAVA_MINIMUM:
        raise SparkClusterError(f"{java} is Java {major}; Spark needs {JAVA_MINIMUM} or newer: {JAVA_HINT}")
    return java


def unavailable_reason() -> str | None:
    """Return why Spark cannot run here (no pyspark, no Java 17+), or None when it can."""
    try:
        spark_home()
        find_java()
    except SparkClusterError as error:
        return str(error)
    return None


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
            if not _alive(daemon["pid"]):
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
    if state is None or not _is_daemon(state["master"].get("pid"), MASTER_CLASS):
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
    state = _read_state(folder)
    if state is None:
        return []
    daemons = [(daemon, WORKER_CLASS) for daemon in state["workers"]] + [(state["master"], MASTER_CLASS)]
    groups = [daemon["pid"] for daemon, main_class in daemons if _owns_group(daemon.get("pid"), main_class)]
    # Executors share their worker's group; the Python daemons they fork make groups of their own: signal the tree.
    tree = _tree(groups)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
        for pid in _living(tree):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline and _living(tree):
            time.sleep(0.1)
        if not _living(tree):
            break
        log.info("Spark processes %s still running %.0f s after SIGTERM: killing them", _living(tree), grace)
    left = _living(tree)
    if left:
        raise SparkClusterError(f"Spark processes {left} survived SIGKILL; see {folder / 'logs'}")
    (folder / STATE_FILE).unlink(missing_ok=True)
    for pid_file in (folder / "pids").glob("*.pid"):
        pid_file.unlink()
    if groups:
        log.info("Spark cluster in %s stopped (pids %s)", folder, ", ".join(map(str, groups)))
    return groups


def _cluster(folder: Path, state: dict) -> Cluster:
    return Cluster(
        folder=folder,
        master_url=state["master_url"],
        webui_url=state["webui_url"],
        master_pid=state["master"]["pid"],
        worker_pids=tuple(daemon["pid"] for daemon in state["workers"] if "pid" in daemon),
    )


def _read_state(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise SparkClusterError(f"{folder / STATE_FILE} is not valid JSON ({error}); delete it") from None


def _write_state(folder: Path, state: dict) -> None:
    pending = folder / f"{STATE_FILE}.tmp"
    pending.write_text(json.dumps(state, indent=2) + "\n")
    pending.replace(folder / STATE_FILE)  # whole, for readers that take no lock


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _processes() -> dict[int, tuple[str, int, int, str]]:
    """Return every process's state letter, parent, process group and start time (from /proc)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        table[int(stat.parent.name)] = (fields[0], int(fields[1]), int(fields[2]), fields[19])
    return table


def _alive(pid: int) -> bool:
    """Return whether the process runs (reaping it when it is our own exited child)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[0] not in ("Z", "X")


def _tree(groups: list[int]) -> dict[int, str]:
    """Return the live processes in the groups and every descendant of theirs, each with its start time."""
    table = _processes()
    found = {pid for pid, (_, _, group, _) in table.items() if group in groups}
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    pending = list(found)
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return {pid: table[pid][3] for pid in found if table[pid][0] not in ("Z", "X")}


def _living(tree: dict[int, str]) -> list[int]:
    """Return the processes of the tree still running: same pid and start time, not a zombie (ours are reaped)."""
    for pid in tree:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    table = _processes()
    return sorted(
        pid for pid, started in tree.items() if pid in table and table[pid][3] == started and table[pid][0] not in "ZX"
    )


def _is_daemon(pid: object, main_class: str) -> bool:
    """Return whether `pid` is a live Spark daemon of that class (not another process that reused the pid)."""
    if not isinstance(pid, int) or pid <= 1 or not _alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return main_class.encode() in command or any(part.endswith(b"spark-class") for part in command)


def _owns_group(pid: object, main_class: str) -> bool:
    """Return whether `pid` names a process group of ours: its leader is our daemon, or gone with members left.

    Linux never reuses a pid while a process group of that number exists, so a group without its leader is ours.
    """
    if not isinstance(pid, int) or pid <= 1:
        return False
    if _alive(pid):
        return _is_daemon(pid, main_class) and os.getpgid(pid) == pid
    return any(group == pid and letter not in "ZX" for letter, _, group, _ in _processes().values())
