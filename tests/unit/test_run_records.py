"""What a run record becomes: the history's row, the load row's figures, and errors without passwords."""

from __future__ import annotations

import datetime as dt
import json

from workflow.core import history
from workflow.core.dated_load import LoadFigures, figures_of
from workflow.io.urls import hide_locations, mask_passwords

RECORD = {
    "task": "ValidRatings", "date": "2026-11-10", "status": "done", "started_at": "2026-12-04T18:10:16.100+00:00",
    "finished_at": "2026-12-04T18:10:16.500+00:00", "duration_s": 0.4, "partial_day": True, "pipeline": "courses",
    "engine": "pandas", "run_id": "7d4f1c2e-0000-4000-8000-000000000001", "host": "etl-1", "rows_in": 14,
    "rows_out": 11, "set_aside": {"unknown_course": 1, "superseded": 2}, "invalid_rows": 1, "invalid_share": 0.071429,
    "source": "snapshot taken 2026-12-04 18:10:16 UTC",
}  # fmt: skip


def test_a_run_record_becomes_a_history_row_its_other_facts_kept_as_details() -> None:
    row = history.row(RECORD, from_file=True)
    assert row == {
        "run_id": "7d4f1c2e-0000-4000-8000-000000000001", "pipeline": "courses", "task": "ValidRatings",
        "engine": "pandas", "started_at": "2026-12-04T18:10:16.100+00:00",
        "finished_at": "2026-12-04T18:10:16.500+00:00", "duration_s": 0.4, "status": "done", "rows_in": 14,
        "rows_out": 11, "set_aside": '{"unknown_course": 1, "superseded": 2}', "invalid_rows": 1,
        "invalid_share": 0.071429, "error": None, "host": "etl-1", "run_date": dt.date(2026, 11, 10), "partial": True,
        "details": json.dumps({"source": "snapshot taken 2026-12-04 18:10:16 UTC"}), "from_file": True,
    }  # fmt: skip


def test_a_dates_figures_sum_its_steps_invalid_rows_and_seconds_and_keep_the_largest_share() -> None:
    steps = [
        {"task": "ExtractedRatings", "duration_s": 1.5},
        {"task": "CleanedCourses", "duration_s": 0.25, "invalid_rows": 2, "invalid_share": 0.02},
        {"task": "ValidRatings", "duration_s": 0.75, "invalid_rows": 5, "invalid_share": 0.005},
    ]
    assert figures_of(steps, load_seconds=0.5, run_id="r") == LoadFigures(7, 0.02, 3.0, "r")
    assert figures_of(steps[:1], load_seconds=0.0, run_id=None) == LoadFigures(None, None, 1.5, None)


def test_passwords_in_error_messages_are_masked() -> None:
    assert mask_passwords("cannot connect to postgresql://etl:s3cret@db:5432/dwh (refused)") == (
        "cannot connect to postgresql://etl:***@db:5432/dwh (refused)"
    )
    assert mask_passwords("http://collector:8080/api and postgresql+psycopg2://u@h/d") == (
        "http://collector:8080/api and postgresql+psycopg2://u@h/d"
    )


def test_where_a_database_is_is_hidden_from_what_the_server_shows() -> None:
    assert hide_locations("table 'rating' does not exist in postgresql+psycopg2://etl:***@db.internal:5432/app") == (
        "table 'rating' does not exist in postgresql+psycopg2://***/app"
    )
    assert hide_locations("'postgres://u@h' and http://collector:8080/api/v1 (refused)") == (
        "'postgres://***' and http://***/api/v1 (refused)"
    )
    assert hide_locations("no URL: a/b 10:30") == "no URL: a/b 10:30"
