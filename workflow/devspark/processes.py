"""The cluster's processes, read from /proc: whether a pid is still our Spark daemon, and ending a process tree."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("luigi-interface.workflow.devspark")


def alive(pid: int) -> bool:
    """Return whether the process runs (reaping it when it is our own exited child)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[0] not in ("Z", "X")


def is_daemon(pid: object, main_class: str) -> bool:
    """Return whether `pid` is a live Spark daemon of that class (not another process that reused the pid)."""
    if not isinstance(pid, int) or pid <= 1 or not alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return main_class.encode() in command or any(part.endswith(b"spark-class") for part in command)


def owns_group(pid: object, main_class: str) -> bool:
    """Return whether `pid` names a process group of ours: its leader is our daemon, or gone with members left.

    Linux never reuses a pid while a process group of that number exists, so a group without its leader is ours.
    """
    if not isinstance(pid, int) or pid <= 1:
        return False
    if alive(pid):
        return is_daemon(pid, main_class) and os.getpgid(pid) == pid
    return any(group == pid and letter not in "ZX" for letter, _, group, _ in _processes().values())


def end(groups: list[int], grace: float) -> list[int]:
    """Send SIGTERM to the process groups and every descendant of theirs, SIGKILL to those still running `grace`
    seconds later; return the processes that survived even that."""
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
    return _living(tree)


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
