"""Parquet targets written atomically (whole under their name or not at all), as one file or a folder of parts."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workflow.io.files import temporary_name

log = logging.getLogger("luigi-interface.workflow.parquet")

# Written last into a folder of part files (by Spark's committer and by publish): the folder is whole.
SUCCESS = "_SUCCESS"


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


def count_rows(path: str | Path) -> int:
    """Return the number of rows of a parquet file or folder, from the files' footers (nothing else is read)."""
    return sum(pq.read_metadata(part).num_rows for part in part_files(path))


def publish(temporary: Path, path: Path, *, replace: bool = False) -> None:
    """Rename a finished temporary file or folder to its final name; when something holds that name, keep it unless
    `replace` (a concurrent run of the same step wrote the same data first)."""
    if replace and path.is_dir():
        shutil.rmtree(path)
    elif replace and temporary.is_dir():
        path.unlink(missing_ok=True)  # a file from a run with the other engine: a rename cannot replace it
    elif path.exists() and not replace:
        log.info("%s was written by another run meanwhile; keeping that one", path)
        shutil.rmtree(temporary) if temporary.is_dir() else temporary.unlink()
        return
    os.replace(temporary, path)


def write_file(table: pa.Table, path: Path) -> None:
    """Write a parquet file through a temporary name, replacing any previous one, so it appears whole or not at all."""
    write_target(table, path, replace=True)


def write_target(table: pa.Table, path: str | Path, *, replace: bool = False) -> None:
    """Write a parquet file atomically; when a concurrent run wrote it first, keep that one (unless `replace`)."""
    path = Path(path)
    temporary = temporary_name(path)
    pq.write_table(table, temporary)
    publish(temporary, path, replace=replace)


def read_frame(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Return a parquet file or folder as a frame, its integer columns with nulls nullable Int64 (exact past 2**53).

    Arrow's buffers are released column by column as pandas takes them over (self_destruct), so the
    rows are never held twice.
    """
    table = pq.read_table(path, columns=columns)
    with_nulls = any(column.type == pa.int64() and column.null_count for column in table.columns)
    exact = {pa.int64(): pd.Int64Dtype()}.get if with_nulls else None
    frame = table.to_pandas(types_mapper=exact, self_destruct=True, split_blocks=True)
    del table
    return frame
