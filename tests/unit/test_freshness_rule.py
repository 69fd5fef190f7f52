"""The freshness rule: which date is due by when, and fresh, late or failed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from workflow.errors import ConfigurationError
from workflow.freshness import Failure, assess, due_date, expected_by, readable_age

UTC = dt.timezone.utc
BY = dt.time(3, 0)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_yesterday_is_due_once_todays_expected_time_has_passed() -> None:
    assert due_date(at("2026-12-04 02:59:59"), BY) == dt.date(2026, 12, 2)
    assert due_date(at("2026-12-04 03:00:00"), BY) == dt.date(2026, 12, 3)
    assert due_date(at("2026-12-04 23:59:59"), dt.time(23, 30)) == dt.date(2026, 12, 3)


def test_fresh_when_the_due_date_is_loaded_with_its_own_load_time_and_age() -> None:
    found = assess("courses", newest_date=dt.date(2026, 12, 3), loaded_at=at("2026-12-04 02:31:00"), failures=[],
                   now=at("2026-12-04 09:31:00"), expected_by=BY)  # fmt: skip
    assert found.as_dict() == {
        "pipeline": "courses", "state": "fresh", "newest_date": "2026-12-03",
        "loaded_at": "2026-12-04T02:31:00+00:00", "age_s": 25200.0, "due_date": "2026-12-03", "expected_by": "03:00",
        "detail": "newest loaded 2026-12-03 (loaded 2026-12-04 02:31 UTC)",
    }  # fmt: skip
    # Before 03:00 the day before yesterday is enough.
    early = assess("courses", newest_date=dt.date(2026, 12, 2), loaded_at=at("2026-12-03 02:40:00"), failures=[],
                   now=at("2026-12-04 02:50:00"), expected_by=BY)  # fmt: skip
    assert early.state == "fresh" and early.fresh


def test_late_when_the_due_date_is_not_loaded() -> None:
    found = assess("films", newest_date=dt.date(2026, 12, 2), loaded_at=at("2026-12-03 02:40:00"), failures=[],
                   now=at("2026-12-04 03:05:00"), expected_by=BY)  # fmt: skip
    assert (found.state, found.detail) == (
        "late",
        "2026-12-03 was due by 2026-12-04 03:00 UTC; newest loaded 2026-12-02 (loaded 2026-12-03 02:40 UTC)",
    )
    never = assess("films", newest_date=None, loaded_at=None, failures=[], now=at("2026-12-04 03:05:00"))
    assert (never.state, never.age_s, never.detail) == (
        "late",
        None,
        "2026-12-03 was due by 2026-12-04 03:00 UTC; nothing loaded yet",
    )


def test_failed_when_a_run_of_a_date_newer_than_the_newest_load_failed_even_before_it_is_due() -> None:
    failures = [
        Failure(dt.date(2026, 12, 1), "ExtractedRatings", "old, loaded since", at("2026-12-02 02:31:00")),
        Failure(dt.date(2026, 12, 3), "ExtractedRatings", "SourceDataError: no table", at("2026-12-04 02:31:00")),
        Failure(dt.date(2026, 12, 3), "ValidRatings", "InvalidSourceDataError: too many", at("2026-12-04 02:41:00")),
    ]
    found = assess("courses", newest_date=dt.date(2026, 12, 2), loaded_at=at("2026-12-03 02:40:00"),
                   failures=failures, now=at("2026-12-04 02:45:00"), expected_by=BY)  # fmt: skip
    assert (found.state, found.fresh, found.detail) == (
        "failed", False,
        "2026-12-03 failed in ValidRatings: InvalidSourceDataError: too many; newest loaded 2026-12-02 "
        "(loaded 2026-12-03 02:40 UTC)",
    )  # fmt: skip
    loaded_since = assess("courses", newest_date=dt.date(2026, 12, 3), loaded_at=at("2026-12-04 02:50:00"),
                          failures=failures, now=at("2026-12-04 03:10:00"), expected_by=BY)  # fmt: skip
    assert loaded_since.state == "fresh"


def test_expected_times_come_from_freshness_per_pipeline_or_its_default(tmp_path: Path) -> None:
    config = tmp_path / "luigi.cfg"
    config.write_text("[freshness]\nexpected_by = 04:30\nfilms_expected_by = 06:00\n")
    assert expected_by(["courses", "films"], [config]) == {"courses": dt.time(4, 30), "films": dt.time(6, 0)}
    assert expected_by(["courses"], [tmp_path / "absent.cfg"]) == {"courses": dt.time(3, 0)}
    config.write_text("[freshness]\nexpected_by = 3 am\n")
    with pytest.raises(ConfigurationError, match=r"\[freshness\] expected_by is '3 am', not a UTC time of day"):
        expected_by(["courses"], [config])


def test_ages_read_in_their_unit() -> None:
    assert [readable_age(s) for s in (42, 1020, 19080, 181440)] == ["42 s", "17 min", "5.3 h", "2.1 d"]
