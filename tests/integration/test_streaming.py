"""The extract streams COPY into parquet row groups, and the load streams parquet batches into COPY."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from conftest import Databases
from test_workflow import COURSES

from workflow.core import dated_load
from workflow.errors import SourceDataError
from workflow.io import extract
from workflow.pipelines.courses import PIPELINE, demo, schemas, warehouse
from workflow.rules.ratings import RATED_AT

DAY = dt.date(2026, 11, 24)
CUT = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc)
AS_OF = {"timestamp_column": "rated_at", "before": CUT, "timestamp_as": RATED_AT}


@pytest.fixture
def many_ratings(clean: Databases) -> Databases:
    """A source of 30,000 ratings (about 1 MB of CSV), some stamped after the cut and some not at all."""
    courses, ratings = demo.demo_data(30_000, until=DAY)
    ratings["rated_at"] = ratings["rated_at"].astype(object)
    ratings.loc[ratings.index % 97 == 0, "rated_at"] = None
    ratings.loc[ratings.index % 101 == 0, "rated_at"] = pd.Timestamp(CUT)
    demo.replace_source_tables(clean.source, courses, ratings)
    return clean


def test_the_extract_streams_blocks_into_row_groups_with_the_rows_and_schema_of_the_whole_extract(
    many_ratings: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract, "BLOCK_SIZE", 64 << 10)  # the table is ~16 blocks
    path = tmp_path / "ratings.parquet"
    rows, as_of = extract.extract_table_to_parquet(many_ratings.source, "rating", schemas.RATING_SCHEMA, path, **AS_OF)
    written = pq.ParquetFile(path)
    assert as_of and written.metadata.num_row_groups > 5 and rows == written.metadata.num_rows
    expected = many_ratings.query(
        many_ratings.source,
        "SELECT user_id, course_id, rating, rated_at FROM rating WHERE rated_at < :cut OR rated_at IS NULL"
        " ORDER BY user_id, course_id",
        cut=CUT,
    )
    table = written.read().sort_by([("user_id", "ascending"), ("course_id", "ascending")])
    assert [tuple(row.values()) for row in table.to_pylist()] == expected
    assert 0 < table.column("rated_at").null_count < rows
    whole, _ = extract.extract_table(many_ratings.source, "rating", schemas.RATING_SCHEMA, **AS_OF)
    assert written.schema_arrow == whole.schema == table.schema  # rated_at: timestamp[us, tz=UTC]
    assert whole.sort_by([("user_id", "ascending"), ("course_id", "ascending")]).equals(table)


def test_a_bad_value_fails_the_extract_midway_naming_the_table_and_leaves_no_file_or_thread(
    clean: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean.query(
        clean.source,
        "DROP TABLE IF EXISTS typed; CREATE TABLE typed AS SELECT n AS id,"
        " CASE WHEN n = 20000 THEN 'x' ELSE n::text END AS value FROM generate_series(1, 1000000) n",
    )
    monkeypatch.setattr(extract, "BLOCK_SIZE", 64 << 10)
    monkeypatch.setitem(extract.ACCEPTED_SQL_TYPES, pa.int64(), (sa.Integer, sa.String))  # text read as numbers
    columns = pa.schema([("id", pa.int64()), ("value", pa.int64())])
    threads = threading.active_count()
    path = tmp_path / "typed.parquet"
    with pytest.raises(SourceDataError, match="source table 'typed' holds a value of the wrong type"):
        extract.extract_table_to_parquet(clean.source, "typed", columns, path)
    assert not path.exists() and threading.active_count() == threads
    clean.query(clean.source, "UPDATE typed SET value = '0' WHERE id = 20000")  # the COPY was cancelled, not left
    assert extract.extract_table_to_parquet(clean.source, "typed", columns, path) == (1_000_000, False)


def test_a_copy_failing_midway_raises_the_server_error_and_leaves_no_file_or_thread(
    clean: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean.query(
        clean.source,
        "DROP VIEW IF EXISTS failing; CREATE VIEW failing AS"
        " SELECT n::bigint AS id, (1 / (200000 - n))::bigint AS value FROM generate_series(1, 200000) n",
    )
    monkeypatch.setattr(extract, "BLOCK_SIZE", 64 << 10)
    columns = pa.schema([("id", pa.int64()), ("value", pa.int64())])
    threads = threading.active_count()
    path = tmp_path / "failing.parquet"
    failed = "source table 'failing' could not be read: division by zero$"  # the server's error, in one line
    with pytest.raises(SourceDataError, match=failed):
        extract.extract_table_to_parquet(clean.source, "failing", columns, path)
    with pytest.raises(SourceDataError, match=failed):
        extract.extract_table(clean.source, "failing", columns)
    assert not path.exists() and threading.active_count() == threads


def test_an_empty_extract_fails_as_before_and_leaves_no_file(clean: Databases, tmp_path: Path) -> None:
    demo.replace_source_tables(clean.source, COURSES, pd.DataFrame({"user_id": [1], "course_id": [1], "rating": [5]}))
    clean.query(clean.source, "TRUNCATE courses")
    path = tmp_path / "courses.parquet"
    with pytest.raises(SourceDataError, match="source table 'courses' has no rows; refusing"):
        extract.extract_table_to_parquet(clean.source, "courses", schemas.COURSES_SCHEMA, path)
    assert not path.exists()


def recommendations(users: range) -> pd.DataFrame:
    """Return three recommendations for each user, with ratings that need every bit of a float64."""
    user_id = [user for user in users for _ in range(3)]
    return pd.DataFrame(
        {
            "user_id": user_id,
            "course_id": [(user * 7 + rank) % 1_000 + 1 for user in users for rank in range(3)],
            "rating": [user / 3 + rank / 7 for user in users for rank in range(3)],
            "rank": [rank + 1 for _ in users for rank in range(3)],
        }
    )


def write_folder(folder: Path, parts: list[pd.DataFrame]) -> None:
    """Write a folder of part files the way Spark does, with its _SUCCESS and files that are not data."""
    folder.mkdir()
    for number, part in enumerate(parts):
        part.to_parquet(folder / f"part-{number:05}-0000.snappy.parquet", row_group_size=2_000)
    (folder / "_SUCCESS").touch()
    (folder / ".part-00000-0000.snappy.parquet.crc").write_bytes(b"not parquet")


def test_the_load_streams_a_folder_of_parts_in_batches_and_loads_exactly_its_rows(
    clean: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warehouse, "BATCH_ROWS", 1_000)
    parts = [recommendations(range(1, 2_001)), recommendations(range(2_001, 2_501))]  # 6,000 + 1,500 rows
    write_folder(tmp_path / "top.parquet", parts)
    assert warehouse.recommendation_rows(tmp_path / "top.parquet") == 7_500
    batches = list(warehouse.recommendation_batches(tmp_path / "top.parquet"))
    assert len(batches) == 8 and max(batch.num_rows for batch in batches) == 1_000
    courses = COURSES.head(3)
    assert warehouse.load_recommendations(clean.warehouse, DAY, tmp_path / "top.parquet", courses) == 7_500
    loaded = clean.warehouse_rows(
        "SELECT user_id, course_id, rating, rank FROM daily_recommendations WHERE recommendation_date = :d"
        " ORDER BY user_id, rank",
        d=DAY,
    )
    expected = pd.concat(parts).sort_values(["user_id", "rank"])
    assert loaded == list(expected.itertuples(index=False, name=None))
    assert clean.warehouse_rows("SELECT n_recommendations, n_users FROM recommendation_loads") == [(7_500, 2_500)]


def test_a_load_failing_after_some_batches_leaves_neither_rows_nor_marker(
    clean: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warehouse, "BATCH_ROWS", 1_000)
    broken = recommendations(range(3_001, 3_011)).astype({"rating": "float64"})
    broken.loc[5, "rating"] = None  # a null the warehouse's binary COPY cannot take
    write_folder(tmp_path / "good.parquet", [recommendations(range(1, 11))])
    write_folder(tmp_path / "top.parquet", [recommendations(range(1, 2_001)), broken])
    yesterday = DAY - dt.timedelta(days=1)
    assert warehouse.load_recommendations(clean.warehouse, yesterday, tmp_path / "good.parquet", COURSES.head(3)) == 30
    with pytest.raises(pa.ArrowInvalid):
        warehouse.load_recommendations(clean.warehouse, DAY, tmp_path / "top.parquet", COURSES.head(3))
    assert dated_load.loaded_dates(clean.warehouse, PIPELINE.marker, [yesterday, DAY], include_partial=True) == {
        yesterday
    }
    assert clean.warehouse_rows("SELECT recommendation_date, count(*) FROM daily_recommendations GROUP BY 1") == [
        (yesterday, 30)
    ]
