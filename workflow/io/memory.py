"""Memory a step freed, handed back to the system, so that a worker running step after step peaks at its largest."""

from __future__ import annotations

import ctypes
import gc
from functools import cache

import pyarrow as pa


def give_back() -> None:
    """Return this process's freed memory to the system: Arrow's pool and glibc malloc's arenas (one per thread:
    the extract's reader thread has its own) keep it otherwise.

    What survives the collection is frozen (moved out of the collector's sight): it is what the process keeps between
    steps (modules, tasks, settings), so the next step's collection walks only what was made since, not the hundreds
    of thousands of objects pandas, pyarrow and luigi made at import (a full collection took 0.12 s per step).
    """
    gc.collect()
    gc.freeze()
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:
    """Return glibc's malloc_trim, or None where the C library is not glibc."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
