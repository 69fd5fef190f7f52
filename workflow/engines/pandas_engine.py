"""The pandas engine: each step's frames in this process, read from and written to single parquet files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from workflow.io import extract, memory, parquet, typed_extract
from workflow.io.files import temporary_name


class PandasEngine:
    """Frames are pandas DataFrames; targets are parquet files written through a temporary name."""

    name = "pandas"

    def check(self) -> None:
        """Return: pandas needs nothing beyond the package's own dependencies."""

    def read(self, path: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Return a parquet file (or folder) as a frame, its ids exact."""
        return parquet.read_frame(path, columns)

    def write(
        self,
        frame: pd.DataFrame | pa.Table,
        path: str,
        task: object = None,
        *,
        replace: bool = False,
        schema: pa.Schema | None = None,
    ) -> None:
        """Write a frame to a parquet file atomically, in `schema`'s Arrow types when given; when a concurrent run
        wrote it first, keep that one (unless `replace`)."""
        if isinstance(frame, pd.DataFrame):
            parquet.write_frame(frame, path, replace=replace, schema=schema)
        else:
            parquet.write_target(
                frame if schema is None else frame.select(schema.names).cast(schema), path, replace=replace
            )

    def extract(
        self, url: str, table: str, columns: pa.Schema | None, path: str, task: object = None, **options: object
    ) -> bool:
        """Stream a source table's columns into a parquet file with COPY (extract.extract_table_to_parquet's options),
        or, when `columns` is None, every column in its exact Arrow type (a snapshot); return whether it was read as
        of a time."""
        path = Path(path)
        if columns is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            whole = typed_extract.extract_whole_table(url, table, schema=options.get("schema"))
            parquet.write_target(whole, path)
            return False
        temporary = temporary_name(path)
        _, as_of = extract.extract_table_to_parquet(url, table, columns, temporary, **options)
        parquet.publish(temporary, path)
        return as_of

    def release(self) -> None:
        """Hand the memory freed by a step back to the system (Arrow's pool keeps it otherwise), so that a
        worker running step after step peaks at its largest step, not above it."""
        memory.give_back()

    def reason_counts(self, path: str) -> tuple[dict[str, int], list[dict]]:
        """Return a quarantine file's rows per reason, and its first row for each reason."""
        quarantined = parquet.read_frame(path)
        counts = quarantined["reason"].value_counts(sort=False)
        examples = quarantined.groupby("reason", sort=True).head(1).to_dict("records")
        return {str(reason): int(count) for reason, count in counts.items()}, examples


ENGINE = PandasEngine()
