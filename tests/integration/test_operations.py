"""Daily operation: backfills with as-of data, invalidation, concurrent runs, retries, luigid and its visualizer."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time

import luigi
import pandas as pd
import pytest
from conftest import REPO, Databases, headless_chromium, require_chromium
from luigi.tools.range import RangeDaily
from reference import brute_force_recommendations
from test_workflow import COURSES, EXPECTED, RATINGS, build, daily_rows

import workflow
from workflow import scheduler
from workflow.core import dated_load
from workflow.daily import DailyPipelines
from workflow.databases import embedded_server, url_of, warehouse_url
from workflow.errors import DatabaseUnavailableError
from workflow.pipelines import films
from workflow.pipelines.courses import PIPELINE, demo
from workflow.pipelines.films import demo as film_demo

FIRST = dt.date(2026, 11, 1)
DAYS = [FIRST + dt.timedelta(days=offset) for offset in range(5)]


def stamped_ratings() -> pd.DataFrame:
    """Return ratings spread over the five days, each day adding a few, some in the early hours (UTC)."""
    rng = pd.Series(range(60))
    ratings = pd.DataFrame(
        {
            "user_id": 100 + rng % 9,
            "course_id": 1 + (rng * 7) % 8,
            "rating": 1 + (rng * 3) % 5,
            "rated_at": pd.Timestamp(FIRST, tz="UTC") + pd.to_timedelta(rng * 2, unit="h"),
        }
    )
    return ratings.drop_duplicates(["user_id", "course_id"]).reset_index(drop=True)


def expected_for(day: dt.date, ratings: pd.DataFrame) -> list[tuple]:
    """Return what the day's data alone gives: ratings made before the end of the day, by the brute-force rules."""
    end = pd.Timestamp(day + dt.timedelta(days=1), tz="UTC")
    known = ratings[ratings["rated_at"] < end][["user_id", "course_id", "rating"]]
    courses = COURSES.assign(programming_language=COURSES["programming_language"].str.strip().str.lower().fillna("r"))
    expected = brute_force_recommendations(known, courses[["course_id", "programming_language"]], per_user=3)
    return [tuple(row) for row in expected.itertuples(index=False)]


def backfill() -> luigi.execution_summary.LuigiRunResult:
    """Run RangeDaily over the five days, as `luigi --module workflow RangeDaily ...` does."""
    stop = DAYS[-1] + dt.timedelta(days=1)
    task = RangeDaily(of=workflow.RecommendationsTask, start=DAYS[0], stop=stop, days_back=10_000)
    result = luigi.build([task], local_scheduler=True, workers=2, detailed_summary=True)
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text
    return result


def warehouse_state(databases: Databases) -> list[tuple]:
    """Return every recommendation row with its row version, and every load marker."""
    rows = databases.warehouse_rows("SELECT *, xmin::text FROM daily_recommendations ORDER BY 1, 2, 5")
    return rows + databases.warehouse_rows("SELECT * FROM recommendation_loads ORDER BY 1")


@pytest.fixture
def stamped_source(clean: Databases) -> Databases:
    demo.replace_source_tables(clean.source, COURSES, stamped_ratings())
    return clean


def test_a_backfill_with_as_of_data_gives_each_day_what_its_data_alone_gives(stamped_source: Databases) -> None:
    backfill()
    ratings = stamped_ratings()
    results = [daily_rows(stamped_source, day) for day in DAYS]
    for day, rows in zip(DAYS, results, strict=True):
        assert rows == expected_for(day, ratings), day
    assert len({tuple(rows) for rows in results}) == 5  # every day differs: the as-of cut is real
    record = (stamped_source.output / f"{DAYS[0]}" / "runs" / "extracted_ratings.json").read_text()
    assert "as of 2026-11-02 00:00:00 UTC" in record


def test_a_second_backfill_does_nothing(stamped_source: Databases) -> None:
    backfill()
    before = warehouse_state(stamped_source)
    result = backfill()
    assert (
        "RecommendationsTask" not in result.summary_text.split("Did not run any tasks")[0].split("ran successfully")[-1]
    )
    assert warehouse_state(stamped_source) == before


