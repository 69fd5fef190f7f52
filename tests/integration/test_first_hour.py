"""A new user's first hour: plain URLs, failures that fail at once, killed runs, days not over, failures in status."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import luigi
import pandas as pd
import pytest
from conftest import REPO, Databases
from sqlalchemy.engine import make_url
from test_operations import stamped_ratings
from test_workflow import COURSES, DAY, EXPECTED, RATINGS, daily_rows

import workflow
from workflow import scheduler
from workflow.core import outputs
from workflow.errors import ConfigurationError
from workflow.io import postgres, urls
from workflow.pipelines.courses import demo

PASSWORD = "F1rst-h0ur-s3cret"
LUIGI = os.path.join(os.path.dirname(sys.executable), "luigi")


def run(*command: str, **environment: str) -> subprocess.CompletedProcess:
    """Run a command from the repository with extra environment variables; return its result, output as text."""
    return subprocess.run(
        command, cwd=REPO, env={**os.environ, **environment}, capture_output=True, text=True, timeout=300, check=False
    )


def luigi_run(date: dt.date = DAY, *extra: str, **environment: str) -> subprocess.CompletedProcess:
    """Run `luigi --module workflow RecommendationsTask` for a date, as a user does."""
    return run(LUIGI, "--module", "workflow", "RecommendationsTask", "--date", f"{date}", "--local-scheduler", *extra,
               **environment)  # fmt: skip


@pytest.fixture(scope="module")
def password_urls(databases: Databases) -> dict[str, str]:
    """Return the source and warehouse URLs of a role that logs in with a password over TCP."""
    if os.environ.get("SOURCE_DATABASE_URL"):  # the configured URLs already carry their passwords
        return {"source": databases.source, "warehouse": databases.warehouse}
    databases.query(
        databases.warehouse,
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'first_hour') THEN "
        f"CREATE ROLE first_hour LOGIN SUPERUSER PASSWORD '{PASSWORD}'; END IF; END $$",
    )
    return {
        name: make_url(url).set(username="first_hour", password=PASSWORD).render_as_string(hide_password=False)
        for name, url in (("source", databases.source), ("warehouse", databases.warehouse))
    }


def as_form(url: str, drivername: str) -> str:
    """Return the URL written with another driver name (`postgresql` is the case study's plain form)."""
    return make_url(url).set(drivername=drivername).render_as_string(hide_password=False)


# --- 1. the case study's connection URI ------------------------------------------------------


def test_every_postgresql_url_form_names_the_installed_driver() -> None:
    expected = "postgresql+psycopg2://user:pw@db.example:5432/app?sslmode=require"
    for form in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        assert urls.driver_url(f"{form}://user:pw@db.example:5432/app?sslmode=require") == expected
    assert urls.driver_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(ConfigurationError) as failure:
        urls.driver_url("user:s3cret@nowhere", "SOURCE_DATABASE_URL")
    assert str(failure.value).startswith("SOURCE_DATABASE_URL is not a database URL")
    assert "s3cret" not in str(failure.value)


@pytest.mark.parametrize("form", ["postgresql", "postgresql+psycopg2", "postgresql+psycopg"])
def test_the_graph_and_the_cli_run_with_each_url_form_and_a_password(
    clean: Databases, password_urls: dict[str, str], form: str
) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    urls = {
        "SOURCE_DATABASE_URL": as_form(password_urls["source"], form),
        "DWH_DATABASE_URL": as_form(password_urls["warehouse"], form),
    }
    result = luigi_run(DAY, **urls)
    assert result.returncode == 0, result.stderr
    assert daily_rows(clean) == EXPECTED
    titles = run(sys.executable, "-m", "workflow", "recommend", "--user-id", "10", "--threshold", "4.4", **urls)
    assert titles.returncode == 0, titles.stderr
    assert titles.stdout.splitlines() == ["5.000  C", "4.500  B", "4.500  H"]


def test_the_scheduler_records_task_history_through_a_plain_url(
    password_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = as_form(password_urls["warehouse"], "postgresql")
    monkeypatch.setenv("LUIGI_TASK_HISTORY_URL", plain)
    url = scheduler.task_history_url()
    assert make_url(url).drivername == "postgresql+psycopg2"
    with postgres.connect(url) as connection:
        assert connection.exec_driver_sql("SELECT current_user").scalar() == make_url(plain).username


# --- 2. failures that will not heal fail at once, in one line ---------------------------------


def assert_fails_at_once_in_one_line(result: subprocess.CompletedProcess, *expected: str) -> None:
    """Check a luigi run failed its task (exit 30) with the expected line, no traceback, no retry, no password."""
    output = result.stdout + result.stderr
    assert result.returncode == 30, output
    lines = [line for line in output.splitlines() if all(text in line for text in expected)]
    assert lines, f"no line holds {expected}:\n{output}"
    assert "Traceback" not in output
    assert "retry" not in output
    assert PASSWORD not in output and "wrong-pw" not in output


@pytest.mark.parametrize(
    ("failure", "change", "expected"),
    [
        ("wrong password", {"password": "wrong-pw"}, 'password authentication failed for user "{user}"'),
        ("unknown role", {"username": "nobody_here"}, 'password authentication failed for user "nobody_here"'),
        ("unknown database", {"database": "no_such_db"}, 'database "no_such_db" does not exist'),
        ("unknown host", {"host": "no-such-host.invalid"}, 'could not translate host name "no-such-host.invalid"'),
    ],
)
def test_a_connection_failure_that_will_not_heal_fails_the_task_at_once(
    clean: Databases, password_urls: dict[str, str], failure: str, change: dict[str, str], expected: str
) -> None:
    bad = make_url(password_urls["source"]).set(**change)
    result = luigi_run(DAY, SOURCE_DATABASE_URL=bad.render_as_string(hide_password=False))
    expected = expected.format(user=bad.username)
    assert_fails_at_once_in_one_line(result, expected, f"cannot connect to {bad.render_as_string()}")


def test_a_warehouse_that_refuses_the_password_fails_the_run_before_anything_is_computed(
    clean: Databases, password_urls: dict[str, str]
) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    bad = make_url(password_urls["warehouse"]).set(password="wrong-pw")
    result = luigi_run(DAY, DWH_DATABASE_URL=bad.render_as_string(hide_password=False))
    assert_fails_at_once_in_one_line(result, "password authentication failed", bad.render_as_string())
    assert not list((clean.output / f"{DAY}").glob("*.parquet"))  # nothing upstream ran


@pytest.mark.parametrize("missing", ["table", "column"])
def test_a_missing_table_or_column_fails_the_task_at_once_naming_it(clean: Databases, missing: str) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    if missing == "table":
        clean.query(clean.source, "DROP TABLE rating")
        expected = ("source table 'public.rating' does not exist in", urls.safe_url(clean.source))
    else:
        clean.query(clean.source, "ALTER TABLE courses DROP COLUMN programming_language")
        expected = ("source table 'public.courses' lacks column(s) programming_language",)
    assert_fails_at_once_in_one_line(luigi_run(DAY), *expected)


# --- 7. a killed run leaves nothing behind ---------------------------------------------------


def leave_temporaries(date: dt.date) -> list[Path]:
    """Write the temporary files a run killed mid-write leaves (luigi's, a quarantine's, a run record's)."""
    folder = outputs.date_dir(date)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    paths = [
        folder / "extracted_ratings.parquet-luigi-tmp-012345678",
        folder / ".quarantined_ratings.parquet.tmp-4242",
        folder / "runs" / ".valid_ratings.json.tmp-4242",
    ]
    for path in paths:
        path.write_bytes(b"half a file")
    return paths


def test_the_next_run_of_a_date_removes_the_temporary_files_a_killed_run_left(clean: Databases) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    left = leave_temporaries(DAY)
    result = luigi_run(DAY)
    assert result.returncode == 0, result.stderr
    assert [path for path in left if path.exists()] == []
    assert outputs.stale_temporaries(outputs.date_dir(DAY)) == []
    assert daily_rows(clean) == EXPECTED


def test_temporary_files_of_a_run_still_alive_are_kept_and_invalidate_waits_for_it(clean: Databases) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    # Another run of the date, alive: it holds the date as every task does, and is writing files.
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys, datetime; from workflow.core import outputs; "
         f"outputs.use(datetime.date.fromisoformat('{DAY}')); print('held', flush=True); sys.stdin.read()"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        left = leave_temporaries(DAY)
        result = luigi_run(DAY)
        assert result.returncode == 0, result.stderr
        assert all(path.exists() for path in left)  # they may be the live run's
        refused = run(sys.executable, "-m", "workflow", "invalidate", "--date", f"{DAY}")
        assert refused.returncode == 1
        assert refused.stderr.strip() == f"error: a run of {DAY} is using {outputs.date_dir(DAY)}; " + (
            "try again once it has finished"
        )
        assert (outputs.date_dir(DAY) / "top_recommendations.parquet").exists()
    finally:
        holder.communicate("")
    removed = run(sys.executable, "-m", "workflow", "invalidate", "--date", f"{DAY}")
    assert removed.returncode == 0, removed.stderr
    assert not outputs.date_dir(DAY).exists()


# --- 8. a day is computed once it is over ----------------------------------------------------


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def test_a_day_not_over_is_refused_with_when_it_can_run(clean: Databases) -> None:
    today = today_utc()
    ratings = stamped_ratings().assign(rated_at=pd.Timestamp(today, tz="UTC"))
    demo.replace_source_tables(clean.source, COURSES, ratings)
    result = luigi_run(today)
    assert_fails_at_once_in_one_line(
        result,
        f"{today} is not over yet (UTC): its ratings are complete at {today + dt.timedelta(days=1)} 00:00 UTC",
        "--partial-day",
    )
    assert clean.warehouse_rows("SELECT to_regclass('recommendation_loads')") == [(None,)]  # nothing loaded

    partial = luigi_run(today, "--partial-day")
    assert partial.returncode == 0, partial.stderr
    assert clean.warehouse_rows("SELECT recommendation_date, partial FROM recommendation_loads") == [(today, True)]
    assert (outputs.date_dir(today) / "partial" / "top_recommendations.parquet").exists()
    assert not (outputs.date_dir(today) / "top_recommendations.parquet").exists()
    status = run(sys.executable, "-m", "workflow", "status", "--date", f"{today}")
    assert f"warehouse: {today} courses loaded as a partial day" in status.stdout


def test_a_source_without_timestamps_may_run_today(clean: Databases) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    result = luigi_run(today_utc())
    assert result.returncode == 0, result.stderr
    assert daily_rows(clean, today_utc()) == EXPECTED


def test_the_first_whole_day_run_recomputes_a_partial_days_load(clean: Databases) -> None:
    day = dt.date(2026, 11, 2)
    ratings = stamped_ratings()
    demo.replace_source_tables(clean.source, COURSES, ratings[ratings["rated_at"] < pd.Timestamp(day, tz="UTC")])
    partial = workflow.RecommendationsTask(date=day, partial_day=True)
    assert luigi.build([partial], local_scheduler=True)
    partial_rows = daily_rows(clean, day)
    assert not workflow.RecommendationsTask(date=day).complete()  # a partial load does not complete the day

    demo.replace_source_tables(clean.source, COURSES, ratings)  # the rest of the day's ratings arrive
    assert luigi.build([workflow.RecommendationsTask(date=day)], local_scheduler=True)
    whole_rows = daily_rows(clean, day)
    assert whole_rows != partial_rows
    assert clean.warehouse_rows("SELECT recommendation_date, partial FROM recommendation_loads") == [(day, False)]
    assert partial.complete() and workflow.RecommendationsTask(date=day).complete()
    assert luigi.build([workflow.RecommendationsTask(date=day)], local_scheduler=True, detailed_summary=True)
    assert daily_rows(clean, day) == whole_rows


# --- 9. failures show in status ----------------------------------------------------------------


def test_a_failed_task_leaves_a_run_record_that_status_shows(clean: Databases) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    clean.query(clean.source, "DROP TABLE rating")
    assert luigi_run(DAY).returncode == 30
    record = json.loads((outputs.date_dir(DAY) / "runs" / "extracted_ratings.failed.json").read_text())
    assert record["status"] == "failed" and record["task"] == "ExtractedRatings" and record["date"] == f"{DAY}"
    assert record["error"] == (
        f"SourceDataError: source table 'public.rating' does not exist in {urls.safe_url(clean.source)}"
    )
    assert record["duration_s"] >= 0

    status = run(sys.executable, "-m", "workflow", "status", "--date", f"{DAY}")
    lines = status.stdout.splitlines()
    assert any(line.startswith("ExtractedRatings") and " failed " in line and record["error"] in line for line in lines)
    assert any(line.startswith("ExtractedCourses") and " done " in line for line in lines)
    assert lines[-2:] == [f"warehouse: {DAY} courses not loaded", f"warehouse: {DAY} films not loaded"]
