"""Parquet files written atomically (whole under their name or not at all), and read with exact integer ids."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from luigi.target import FileAlreadyExists

from workflow.io.files import temporary_name

log = logging.getLogger("luigi-interface.workflow.parquet")


def write_file(table: pa.Table, path: Path) -> None:
    """Write a parquet file through a temporary name, so it appears whole or not at all."""
    temporary = temporary_name(path)
    pq.write_table(table, temporary)
    os.replace(temporary, path)


def write_target(table: pa.Table, target: luigi.LocalTarget) -> None:
    """Write a luigi target's parquet file atomically; when a concurrent run wrote it first, keep that one."""
    temporary_path = None
    try:
        with target.temporary_path() as temporary_path:
            pq.write_table(table, temporary_path)
    except FileAlreadyExists:
        log.info("%s was written by another run meanwhile; keeping that one", target.path)
        os.remove(temporary_path)


def read_frame(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Return a parquet file as a frame whose integer columns with nulls are nullable Int64, exact beyond 2**53.

    Arrow's buffers are released column by column as pandas takes them over (self_destruct), so the
    rows are never held twice.
    """
    table = pq.read_table(path, columns=columns)
    with_nulls = any(column.type == pa.int64() and column.null_count for column in table.columns)
    exact = {pa.int64(): pd.Int64Dtype()}.get if with_nulls else None
    frame = table.to_pandas(types_mapper=exact, self_destruct=True, split_blocks=True)
    del table
    return frame
