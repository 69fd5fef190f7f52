"""Retention's window (the dates `python -m workflow retain --keep-days N` keeps; 0: off) and its lines."""

from __future__ import annotations

import datetime as dt

import pytest

from workflow import retention
from workflow.errors import ConfigurationError

TODAY = dt.date(2026, 12, 4)


def kept(today: dt.date, keep_days: int, dates: list[dt.date]) -> list[dt.date]:
    """Return those of the dates retention keeps (all of them when it is off)."""
    first = retention.window(today, keep_days)
    return [date for date in dates if first is None or date >= first]


def test_keeping_3_days_on_december_4_keeps_the_1st_to_the_3rd_and_removes_the_30th_and_before() -> None:
    assert retention.window(TODAY, 3) == dt.date(2026, 12, 1)
    dates = [dt.date(2026, 11, 25) + dt.timedelta(days=offset) for offset in range(9)]  # 11-25 to 12-03
    assert kept(TODAY, 3, dates) == [dt.date(2026, 12, 1), dt.date(2026, 12, 2), dt.date(2026, 12, 3)]


def test_keeping_one_day_keeps_yesterday_only_and_the_window_crosses_years() -> None:
    assert retention.window(dt.date(2027, 1, 1), 1) == dt.date(2026, 12, 31)
    assert retention.window(dt.date(2027, 1, 2), 3) == dt.date(2026, 12, 30)


def test_keep_0_is_off_and_removes_nothing_without_asking_any_database() -> None:
    assert retention.window(TODAY, 0) is None
    assert kept(TODAY, 0, [dt.date(2000, 1, 1), TODAY]) == [dt.date(2000, 1, 1), TODAY]
    lines = list(retention.retain(0, today=TODAY))
    assert lines == ["retention is off ([retention] keep_days is 0 and no --keep-days): nothing removed"]
    assert list(retention.retain(today=TODAY)) == lines  # [retention] keep_days defaults to 0


def test_a_negative_number_of_days_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="keep_days must be 0"):
        retention.window(TODAY, -1)


def test_a_dates_line_and_the_total_name_every_pipeline_and_what_it_had() -> None:
    first = retention.Removed(rows={"courses": 2_201, "films": None, "third": None}, undeclared={"third"}, runs=8,
                              luigid_tasks=9, files=20, bytes=150_000)  # fmt: skip
    second = retention.Removed(rows={"courses": 10, "films": 1_000, "third": None}, undeclared={"third"}, files=1)
    assert first.line() == (
        "courses 2,201 rows, films not loaded, third rows kept (it declares no remove_date); 8 run(s) of the run "
        "history; 9 luigid task(s); 20 file(s), 150,000 bytes"
    )
    total = retention.Removed()
    total.add(first)
    total.add(second)
    assert total.line() == (
        "courses 2,211 rows, films 1,000 rows, third rows kept (it declares no remove_date); 8 run(s) of the run "
        "history; 9 luigid task(s); 21 file(s), 150,000 bytes"
    )
