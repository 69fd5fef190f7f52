"""End to end through Luigi and the real PostgreSQL: what counts as rated, re-rated pairs, rows without a stamp."""

from __future__ import annotations

import datetime as dt
import json

import luigi
import pandas as pd
import pyarrow as pa
import pytest
from conftest import Databases, frame

import workflow
from workflow.io import extract
from workflow.pipelines.courses import demo, schemas

DAY = dt.date(2026, 11, 20)
T = pd.Timestamp("2026-11-19 12:00", tz="UTC")
COURSES = frame(
    [(1, "A", "a", "python"), (2, "B", "b", "python"), (3, "C", "c", "python"), (4, "D", "d", "python"),
     (5, "E", "e", "r"), (6, "F", "f", "r")],
    "course_id title description programming_language",
)  # fmt: skip
RATINGS = frame(
    [
        (10, 1, 5, T),
        (10, 2, 9, T),  # out of range: course 2 is rated by user 10 all the same
        (11, 3, 1, T - pd.Timedelta(days=1)),  # superseded by the next row
        (11, 3, 5, T),  # user 11's rating of course 3
        (11, 5, 2, T),
        (12, 4, 4, None),  # no stamp: set aside, and course 4 is rated by user 12
        (12, 1, 3, T),
        (20, 2, 4, T), (20, 4, 3, T), (21, 6, 4, T), (21, 2, 5, T),
        (13, 4, 1, T + pd.Timedelta(days=3)),  # after the day: not in its extract
    ],
    "user_id course_id rating rated_at",
)  # fmt: skip
# averages: 1 -> 4.0, 2 -> 4.5, 3 -> 5.0 (the latest rating, not 3.0), 4 -> 3.0, 5 -> 2.0, 6 -> 4.0
EXPECTED = [
    (10, 3, 5.0, 1), (10, 4, 3.0, 2),  # not course 2 (4.5): rated with an invalid rating
    (11, 2, 4.5, 1), (11, 1, 4.0, 2), (11, 6, 4.0, 3),  # python and r tie
    (12, 3, 5.0, 1), (12, 2, 4.5, 2),  # not course 4: rated in a row without a stamp
    (20, 3, 5.0, 1), (20, 1, 4.0, 2),
    (21, 3, 5.0, 1), (21, 1, 4.0, 2), (21, 4, 3.0, 3),
]  # fmt: skip


def test_rated_means_any_row_and_the_latest_copy_of_a_re_rated_pair_is_the_rating(
    clean: Databases, luigi_setting
) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS)
    # 2 invalid rows of 11 (18%) pass; counting the superseded one (27%) would not.
    luigi_setting("rules", "max_invalid_share", 0.2)
    result = luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True, detailed_summary=True)
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text

    rows = clean.warehouse_rows(
        "SELECT user_id, course_id, rating, rank FROM daily_recommendations"
        " WHERE recommendation_date = :date ORDER BY user_id, rank",
        date=DAY,
    )
    assert rows == EXPECTED
    quarantined = pd.read_parquet(clean.output / f"{DAY}" / "quarantined_ratings.parquet")
    assert [
        (row.user_id, row.course_id, row.rating, None if pd.isna(row.rated_at) else row.rated_at, row.reason)
        for row in quarantined.sort_values(["user_id", "course_id"]).itertuples()
    ] == [
        (10, 2, 9.0, T, "rating_out_of_range"),
        (11, 3, 1.0, T - pd.Timedelta(days=1), "superseded"),
        (12, 4, 4.0, None, "missing_timestamp"),
    ]
    record = json.loads((clean.output / f"{DAY}" / "runs" / "valid_ratings.json").read_text())
    assert record["set_aside"] == {
        "missing_value": 0, "unknown_course": 0, "rating_out_of_range": 1, "duplicate_pair": 0,
        "missing_timestamp": 1, "superseded": 1,
    }  # fmt: skip
    assert record["rows_in"] == 11 + len(COURSES)  # the row stamped after the day is not in the extract


@pytest.mark.parametrize("sql_type", ["timestamptz", "timestamp", "date"])
def test_the_extract_reads_the_stamp_as_utc_and_keeps_rows_without_one(clean: Databases, sql_type: str) -> None:
    clean.query(
        clean.source,
        f"CREATE TABLE rating (user_id bigint, course_id bigint, rating float8, stamped {sql_type});"
        " INSERT INTO rating VALUES (1, 1, 4, '2026-11-19 22:30:00.123456+05'), (2, 1, 4, NULL),"
        " (3, 1, 4, '2026-11-21 00:00:00+00'), (4, 1, 4, '2026-11-20 23:59:59.999999+00')",
    )
    end_of_day = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
    table, as_of = extract.extract_table(
        clean.source,
        "rating",
        schemas.RATING_SCHEMA,
        timestamp_column="stamped",
        before=end_of_day,
        timestamp_as="rated_at",
    )
    assert as_of
    assert table.schema.field("rated_at").type == pa.timestamp("us", tz="UTC")
    stamps = dict(zip(table.column("user_id").to_pylist(), table.column("rated_at").to_pylist(), strict=True))
    utc = dt.timezone.utc
    expected = {
        # timestamptz keeps the instant; a timestamp without time zone, or a date, counts as UTC
        "timestamptz": {1: dt.datetime(2026, 11, 19, 17, 30, 0, 123456, utc),
                        4: dt.datetime(2026, 11, 20, 23, 59, 59, 999999, utc)},
        "timestamp": {1: dt.datetime(2026, 11, 19, 22, 30, 0, 123456, utc),
                      4: dt.datetime(2026, 11, 20, 23, 59, 59, 999999, utc)},
        "date": {1: dt.datetime(2026, 11, 19, tzinfo=utc), 4: dt.datetime(2026, 11, 20, tzinfo=utc)},
    }[sql_type]  # fmt: skip
    assert stamps == {**expected, 2: None}  # user 3's row is stamped at the end of the day: not in it