def test_invalidating_one_date_recomputes_it_and_changes_nothing_else(stamped_source: Databases) -> None:
    backfill()
    before = {day: daily_rows(stamped_source, day) for day in DAYS}
    versions = stamped_source.warehouse_rows(
        "SELECT recommendation_date, array_agg(xmin::text ORDER BY user_id, rank) FROM daily_recommendations GROUP BY 1"
    )
    changed = pd.concat(
        [
            stamped_ratings(),
            pd.DataFrame(
                {"user_id": [200], "course_id": [8], "rating": [1], "rated_at": [pd.Timestamp(DAYS[2], tz="UTC")]}
            ),
        ]
    )
    demo.replace_source_tables(stamped_source.source, COURSES, changed)
    subprocess.run([sys.executable, "-m", "workflow", "invalidate", "--date", f"{DAYS[2]}"], check=True, cwd=REPO)
    backfill()
    after = {day: daily_rows(stamped_source, day) for day in DAYS}
    assert after[DAYS[2]] == expected_for(DAYS[2], changed) != before[DAYS[2]]
    assert {day: rows for day, rows in after.items() if day != DAYS[2]} == {
        day: rows for day, rows in before.items() if day != DAYS[2]
    }
    versions_after = stamped_source.warehouse_rows(
        "SELECT recommendation_date, array_agg(xmin::text ORDER BY user_id, rank) FROM daily_recommendations GROUP BY 1"
    )
    assert [v for v in versions_after if v[0] != DAYS[2]] == [v for v in versions if v[0] != DAYS[2]]


def test_a_source_without_timestamps_is_extracted_as_a_snapshot_and_says_so(clean: Databases) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    build()
    record = (clean.output / "2026-11-24" / "runs" / "extracted_ratings.json").read_text()
    assert "snapshot taken" in record and "(no column 'rated_at')" in record


def luigi_command(*extra: str) -> list[str]:
    luigi_bin = os.path.join(os.path.dirname(sys.executable), "luigi")
    return [
        luigi_bin,
        "--module",
        "workflow",
        "RecommendationsTask",
        "--date",
        "2026-11-24",
        "--local-scheduler",
        *extra,
    ]


