"""Parquet targets written atomically (whole under their name or not at all), as one file or a folder of parts."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workflow.io.files import part_files, temporary_name

log = logging.getLogger("luigi-interface.workflow.parquet")

# Rows per row group of the files written from frames: pyarrow's default, and the unit of streamed reads and writes.
ROW_GROUP_ROWS = 1024 * 1024
# A column chunk's dictionary may grow to 64 kB (8,192 int64s) before the chunk is written plain: ids of millions of
# users or stamps give up early instead of after 1 MB (pyarrow's default), which halves the CPU of writing 20M
# ratings (2.8 -> 1.4 s) and makes the file smaller (359 -> 286 MB); courses, ratings and languages keep theirs.
# LZ4 rather than snappy: as small here, and about 1 s less CPU over a 20M run's writes and reads (Spark reads it).
WRITE_OPTIONS = {"dictionary_pagesize_limit": 64 << 10, "compression": "lz4"}


def writer(path: str | Path, schema: pa.Schema) -> pq.ParquetWriter:
    """Return a parquet writer of the targets' options (WRITE_OPTIONS)."""
    return pq.ParquetWriter(path, schema, **WRITE_OPTIONS)


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


@contextmanager
def _written(path: Path, *, replace: bool) -> Iterator[Path]:
    """Yield the temporary name to write `path` under; publish it once written, or remove it when writing fails."""
    temporary = temporary_name(path)
    try:
        yield temporary
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    publish(temporary, path, replace=replace)


def write_file(table: pa.Table, path: Path) -> None:
    """Write a parquet file through a temporary name, replacing any previous one, so it appears whole or not at all."""
    write_target(table, path, replace=True)


def write_target(table: pa.Table, path: str | Path, *, replace: bool = False) -> None:
    """Write a parquet file atomically; when a concurrent run wrote it first, keep that one (unless `replace`)."""
    with _written(Path(path), replace=replace) as temporary, writer(temporary, table.schema) as parquet_writer:
        parquet_writer.write_table(table, row_group_size=ROW_GROUP_ROWS)


def write_frame(
    frame: pd.DataFrame, path: str | Path, *, replace: bool = False, schema: pa.Schema | None = None
) -> None:
    """Write a frame to a parquet file atomically (as write_target), converting it to Arrow one row group at a time,
    so that it is never held twice; its columns take `schema`'s Arrow types when given (else pandas' own)."""
    schema = schema if schema is not None else pa.Schema.from_pandas(frame, preserve_index=False)
    with _written(Path(path), replace=replace) as temporary, writer(temporary, schema) as parquet_writer:
        for start in range(0, len(frame), ROW_GROUP_ROWS):
            part = frame.iloc[start : start + ROW_GROUP_ROWS]
            parquet_writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
            del part
        if not len(frame):
            parquet_writer.write_table(schema.empty_table())


def read_frame(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Return a parquet file or folder as a frame, its integer columns with nulls nullable Int64 (exact past 2**53).

    The numeric and timestamp columns are allocated whole once and filled one row group at a time, so
    the rows are held once, beside a single row group's Arrow buffers (reading a table and converting it
    holds them about twice). When any int64 column has nulls, every int64 column is Int64.
    """
    files = part_files(path)
    schema = pq.read_schema(files[0]) if files else pa.schema([])
    names = list(columns) if columns is not None else [name for name in schema.names if not name.startswith("__")]
    fields = {name: schema.field(name) for name in names}
    n_rows = sum(pq.read_metadata(part).num_rows for part in files)
    columns_out = {name: _Column(field.type, n_rows) for name, field in fields.items()}
    start = 0
    for part in files:
        reader = pq.ParquetFile(part)
        for group in range(reader.num_row_groups):
            rows = reader.read_row_group(group, columns=names)
            for name, column in columns_out.items():
                column.fill(start, rows.column(name))
            start += rows.num_rows
            del rows
    int64_nulls = any(column.has_nulls for column in columns_out.values() if column.type == pa.int64())
    frame = pd.DataFrame(
        {name: column.values(nullable_int64=int64_nulls) for name, column in columns_out.items()}, copy=False
    )
    return frame if len(frame.columns) or not n_rows else frame.reindex(range(n_rows))


class _Column:
    """One column of a frame being read: a preallocated array (numbers, timestamps) or pandas pieces (others)."""

    def __init__(self, type_: pa.DataType, n_rows: int) -> None:
        self.type = type_
        self.has_nulls = False
        self.fixed = pa.types.is_int64(type_) or pa.types.is_floating(type_) or pa.types.is_timestamp(type_)
        self.stamps = None
        if pa.types.is_timestamp(type_):
            # Allocated once (untouched, so not yet resident, memory) and filled in place through its int64 view; with
            # a zone, pandas' array is built over that view (as pyarrow's to_pandas does), not over a copy.
            self.buffer = np.empty(n_rows, dtype=np.int64)
            zone = pd.DatetimeTZDtype(type_.unit, type_.tz) if type_.tz else None
            self.stamps = (
                pd.array(self.buffer, dtype=zone, copy=False) if zone else self.buffer.view(f"M8[{type_.unit}]")
            )
        elif self.fixed:
            self.buffer = np.empty(n_rows, dtype=np.int64 if pa.types.is_int64(type_) else type_.to_pandas_dtype())
        if self.fixed:
            self.mask = np.zeros(n_rows, dtype=bool)
        self.pieces: list[pd.Series] = []

    def fill(self, start: int, chunk: pa.ChunkedArray) -> None:
        """Copy one row group's values into place."""
        if not self.fixed:
            self.pieces.append(chunk.to_pandas())
            return
        for piece in chunk.chunks:  # a piece at a time: ChunkedArray.to_numpy copies the whole column first
            end = start + len(piece)
            values = piece.view(pa.int64()) if pa.types.is_timestamp(self.type) else piece
            if values.null_count and not pa.types.is_floating(self.type):
                self.has_nulls = True
                self.mask[start:end] = values.is_null().to_numpy(zero_copy_only=False)
                values = values.fill_null(0)
            self.buffer[start:end] = values.to_numpy(zero_copy_only=False)  # floats: nulls become NaN, as to_pandas
            start = end

    def values(self, *, nullable_int64: bool) -> np.ndarray | pd.api.extensions.ExtensionArray | pd.Series:
        """Return the column's values as Table.to_pandas has them."""
        if not self.fixed:
            empty = pa.chunked_array([], type=self.type).to_pandas()
            return pd.concat(self.pieces, ignore_index=True) if self.pieces else empty
        if self.stamps is not None:
            self.buffer[self.mask] = np.iinfo(np.int64).min  # NaT
            return self.stamps
        if nullable_int64 and pa.types.is_int64(self.type):
            return pd.arrays.IntegerArray(self.buffer, self.mask)
        return self.buffer
