"""Peak memory of whole process trees (Python, its forked workers, a Spark JVM and its Python workers, a cluster's
daemons), from /proc."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(*roots: int) -> int:
    """Return the resident bytes of the processes and all their descendants, read from /proc.

    A child that still has its parent's address space (the same size and command line: a JVM's
    posix_spawn child before its exec, as Hadoop spawns one to chmod each file Spark writes) is
    counted once, in its parent.
    """
    children: dict[int, list[int]] = {}
    sizes: dict[int, tuple[int, int]] = {}  # pages of address space and resident
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
                size, resident = Path(entry.path, "statm").read_text().split()[:2]
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            sizes[int(entry.name)] = (int(size), int(resident))
            children.setdefault(ppid, []).append(int(entry.name))
    total, pending = 0, [(root, 0) for root in roots]
    while pending:
        pid, parent = pending.pop()
        size, resident = sizes.get(pid, (0, 0))
        if size != sizes.get(parent, (-1, 0))[0] or _command(pid) != _command(parent):
            total += resident * PAGE
        pending += [(child, pid) for child in children.get(pid, [])]
    return total


def _command(pid: int) -> bytes | None:
    """Return a process's command line (None when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


class TreePeak:
    """While entered, samples the summed resident memory of process trees; `peak_mb` is the largest sample."""

    def __init__(self, *pids: int, every: float = 0.05) -> None:
        self.pids, self.every, self.peak = pids, every, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def peak_mb(self) -> float:
        """Return the peak in MB (2**20 bytes)."""
        return self.peak / 2**20

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, tree_rss(*self.pids))

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._done.set()
        self._thread.join()
