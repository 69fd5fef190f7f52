"""The server's contract and its operations endpoints on a warehouse of both pipelines with a run history: freshness
after a backfill and after a failure, the states and figures of /api/runs, and Schemathesis with all its checks."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import luigi
import pytest
from conftest import REPO, Databases, empty
from test_server import Server, free_port, start_server
from test_workflow import COURSES, RATINGS

from workflow.daily import DailyPipelines
from workflow.databases import url_of
from workflow.freshness import due_date
from workflow.pipelines import films
from workflow.pipelines.courses import demo
from workflow.pipelines.films import demo as film_demo

NOW = dt.datetime.now(dt.timezone.utc)
YESTERDAY = NOW.date() - dt.timedelta(days=1)
BACKFILLED = [YESTERDAY - dt.timedelta(days=n) for n in (3, 2)]  # loaded after yesterday
FAILED = YESTERDAY - dt.timedelta(days=4)  # the course pipeline's run fails (its source table is gone)
PARTIAL = YESTERDAY - dt.timedelta(days=5)  # both pipelines loaded a partial day
EXPECTED_BY = dt.time(3, 0)  # luigi.cfg's [freshness] expected_by
# The run history's last run of each task of a pipeline's whole-day date, and how many runs the date had.
LAST_RUNS = """
SELECT DISTINCT ON (task) task, status, engine, set_aside, run_id::text, count(*) OVER ()
FROM workflow.task_runs WHERE pipeline = :pipeline AND run_date = :date AND partial = :partial
ORDER BY task, finished_at DESC
"""


def build(*tasks: luigi.Task) -> bool:
    """Run the tasks with luigi's local scheduler and return whether all succeeded."""
    return luigi.build(list(tasks), local_scheduler=True, workers=2)


