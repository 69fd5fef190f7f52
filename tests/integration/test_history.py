"""The run history in the warehouse: every task run of every pipeline, its figures, and the runs it missed."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest
from conftest import REPO, Databases
from test_workflow import COURSES, RATINGS

import workflow
from workflow.core import history, outputs
from workflow.io import urls
from workflow.pipelines.courses import demo

DAY = dt.date(2026, 11, 10)
COURSE_TASKS = {
    "ExtractedCourses", "ExtractedRatings", "CleanedCourses", "ValidRatings", "AverageCourseRatings",
    "CoursesToRecommend", "TopRecommendations", "RecommendationsTask",
}  # fmt: skip
# What DailyPipelines runs of the courses beside them: the offline evaluation of both methods, and its load.
EVALUATION_TASKS = {"RecommendationQuality", "RecommendationQualityTask"}


def runs_of(databases: Databases, date: dt.date = DAY) -> list[dict]:
    """Return the history's runs of the date, oldest first, as dicts."""
    rows = databases.warehouse_rows(
        "SELECT to_jsonb(runs) FROM workflow.task_runs AS runs WHERE run_date = :date ORDER BY finished_at", date=date
    )
    return [row for (row,) in rows]


def status(date: dt.date, **environment: str) -> list[str]:
    """Return the lines `python -m workflow status` prints for the date."""
    result = subprocess.run(
        [sys.executable, "-m", "workflow", "status", "--date", f"{date}"],
        cwd=REPO, env={**os.environ, **environment}, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout.splitlines()


def closed_port() -> int:
    """Return a local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def small_source(clean: Databases) -> Databases:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    return clean


def test_a_successful_run_is_in_the_history_with_its_figures_and_its_load_row_records_them(
    small_source: Databases,
) -> None:
    assert luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True, workers=2)
    runs = {run["task"]: run for run in runs_of(small_source)}
    assert set(runs) == COURSE_TASKS
    assert {run["status"] for run in runs.values()} == {"done"}
    assert {(run["pipeline"], run["engine"], run["partial"], run["error"]) for run in runs.values()} == {
        ("courses", "pandas", False, None)
    }
    for run in runs.values():
        assert run["started_at"] <= run["finished_at"] and run["duration_s"] >= 0

    folder = outputs.date_dir(DAY)
    valid = runs["ValidRatings"]
    quarantined = pq.read_table(folder / "quarantined_ratings.parquet").column("reason").to_pylist()
    assert {reason: count for reason, count in valid["set_aside"].items() if count} == {
        reason: quarantined.count(reason) for reason in set(quarantined)
    }
    assert sum(valid["set_aside"].values()) == len(quarantined) == 3  # out of range, unknown course, no course
    assert valid["invalid_rows"] == 3 and valid["invalid_share"] == pytest.approx(3 / len(RATINGS), abs=1e-6)
    assert valid["rows_in"] == len(RATINGS) + len(COURSES)  # the ratings, and the course ids they are checked against
    assert valid["rows_out"] == pq.read_metadata(folder / "valid_ratings.parquet").num_rows == len(RATINGS) - 3
    assert runs["ExtractedRatings"]["rows_out"] == len(RATINGS)
    assert runs["CleanedCourses"]["set_aside"] == {"missing_course_id": 0, "duplicate_course_id": 0}
    load = runs["RecommendationsTask"]
    [(n_rows,)] = small_source.warehouse_rows("SELECT count(*) FROM daily_recommendations WHERE recommendation_date "
                                              "= :date", date=DAY)  # fmt: skip
    assert load["rows_out"] == n_rows == 13

    # The load row records the date's figures in the data's transaction, and names the load's run.
    [(n_invalid, share, seconds, run_id)] = small_source.warehouse_rows(
        "SELECT n_invalid, invalid_share, duration_s, run_id::text FROM recommendation_loads WHERE recommendation_date "
        "= :date", date=DAY,
    )  # fmt: skip
    assert (n_invalid, share, run_id) == (3, valid["invalid_share"], load["run_id"])
    steps = sum(run["duration_s"] for task, run in runs.items() if task != "RecommendationsTask")
    assert steps < seconds <= steps + load["duration_s"] + 0.01

    # A rerun runs nothing and records nothing.
    assert luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True)
    assert len(runs_of(small_source)) == len(COURSE_TASKS)


def test_a_failing_run_is_in_the_history_with_its_one_line_error(small_source: Databases) -> None:
    small_source.query(small_source.source, "DROP TABLE rating")
    assert not luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True)
    runs = {run["task"]: run for run in runs_of(small_source)}
    failed = runs["ExtractedRatings"]
    assert failed["status"] == "failed" and failed["rows_out"] is None
    assert failed["error"] == (
        f"SourceDataError: source table 'public.rating' does not exist in {urls.safe_url(small_source.source)}"
    )
    assert runs["ExtractedCourses"]["status"] == "done" and "RecommendationsTask" not in runs
    assert failed["run_id"] == json.loads((outputs.date_dir(DAY) / "runs" / "extracted_ratings.failed.json")
                                          .read_text())["run_id"]  # fmt: skip


def test_status_on_another_machine_shows_the_same_history(
    small_source: Databases, tmp_path: Path, luigi_setting: Callable
) -> None:
    luigi_setting("rules", "max_invalid_share", 0.2)
    small_source.query(small_source.source, "UPDATE rating SET rating = 7 WHERE user_id = 10")  # too many invalid
    assert not luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True)
    here = status(DAY, DWH_DATABASE_URL=small_source.warehouse)
    elsewhere = status(DAY, DWH_DATABASE_URL=small_source.warehouse, WORKFLOW_OUTPUT_DIR=str(tmp_path))
    assert not list(tmp_path.glob("20*"))  # the other machine has no run records of its own
    assert here == elsewhere
    assert here[0] == f"{DAY}: 4 task run(s) in the run history of {urls.safe_url(small_source.warehouse)}"
    [failed] = [line for line in here if line.startswith("ValidRatings ")]
    assert " failed " in failed and "InvalidSourceDataError: ratings: 5 of 14 rows (35.71%) break the rules" in failed
    assert here[-2:] == [f"warehouse: {DAY} courses not loaded", f"warehouse: {DAY} films not loaded"]


def test_runs_the_warehouse_missed_are_recorded_by_the_next_run_that_reaches_it_once(
    small_source: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = f"postgresql://nobody:s3cret-pw@127.0.0.1:{closed_port()}/dwh"
    monkeypatch.setenv("DWH_DATABASE_URL", down)
    # The steps need no warehouse: they run, and their records wait for it.
    assert luigi.build([workflow.TopRecommendations(date=DAY)], local_scheduler=True)
    pending = outputs.output_dir() / "history-pending"
    waiting = {json.loads(path.read_text())["run_id"] for path in pending.glob("*.json")}
    assert len(waiting) == 7
    offline = status(DAY, DWH_DATABASE_URL=down)
    assert offline[0].startswith("the warehouse cannot be reached (cannot connect to postgresql+psycopg2://nobody:***@")
    assert "s3cret-pw" not in "\n".join(offline)
    assert {line.split()[0] for line in offline[1:]} == COURSE_TASKS - {"RecommendationsTask"}

    monkeypatch.setenv("DWH_DATABASE_URL", small_source.warehouse)
    assert luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True)
    runs = runs_of(small_source)
    assert {run["run_id"] for run in runs if run["from_file"]} == waiting
    assert [run["task"] for run in runs if not run["from_file"]] == ["RecommendationsTask"]
    assert not list(pending.glob("*.json"))

    # Records replayed again (copies left behind, say) are still recorded once.
    for path in (outputs.date_dir(DAY) / "runs").glob("*.json"):
        (pending / path.name).write_text(path.read_text())
    later = {**json.loads((outputs.date_dir(DAY) / "runs" / "recommendations_task.json").read_text()),
             "run_id": str(uuid.uuid4())}  # fmt: skip
    history.record(later)
    assert sorted(run["run_id"] for run in runs_of(small_source)) == sorted(
        [run["run_id"] for run in runs] + [later["run_id"]]
    )
    assert not list(pending.glob("*.json"))


def test_every_pipelines_tasks_are_recorded_and_each_load_row_holds_its_dates_figures(small_source: Databases) -> None:
    from workflow.daily import DailyPipelines  # noqa: PLC0415
    from workflow.databases import url_of  # noqa: PLC0415
    from workflow.pipelines import films  # noqa: PLC0415
    from workflow.pipelines.films import demo as film_demo  # noqa: PLC0415

    small_source.query(small_source.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    film_source = url_of(films.PIPELINE.source)
    film_demo.replace_film_tables(film_source, 4_000, until=DAY, seed=3)
    small_source.query(film_source, "INSERT INTO film_rating VALUES (1, 1, 9, '2026-11-01'), (2, 1, 0, '2026-11-02')")
    assert luigi.build([DailyPipelines(date=DAY)], local_scheduler=True, workers=2)
    runs = runs_of(small_source)
    by_pipeline = {name: {run["task"] for run in runs if run["pipeline"] == name} for name in ("courses", "films")}
    assert by_pipeline == {
        "courses": COURSE_TASKS | EVALUATION_TASKS,
        "films": {"ExtractedFilms", "ExtractedRentals", "ExtractedInventory", "ExtractedFilmRatings",
                  "FilmRentalRates", "FilmRatings", "FilmRecommendations", "FilmsTask"},
    }  # fmt: skip
    assert len(runs) == 18 and {run["status"] for run in runs} == {"done"}
    film_runs = [run for run in runs if run["pipeline"] == "films"]
    [(n_films, n_invalid, share, seconds, run_id)] = small_source.warehouse_rows(
        "SELECT n_films, n_invalid, invalid_share, duration_s, run_id::text FROM store.film_loads"
    )
    [load] = [run for run in film_runs if run["task"] == "FilmsTask"]
    checked = [run for run in film_runs if run["invalid_rows"] is not None]
    assert {run["task"] for run in checked} == {"FilmRentalRates", "FilmRatings"}
    assert n_invalid == sum(run["invalid_rows"] for run in checked) == 2  # the ratings 9 and 0
    assert share == max(run["invalid_share"] for run in checked)
    assert (n_films, run_id) == (load["rows_out"], load["run_id"])
    assert sum(run["duration_s"] for run in film_runs if run is not load) < seconds