def test_two_concurrent_runs_of_a_date_leave_exactly_one_set_of_rows(clean: Databases) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    # Different command lines, so luigi's own lock lets both run; the warehouse lock must keep them apart.
    runs = [
        subprocess.Popen(luigi_command("--workers", str(n)), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for n in (1, 2)
    ]
    for run in runs:
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output.decode()
    assert daily_rows(clean) == EXPECTED
    assert clean.warehouse_rows("SELECT count(*) FROM daily_recommendations") == [(len(EXPECTED),)]
    assert clean.warehouse_rows("SELECT count(*) FROM recommendation_loads") == [(1,)]


def test_a_connection_retries_while_the_server_restarts(databases: Databases, luigi_setting) -> None:
    if os.environ.get("SOURCE_DATABASE_URL"):
        pytest.skip("restarts only the embedded server")
    luigi_setting("connection", "attempts", 6)
    luigi_setting("connection", "first_wait", 0.5)
    server = embedded_server()
    server.stop()
    restart = threading.Timer(1.0, server.ensure_running)
    restart.start()
    try:  # the URL as a run resolves it, which applies the [connection] settings
        assert dated_load.loaded_dates(warehouse_url(), PIPELINE.marker, [dt.date(2000, 1, 1)]) == set()
    finally:
        restart.join()


def test_a_connection_that_never_comes_back_fails_clearly(luigi_setting, monkeypatch: pytest.MonkeyPatch) -> None:
    luigi_setting("connection", "attempts", 5)
    luigi_setting("connection", "first_wait", 0.01)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DWH_DATABASE_URL", f"postgresql://someone:hunter2@127.0.0.1:{port}/dwh")
    with pytest.raises(DatabaseUnavailableError) as failure:
        dated_load.loaded_dates(warehouse_url(), PIPELINE.marker, [dt.date(2000, 1, 1)])
    assert f"cannot connect to postgresql+psycopg2://someone:***@127.0.0.1:{port}/dwh after 5 attempts" in str(
        failure.value
    )
    assert "hunter2" not in str(failure.value)


@pytest.fixture
def luigid(clean: Databases) -> int:
    """Start the project's luigid on a free port for one test, and stop it after."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scheduler.start(port)
    try:
        yield port
    finally:
        scheduler.stop()


def test_luigid_shows_every_task_done_records_history_and_saves_its_state(clean: Databases, luigid: int) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    result = luigi.build(
        [workflow.RecommendationsTask(date=dt.date(2026, 11, 24))],
        scheduler_host="127.0.0.1", scheduler_port=luigid, workers=2, detailed_summary=True,
    )  # fmt: skip
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text
    import urllib.request  # noqa: PLC0415

    history = urllib.request.urlopen(f"http://127.0.0.1:{luigid}/history", timeout=10).read().decode()
    assert "RecommendationsTask" in history and "ExtractedRatings" in history
    by_name = urllib.request.urlopen(f"http://127.0.0.1:{luigid}/history/by_name/ValidRatings", timeout=10)
    assert by_name.status == 200
    require_chromium()
    page_text = visualizer_task_list(luigid, REPO / "output" / "visualizer-task-list.png")
    for task in ("ExtractedCourses", "ExtractedRatings", "CleanedCourses", "ValidRatings", "AverageCourseRatings",
                 "CoursesToRecommend", "TopRecommendations", "RecommendationsTask"):  # fmt: skip
        assert f"DONE {task}\ndate=2026-11-24" in page_text, page_text
    assert "DONE TASKS\n8" in page_text and "FAILED TASKS\n0" in page_text


def test_luigid_shows_the_film_tasks_of_the_daily_pipelines_done(clean: Databases, luigid: int) -> None:
    require_chromium()
    day = dt.date(2026, 11, 1)  # over, as the film rentals' as-of cut requires
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    clean.query(clean.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    film_demo.replace_film_tables(url_of(films.PIPELINE.source), n_rentals=2_000, until=day)
    result = luigi.build(
        [DailyPipelines(date=day)], scheduler_host="127.0.0.1", scheduler_port=luigid, workers=2, detailed_summary=True
    )
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text
    page_text = visualizer_task_list(luigid, REPO / "output" / "visualizer-film-tasks.png", "#length=50")
    for task in ("ExtractedFilms", "ExtractedRentals", "ExtractedInventory", "ExtractedFilmRatings",
                 "FilmRentalRates", "FilmRatings", "FilmRecommendations", "FilmsTask", "RecommendationsTask",
                 "DailyPipelines"):  # fmt: skip
        assert f"DONE {task}\ndate={day}" in page_text, page_text
    for table in ("film", "inventory", "rental"):
        assert f"DONE SourceTable\ntable={table}" in page_text, page_text
    # The date's 19 dated tasks (10 courses, 8 films, the wrapper), all listed; luigid may remember earlier tests' too.
    assert page_text.count(f"\ndate={day}") == 19 and "FAILED TASKS\n0" in page_text, page_text


def visualizer_task_list(port: int, screenshot: os.PathLike, fragment: str = "") -> str:
    """Open the visualizer's task list (`fragment`: its URL's #state) in headless chromium, save a screenshot, and
    return the page's text."""
    driver = headless_chromium(1400, 1000)
    try:
        driver.get(f"http://127.0.0.1:{port}/static/visualiser/index.html{fragment}")
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline and "Showing 1 to" not in text:
            time.sleep(0.5)
            text = driver.find_element("tag name", "body").text
        driver.save_screenshot(str(screenshot))
        return text
    finally:
        driver.quit()


def test_the_demo_data_has_timestamps_within_the_year_before_until() -> None:

    courses, ratings = demo.demo_data(2_000, until=dt.date(2026, 11, 24))
    assert ratings["rated_at"].max() < pd.Timestamp("2026-11-25", tz="UTC")
    assert ratings["rated_at"].min() >= pd.Timestamp("2025-11-25", tz="UTC")
    assert len(ratings) == 2_000 and set(ratings["rating"]) <= {1, 2, 3, 4, 5}
    again = demo.demo_data(2_000, until=dt.date(2026, 11, 24))
    pd.testing.assert_frame_equal(ratings, again[1])
    pd.testing.assert_frame_equal(courses, again[0])