@pytest.fixture(scope="module")
def server(databases: Databases) -> Iterator[Server]:
    """Load both pipelines' dates (yesterday, then a backfill of older dates, a partial day, a failure), and serve."""
    empty(databases)
    databases.query(databases.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    demo.replace_source_tables(databases.source, COURSES, RATINGS.astype("Int64"))
    film_demo.replace_film_tables(url_of(films.PIPELINE.source), 2_000, until=YESTERDAY, seed=5)
    assert build(DailyPipelines(date=YESTERDAY))
    assert build(*(DailyPipelines(date=date) for date in BACKFILLED))
    assert build(DailyPipelines(date=PARTIAL, partial_day=True))
    databases.query(databases.source, "ALTER TABLE rating RENAME TO rating_away")
    assert not build(DailyPipelines(date=FAILED))
    databases.query(databases.source, "ALTER TABLE rating_away RENAME TO rating")
    port = free_port()
    log = databases.output / f"server-{port}.log"
    process = start_server(log, port, ["-m", "workflow", "serve", "--port", str(port)])
    try:
        yield Server(f"http://127.0.0.1:{port}", log, databases)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if not os.environ.get("SERVER_DATABASE_URL"):  # leave the server's roles as they were
            databases.query(
                databases.warehouse, "DROP OWNED BY recommendations_reader; DROP ROLE recommendations_reader"
            )


def own_load(databases: Databases, date: dt.date) -> dict:
    """Return the course recommendations' load row of the date."""
    [(row,)] = databases.warehouse_rows(
        "SELECT to_jsonb(loads) FROM recommendation_loads AS loads WHERE recommendation_date = :date", date=date
    )
    return row


def test_after_a_backfill_of_older_dates_freshness_and_healthz_report_the_newest_dates_own_load(server: Server) -> None:
    loaded_at = dt.datetime.fromisoformat(own_load(server.databases, YESTERDAY)["loaded_at"])
    [(backfilled_at,)] = server.databases.warehouse_rows("SELECT max(loaded_at) FROM recommendation_loads")
    assert backfilled_at > loaded_at  # the backfill committed later than the newest date's own load

    status, body, _ = server.get("/api/freshness")
    assert status == 200 and body["fresh"] is True, body
    courses, film = body["pipelines"]
    assert (courses["pipeline"], courses["state"], courses["newest_date"]) == ("courses", "fresh", f"{YESTERDAY}")
    assert dt.datetime.fromisoformat(courses["loaded_at"]) == loaded_at
    assert courses["expected_by"] == "03:00" and courses["due_date"] == f"{due_date(NOW, EXPECTED_BY)}"
    assert (film["pipeline"], film["state"], film["newest_date"]) == ("films", "fresh", f"{YESTERDAY}")
    assert 0 <= courses["age_s"] < 3600 and dt.datetime.fromisoformat(body["checked_at"]) >= NOW

    status, health, headers = server.get("/healthz")
    assert status == 200 and health["status"] == "ok" and health["fresh"] is True
    assert [p["state"] for p in health["pipelines"]] == ["fresh", "fresh"]
    assert health["newest_date"] == f"{YESTERDAY}" and health["loads"] == 4  # with the partial day
    assert dt.datetime.fromisoformat(health["newest_loaded_at"]) == loaded_at
    assert "recommendations_reader" not in json.dumps(health) + json.dumps(headers)  # no role, host or port


def figures(databases: Databases, pipeline: str, date: dt.date, partial: bool = False) -> dict:
    """Return what /api/runs should say of a loaded date, from the run history's last run of each task."""
    runs = databases.warehouse_rows(LAST_RUNS, pipeline=pipeline, date=date, partial=partial)
    set_aside: dict[str, int] = {}
    for _, status, _, reasons, _, _ in runs:
        for reason, count in (reasons or {}).items():
            if count and status == "done":
                set_aside[reason] = set_aside.get(reason, 0) + count
    return {"set_aside": set_aside, "runs": runs[0][5] if runs else 0, "engines": {run[2] for run in runs}}


def test_runs_show_loaded_failed_partial_and_missing_dates_with_their_figures(server: Server) -> None:
    status, body, _ = server.get("/api/runs")
    assert status == 200, body
    assert (body["last"], body["first"]) == (f"{YESTERDAY}", f"{YESTERDAY - dt.timedelta(days=29)}")
    courses, film = body["pipelines"]
    assert (courses["pipeline"], film["pipeline"]) == ("courses", "films")
    dates = {each["date"]: each for each in courses["dates"]}
    assert list(dates) == [f"{YESTERDAY - dt.timedelta(days=n)}" for n in range(30)]  # newest first

    for date in [YESTERDAY, *BACKFILLED]:  # loaded: the load row's figures, the history's set-aside rows
        load, day = own_load(server.databases, date), dates[f"{date}"]
        expected = figures(server.databases, "courses", date)
        assert day["state"] == "loaded", day
        assert day["rows"] == load["n_recommendations"] and day["invalid_rows"] == load["n_invalid"] >= 3
        assert (day["invalid_share"], day["duration_s"]) == (load["invalid_share"], load["duration_s"])
        assert dt.datetime.fromisoformat(day["loaded_at"]) == dt.datetime.fromisoformat(load["loaded_at"])
        assert day["set_aside"] == expected["set_aside"] and sum(day["set_aside"].values()) >= 3
        # The 7 steps and the load, then the evaluation and its load.
        assert day["runs"] == expected["runs"] == 10 and day["engine"] == "pandas"
        assert day["failed_task"] is None and day["error"] is None
    assert dates[f"{YESTERDAY}"]["due_by"] == f"{NOW.date()}T03:00:00+00:00"

    failed = dates[f"{FAILED}"]
    assert failed["state"] == "failed" and failed["failed_task"] == "ExtractedRatings", failed
    assert failed["error"].startswith("SourceDataError: source table 'public.rating' does not exist")
    assert failed["rows"] is None and failed["loaded_at"] is None and failed["runs"] >= 1

    partial = dates[f"{PARTIAL}"]
    [(rows, loaded_at)] = server.databases.warehouse_rows(
        "SELECT n_recommendations, loaded_at FROM recommendation_loads WHERE recommendation_date = :d AND partial",
        d=PARTIAL,
    )
    assert (partial["state"], partial["rows"]) == ("partial", rows)
    assert dt.datetime.fromisoformat(partial["loaded_at"]) == loaded_at
    assert partial["set_aside"] == figures(server.databases, "courses", PARTIAL, partial=True)["set_aside"]

    due = dt.date.fromisoformat(courses["due_date"])
    assert due == due_date(NOW, EXPECTED_BY)
    never = [d for d in dates.values() if d["date"] not in {f"{x}" for x in [YESTERDAY, *BACKFILLED, FAILED, PARTIAL]}]
    assert len(never) == 25
    for day in never:  # no load, no run: missing, or late when it is the date due by now
        assert day["state"] == ("late" if day["date"] == f"{due}" else "missing"), day
        assert (day["rows"], day["runs"], day["set_aside"], day["engine"], day["loaded_at"]) == (None, 0, {}, None,
                                                                                                 None)  # fmt: skip

    films_dates = {each["date"]: each for each in film["dates"]}  # the film pipeline loaded the courses' failed day
    assert films_dates[f"{FAILED}"]["state"] == "loaded" and films_dates[f"{PARTIAL}"]["state"] == "partial"
    [(n_films,)] = server.databases.warehouse_rows(
        "SELECT n_films FROM store.film_loads WHERE load_date = :d", d=FAILED
    )
    assert films_dates[f"{FAILED}"]["rows"] == n_films > 0
    assert films_dates[f"{FAILED}"]["set_aside"] == figures(server.databases, "films", FAILED)["set_aside"]

    status, week, _ = server.get("/api/runs?days=7")
    assert status == 200 and [len(p["dates"]) for p in week["pipelines"]] == [7, 7]
    assert week["first"] == f"{YESTERDAY - dt.timedelta(days=6)}"


def test_the_dashboard_of_a_chosen_loaded_date_and_404_for_a_date_never_loaded(server: Server) -> None:
    status, current, _ = server.get("/api/dashboard")
    assert status == 200 and current["date"] == f"{YESTERDAY}"
    status, older, _ = server.get(f"/api/dashboard?date={BACKFILLED[0]}")
    assert status == 200 and older["date"] == f"{BACKFILLED[0]}"
    [(count,)] = server.databases.warehouse_rows(
        "SELECT count(*) FROM daily_recommendations WHERE recommendation_date = :d", d=BACKFILLED[0]
    )
    assert sum(bucket["recommendations"] for bucket in older["ratings"]) == count > 0
    assert sum(language["recommendations"] for language in older["languages"]) == count
    assert [load["date"] for load in older["loads"]] == sorted(load["date"] for load in current["loads"])
    status, body, _ = server.get(f"/api/dashboard?date={FAILED}")
    assert status == 404 and body["detail"].startswith(f"{FAILED} was never loaded: loaded dates range from")


def test_schemathesis_with_all_its_checks_finds_nothing(server: Server) -> None:
    before = warehouse_state(server.databases)
    # A second pass asks for a user who has recommendations: its answers are 200s, checked against their schema.
    report = server.databases.output / "schemathesis"  # its working folder: it keeps a cache there
    report.mkdir(exist_ok=True)
    known = server.databases.output / "schemathesis-user.toml"  # outside its working folder, where it would be found
    known.write_text('[[operations]]\ninclude-path = "/api/users/{user_id}/recommendations"\n'
                     'parameters = { "user_id" = 10 }\n')  # fmt: skip
    for config in ([], ["--config-file", str(known)]):
        command = [
            sys.executable, "-m", "schemathesis.cli", *config, "run", f"{server.base}/openapi.json", "--checks", "all",
            "--max-examples", "300", "--seed", "20", "--workers", "2", "--generation-database", "none", "--no-color",
        ]  # fmt: skip
        result = subprocess.run(command, cwd=report, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "9 selected / 9 total" in result.stdout and "Tested: 9" in result.stdout, result.stdout[-3000:]
        assert re.search(r"\d+ generated, \d+ passed\n", result.stdout), result.stdout[-3000:]
    assert warehouse_state(server.databases) == before


def warehouse_state(databases: Databases) -> list[tuple]:
    """Return what a read-only server must never change: the row counts and last loads of the warehouse's tables."""
    return databases.warehouse_rows(
        "SELECT (SELECT count(*) FROM courses), (SELECT count(*) FROM daily_recommendations),"
        " (SELECT max(loaded_at) FROM recommendation_loads), (SELECT count(*) FROM store.film_daily),"
        " (SELECT count(*) FROM workflow.task_runs)"
    )


def test_a_failed_run_of_yesterday_makes_freshness_fail_while_healthz_stays_200(server: Server) -> None:
    invalidate = [sys.executable, "-m", "workflow", "invalidate", "--date", f"{YESTERDAY}"]
    subprocess.run(invalidate, cwd=REPO, check=True, capture_output=True, timeout=120)
    server.databases.query(server.databases.source, "ALTER TABLE rating RENAME TO rating_away")
    try:
        assert not build(DailyPipelines(date=YESTERDAY))
    finally:
        server.databases.query(server.databases.source, "ALTER TABLE rating_away RENAME TO rating")

    status, body, _ = server.get("/api/freshness")
    assert status == 200 and body["fresh"] is False, body
    courses, film = body["pipelines"]
    assert (courses["state"], courses["newest_date"]) == ("failed", f"{BACKFILLED[1]}")
    assert courses["detail"].startswith(
        f"{YESTERDAY} failed in ExtractedRatings: SourceDataError: source table 'public.rating' does not exist"
    )
    assert (film["state"], film["newest_date"]) == ("fresh", f"{YESTERDAY}")  # the film pipeline loaded it again
    status, health, _ = server.get("/healthz")
    assert status == 200 and health["status"] == "ok" and health["fresh"] is False
    assert [p["state"] for p in health["pipelines"]] == ["failed", "fresh"]
    day = server.get("/api/runs?days=1")[1]["pipelines"][0]["dates"][0]
    assert (day["date"], day["state"], day["failed_task"]) == (f"{YESTERDAY}", "failed", "ExtractedRatings")

    assert build(DailyPipelines(date=YESTERDAY))
    assert server.get("/api/freshness")[1]["fresh"] is True  # loaded since: fresh again
