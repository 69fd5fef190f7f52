"""The central Luigi scheduler (luigid) in the background, its pid, log and state under `<output>/luigid/`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from workflow import databases
from workflow.io.urls import driver_url
from workflow.paths import PROJECT_ROOT, scheduler_dir

TASK_HISTORY_DATABASE = "luigi_task_history"


def running_pid() -> int | None:
    """Return the pid of the luigid this project started, or None when it is not running."""
    try:
        pid = int((scheduler_dir() / "luigid.pid").read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def task_history_url() -> str:
    """Return where luigid records task history: LUIGI_TASK_HISTORY_URL, or a database on the embedded server.

    PostgreSQL, not SQLite: luigi 3.8.1's task history breaks on SQLite under SQLAlchemy 2 (spotify/luigi#3320).
    """
    if os.environ.get("LUIGI_TASK_HISTORY_URL"):
        return driver_url(os.environ["LUIGI_TASK_HISTORY_URL"], "LUIGI_TASK_HISTORY_URL")
    server = databases.embedded_server()
    server.ensure_running()
    server.create_databases(TASK_HISTORY_DATABASE)
    return server.url(TASK_HISTORY_DATABASE)


def start(port: int, address: str = "127.0.0.1") -> int:
    """Start luigid in the background unless it runs already; return its pid once it answers."""
    pid = running_pid()
    if pid is not None:
        print(f"luigid already running (pid {pid})")
        return pid
    folder = scheduler_dir()
    folder.mkdir(parents=True, exist_ok=True)
    luigid = Path(sys.executable).with_name("luigid")
    environment = {**os.environ, "LUIGI_TASK_HISTORY_URL": task_history_url()}
    with open(folder / "luigid.log", "ab") as log:
        process = subprocess.Popen(
            [str(luigid), "--port", str(port), "--address", address, "--state-path", str(folder / "state.pickle")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT, env=environment, start_new_session=True,
        )  # fmt: skip
    (folder / "luigid.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"luigid exited with {process.returncode}; see {folder / 'luigid.log'}")
        try:
            urllib.request.urlopen(f"http://{address}:{port}/api/task_list", timeout=1).close()
            print(f"luigid running (pid {process.pid}): http://{address}:{port}/ ; log {folder / 'luigid.log'}")
            return process.pid
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"luigid did not answer on {address}:{port} within 30 s; see {folder / 'luigid.log'}")


def stop() -> None:
    """Stop luigid with SIGTERM, which makes it save its state, and wait until it is gone."""
    pid = running_pid()
    if pid is None:
        print("luigid is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and running_pid() is not None:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
        except ChildProcessError:
            pass
        time.sleep(0.1)
    if running_pid() is not None:
        raise RuntimeError(f"luigid (pid {pid}) did not stop within 30 s")
    (scheduler_dir() / "luigid.pid").unlink(missing_ok=True)
    print(f"luigid stopped; state saved in {scheduler_dir() / 'state.pickle'}")
