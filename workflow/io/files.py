"""Files that appear whole or not at all: written under a temporary name in the same folder, then renamed."""

from __future__ import annotations

import os
from pathlib import Path

# The temporary names: luigi's `<target>-luigi-tmp-<n>` and the project's own `.<name>.tmp-<pid>`.
TEMPORARY_PATTERNS = ("*-luigi-tmp-*", ".*.tmp-*")


def temporary_name(path: Path) -> Path:
    """Return the name a file is written under before it is renamed to `path`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_text(path: Path, text: str) -> None:
    """Write a text file through a temporary name."""
    temporary = temporary_name(path)
    temporary.write_text(text)
    os.replace(temporary, path)
