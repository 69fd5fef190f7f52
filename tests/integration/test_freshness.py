"""`python -m workflow freshness` against the real warehouse: backfills, failures and the exit code."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import luigi
import pytest
from conftest import REPO, Databases
from test_workflow import COURSES, RATINGS

import workflow
from workflow.daily import DailyPipelines
from workflow.databases import url_of
from workflow.pipelines import films
from workflow.pipelines.courses import demo
from workflow.pipelines.films import demo as film_demo

YESTERDAY = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


def freshness() -> tuple[int, dict, list[str]]:
    """Return the exit code, the JSON and the text of `python -m workflow freshness`."""
    runs = [
        subprocess.run(
            [sys.executable, "-m", "workflow", "freshness", *extra],
            cwd=REPO,
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for extra in (["--json"], [])
    ]
    assert runs[0].returncode == runs[1].returncode, runs[1].stderr
    return runs[0].returncode, json.loads(runs[0].stdout), runs[1].stdout.splitlines()


@pytest.fixture
def both_sources(clean: Databases) -> Databases:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    clean.query(clean.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    film_demo.replace_film_tables(url_of(films.PIPELINE.source), 2_000, until=YESTERDAY, seed=5)
    return clean


def test_after_a_backfill_of_older_dates_freshness_reports_the_newest_dates_own_load(both_sources: Databases) -> None:
    assert luigi.build([DailyPipelines(date=YESTERDAY)], local_scheduler=True, workers=2)
    older = [YESTERDAY - dt.timedelta(days=n) for n in (3, 2)]
    assert luigi.build([DailyPipelines(date=date) for date in older], local_scheduler=True, workers=2)
    [(loaded_at,)] = both_sources.warehouse_rows(
        "SELECT loaded_at FROM recommendation_loads WHERE recommendation_date = :date", date=YESTERDAY
    )
    [(backfilled_at,)] = both_sources.warehouse_rows("SELECT max(loaded_at) FROM recommendation_loads")
    assert backfilled_at > loaded_at  # the backfill committed later than the newest date's own load

    code, found, lines = freshness()
    assert code == 0 and found["fresh"] is True
    courses = found["pipelines"][0]
    assert (courses["pipeline"], courses["state"], courses["newest_date"]) == ("courses", "fresh", f"{YESTERDAY}")
    assert dt.datetime.fromisoformat(courses["loaded_at"]) == loaded_at
    assert found["pipelines"][1]["state"] == "fresh" and found["pipelines"][1]["newest_date"] == f"{YESTERDAY}"
    assert lines[0].startswith("courses    fresh ")
    assert f"newest loaded {YESTERDAY} (loaded {loaded_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)" in lines[0]


def test_a_failed_run_of_yesterday_makes_freshness_fail(both_sources: Databases) -> None:
    two_days_ago = YESTERDAY - dt.timedelta(days=1)
    assert luigi.build([DailyPipelines(date=two_days_ago)], local_scheduler=True, workers=2)
    both_sources.query(both_sources.source, "DROP TABLE rating")
    assert not luigi.build([DailyPipelines(date=YESTERDAY)], local_scheduler=True, workers=2)

    code, found, lines = freshness()
    assert code == 2 and found["fresh"] is False
    courses, film = found["pipelines"]
    assert (courses["state"], courses["newest_date"]) == ("failed", f"{two_days_ago}")
    assert courses["detail"].startswith(
        f"{YESTERDAY} failed in ExtractedRatings: SourceDataError: source table 'public.rating' does not exist"
    )
    assert (film["state"], film["newest_date"]) == ("fresh", f"{YESTERDAY}")  # the film pipeline loaded its date
    assert lines[0].startswith("courses    failed ") and lines[1].startswith("films      fresh ")

    demo.replace_source_tables(both_sources.source, COURSES, RATINGS.astype("Int64"))
    assert luigi.build([workflow.RecommendationsTask(date=YESTERDAY)], local_scheduler=True)
    assert freshness()[0] == 0  # loaded since: fresh again
