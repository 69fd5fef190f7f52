"""Files that appear whole or not at all: written under a temporary name in the same folder, then renamed; parquet
targets, which are whole as a file or as a folder of part files with its _SUCCESS (no pyarrow: a completeness check
needs none)."""

from __future__ import annotations

import os
from pathlib import Path

import luigi

# The temporary names: luigi's `<target>-luigi-tmp-<n>` and the project's own `.<name>.tmp-<pid>`.
TEMPORARY_PATTERNS = ("*-luigi-tmp-*", ".*.tmp-*")
# Written last into a folder of part files (by Spark's committer): the folder is whole.
SUCCESS = "_SUCCESS"


def temporary_name(path: Path) -> Path:
    """Return the name a file is written under before it is renamed to `path`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_text(path: Path, text: str) -> None:
    """Write a text file through a temporary name."""
    temporary = temporary_name(path)
    temporary.write_text(text)
    os.replace(temporary, path)


class ParquetTarget(luigi.LocalTarget):
    """A parquet target: one file (pandas engine) or a folder of part files with its _SUCCESS (Spark engine)."""

    def exists(self) -> bool:
        path = Path(self.path)
        return path.is_file() or (path / SUCCESS).is_file()


def part_files(path: str | Path) -> list[Path]:
    """Return the parquet files of a target: itself when it is a file, else its part files (not `_` or `.` ones)."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(("_", ".")))
