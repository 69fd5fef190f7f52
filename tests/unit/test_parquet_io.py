"""Frames read and written one row group at a time: the same frames as Arrow's whole-table conversion gives."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workflow.engines.pandas_engine import PandasEngine
from workflow.io import files, parquet

UTC = dt.timezone.utc
BIG = 2**60 + 1  # not a float64: exact only as an int64
STAMPS = ["2026-11-24T10:00:00", None, "2026-11-24T23:59:59.999999", None, "2020-01-01T00:00:00"]


def test_a_frame_written_in_row_groups_reads_back_equal_with_its_dtypes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 2)
    frame = pd.DataFrame(
        {
            "user_id": [BIG, 2, 3, 4, 5],
            "rating": [4.5, np.nan, 1.0, 0.5, 5.0],
            "language": ["sql", None, "R", "", "python"],
            "rated_at": pd.to_datetime(STAMPS, utc=True, format="ISO8601").as_unit("us"),
        }
    )
    path = tmp_path / "frame.parquet"
    parquet.write_frame(frame, path)
    assert pq.read_metadata(path).num_row_groups == 3
    read = parquet.read_frame(path)
    pd.testing.assert_frame_equal(read, frame, check_exact=True)
    assert read["user_id"].iloc[0] == BIG and str(read["rated_at"].dtype) == "datetime64[us, UTC]"
    assert list(read.columns) == ["user_id", "rating", "language", "rated_at"]


def test_int64_nulls_make_every_int64_column_nullable_and_exact(tmp_path: Path) -> None:
    path = tmp_path / "ids.parquet"
    table = pa.table({"user_id": pa.array([BIG, None, 3], pa.int64()), "course_id": [7, 8, 9], "n": [1.0, 2.0, 3.0]})
    pq.write_table(table, path, row_group_size=2)
    read = parquet.read_frame(path)
    assert read["user_id"].dtype == "Int64" and read["course_id"].dtype == "Int64" and read["n"].dtype == "float64"
    assert read["user_id"].tolist() == [BIG, pd.NA, 3] and read["course_id"].tolist() == [7, 8, 9]
    assert parquet.read_frame(path, ["course_id"])["course_id"].dtype == "int64"  # no nulls among those read


def test_a_folder_of_parts_reads_as_one_frame_in_part_order_and_an_empty_file_keeps_its_columns(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "target.parquet"
    folder.mkdir()
    pq.write_table(pa.table({"user_id": [1, 2], "course_id": [10, 20]}), folder / "part-00000.parquet")
    pq.write_table(pa.table({"user_id": [3], "course_id": [30]}), folder / "part-00001.parquet")
    (folder / files.SUCCESS).touch()
    expected = pd.DataFrame({"course_id": [10, 20, 30]})
    pd.testing.assert_frame_equal(parquet.read_frame(folder, ["course_id"]), expected)
    empty = tmp_path / "empty.parquet"
    parquet.write_frame(
        pd.DataFrame({"user_id": pd.Series([], dtype="int64"), "title": pd.Series([], dtype="str")}), empty
    )
    read = parquet.read_frame(empty)
    assert len(read) == 0 and list(read.columns) == ["user_id", "title"] and read["user_id"].dtype == "int64"


TYPED = pa.schema(
    [
        ("film_id", pa.int32()),
        ("rental_rate", pa.decimal128(4, 2)),
        ("special_features", pa.list_(pa.string())),
        ("actor_ids", pa.list_(pa.int64())),
    ]
)
TYPED_ROWS = {
    "film_id": [1, 2, 2**31 - 1],
    "rental_rate": [Decimal("0.99"), None, Decimal("99.99")],
    "special_features": [["Trailers", "Deleted Scenes"], [], None],
    "actor_ids": [[BIG, 2], None, []],
}


def test_a_frame_written_with_a_schema_has_exactly_its_types_and_values_in_every_row_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 2)
    frame = pd.DataFrame({**TYPED_ROWS, "film_id": pd.Series(TYPED_ROWS["film_id"], dtype="int64")})
    path = tmp_path / "films.parquet"
    parquet.write_frame(frame, path, schema=TYPED)
    assert pq.read_metadata(path).num_row_groups == 2
    read = pq.read_table(path)
    assert read.schema.equals(TYPED) and read.to_pydict() == TYPED_ROWS


def test_the_pandas_engine_writes_frames_and_arrow_tables_in_a_schema_and_keeps_an_empty_frames_types(
    tmp_path: Path,
) -> None:
    engine = PandasEngine()
    engine.write(
        pa.table({"actor_ids": TYPED_ROWS["actor_ids"], **TYPED_ROWS}), tmp_path / "table.parquet", schema=TYPED
    )
    assert pq.read_table(tmp_path / "table.parquet").to_pydict() == TYPED_ROWS  # columns taken in the schema's order
    engine.write(pd.DataFrame({name: [] for name in TYPED.names}), tmp_path / "empty.parquet", schema=TYPED)
    empty = pq.read_table(tmp_path / "empty.parquet")
    assert empty.schema.equals(TYPED) and empty.num_rows == 0
    with pytest.raises(pa.ArrowInvalid):  # a value its type cannot hold is refused, never truncated
        engine.write(pd.DataFrame({"film_id": [2**31]}), tmp_path / "big.parquet", schema=pa.schema([TYPED[0]]))
    assert not list(tmp_path.glob("*big*"))
