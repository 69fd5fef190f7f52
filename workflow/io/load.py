"""COPY into PostgreSQL: frames as CSV, fixed-width batches in PostgreSQL's binary format."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy.engine import Connection


def copy_in(connection: Connection, table: str, frame: pd.DataFrame) -> None:
    """COPY the frame into a table."""
    buffer = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    buffer.seek(0)
    columns = ", ".join(connection.dialect.identifier_preparer.quote(name) for name in frame.columns)
    target = connection.dialect.identifier_preparer.quote(table)
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true)", buffer)


def copy_in_binary(
    connection: Connection, table: str, rows: pa.RecordBatch | pd.DataFrame, layout: list[tuple[str, str]]
) -> None:
    """COPY a record batch or frame of fixed-width, non-null columns into a table in PostgreSQL's binary format.

    Several times faster than CSV at millions of rows: numpy lays the rows out in one pass and the
    server parses no text. Call it once per batch to load more rows than fit in memory.
    """
    row = np.dtype(
        [("n_fields", ">i2")] + [field for name, kind in layout for field in ((f"{name}_size", ">i4"), (name, kind))]
    )
    packed = np.empty(len(rows), dtype=row)
    packed["n_fields"] = len(layout)
    for name, kind in layout:
        packed[f"{name}_size"] = np.dtype(kind).itemsize
        packed[name] = rows[name].to_numpy()  # a batch's column without nulls: no copy
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
    stream = io.BufferedReader(_ChunksReader([header, packed.data.cast("B"), b"\xff\xff"]))  # no copy of the rows
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name, _ in layout)
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {quote(table)} ({columns}) FROM STDIN WITH (FORMAT binary)", stream, size=1 << 20)


class _ChunksReader(io.RawIOBase):
    """A readable stream over byte chunks, served without joining them into one copy."""

    def __init__(self, chunks: list) -> None:
        self.chunks = [memoryview(chunk) for chunk in chunks]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        while self.chunks and not len(self.chunks[0]):
            self.chunks.pop(0)
        if not self.chunks:
            return 0
        size = min(len(buffer), len(self.chunks[0]))
        buffer[:size] = self.chunks[0][:size]
        self.chunks[0] = self.chunks[0][size:]
        return size
