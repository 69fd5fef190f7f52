"""Faults on a real run: SIGKILL at several points, the server stopping, readers during a load, an empty source."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import REPO, Databases

from workflow.core import dated_load, outputs
from workflow.databases import embedded_server
from workflow.pipelines.courses import PIPELINE, demo

REFERENCE = dt.date(2026, 11, 10)
N_RATINGS = 1_000_000


def luigi_run(date: dt.date, **popen: object) -> subprocess.Popen:
    """Start `luigi --module workflow RecommendationsTask` for a date in its own process group."""
    command = [os.path.join(os.path.dirname(sys.executable), "luigi"), "--module", "workflow",
               "RecommendationsTask", "--date", f"{date}", "--local-scheduler", "--workers", "2"]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, start_new_session=True, **popen)


def finish(date: dt.date) -> subprocess.CompletedProcess:
    run = luigi_run(date, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = run.communicate(timeout=600)
    return subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)


def recommendations(databases: Databases, date: dt.date) -> pd.DataFrame:
    rows = databases.warehouse_rows(
        "SELECT user_id, course_id, rating, rank FROM daily_recommendations WHERE recommendation_date = :date"
        " ORDER BY user_id, rank",
        date=date,
    )
    return pd.DataFrame(rows, columns=["user_id", "course_id", "rating", "rank"])


def assert_rerun_equals_clean_run(databases: Databases, date: dt.date, clean_rows: pd.DataFrame) -> None:
    """Run the date again and check it completes with exactly a clean run's recommendations."""
    rerun = finish(date)
    assert rerun.returncode == 0, rerun.stderr
    pd.testing.assert_frame_equal(recommendations(databases, date), clean_rows)


@pytest.fixture(scope="module")
def large_source(databases: Databases) -> pd.DataFrame:
    """Fill the source with a million demo ratings, load the reference date cleanly, and return its rows."""
    databases.query(
        databases.warehouse,
        "DROP VIEW IF EXISTS recommendations; "
        "DROP TABLE IF EXISTS daily_recommendations, recommendation_loads, courses",
    )
    courses, ratings = demo.demo_data(N_RATINGS, until=dt.date(2026, 11, 1))
    demo.replace_source_tables(databases.source, courses, ratings)
    assert finish(REFERENCE).returncode == 0
    return recommendations(databases, REFERENCE)


def active_query(url: str, pattern: str) -> Callable[[], bool]:
    """Return a check: is a query matching the LIKE pattern running on the database now?"""
    import sqlalchemy as sa  # noqa: PLC0415

    engine = sa.create_engine(url)
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE :pattern")

    def check() -> bool:
        with engine.connect() as connection:
            return connection.execute(query, {"pattern": pattern}).scalar() > 0

    return check


def temporary_parquet(folder: Path) -> Callable[[], bool]:
    """Return a check: is a parquet target being written (its temporary file, `.<name>.tmp-<pid>`, present)?"""
    return lambda: folder.exists() and bool(outputs.stale_temporaries(folder))


def kill_when(date: dt.date, condition: Callable[[], bool]) -> bool:
    """Run the graph for a date and SIGKILL its whole process group as soon as the condition holds."""
    run = luigi_run(date, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while run.poll() is None:
            if condition():
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                return True
            time.sleep(0.002)
        return False
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


@pytest.mark.parametrize("point", ["extract", "parquet write", "load transaction"])
def test_a_run_killed_at_any_point_leaves_nothing_partial_and_the_rerun_equals_a_clean_run(
    databases: Databases, large_source: pd.DataFrame, point: str
) -> None:
    date = REFERENCE + dt.timedelta(days=1 + ["extract", "parquet write", "load transaction"].index(point))
    folder = outputs.date_dir(date)
    conditions = {
        "extract": active_query(databases.source, "COPY (SELECT%rating%"),
        "parquet write": temporary_parquet(folder),
        "load transaction": active_query(databases.warehouse, "%loading_%"),
    }
    assert kill_when(date, conditions[point]), f"the run finished before reaching the {point}"

    for target in folder.glob("*.parquet"):  # every target that exists is whole
        assert pq.read_table(target).num_rows >= 0
    assert date not in dated_load.loaded_dates(databases.warehouse, PIPELINE.marker, [date])
    assert recommendations(databases, date).empty
    if point == "parquet write":
        assert outputs.stale_temporaries(folder), "the kill left no temporary file to clean up"

    assert_rerun_equals_clean_run(databases, date, large_source)
    assert outputs.stale_temporaries(folder) == []  # the rerun removed what the killed run left


def test_a_server_stopping_mid_run_fails_clearly_and_the_rerun_after_a_restart_completes(
    databases: Databases, large_source: pd.DataFrame
) -> None:
    if os.environ.get("SOURCE_DATABASE_URL"):
        pytest.skip("stops the embedded server")
    date = REFERENCE + dt.timedelta(days=5)
    server = embedded_server()
    # Explicit URLs, as with a real server: otherwise the run would start the embedded server again itself.
    urls = {"SOURCE_DATABASE_URL": databases.source, "DWH_DATABASE_URL": databases.warehouse}
    run = luigi_run(date, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **urls})
    target = outputs.date_dir(date) / "extracted_ratings.parquet"
    while not target.exists() and run.poll() is None:
        time.sleep(0.005)
    server.stop()
    try:
        _, stderr = run.communicate(timeout=300)
    finally:
        server.ensure_running()
    assert run.returncode == 30  # [retcode] task_failed
    port = server.port()
    assert f"cannot connect to postgresql+psycopg2://postgres@127.0.0.1:{port}/" in stderr
    assert date not in dated_load.loaded_dates(databases.warehouse, PIPELINE.marker, [date])

    assert_rerun_equals_clean_run(databases, date, large_source)


def test_readers_see_the_old_or_the_new_recommendations_never_a_mix(
    databases: Databases, large_source: pd.DataFrame
) -> None:
    import sqlalchemy as sa  # noqa: PLC0415

    newest = max(
        dated_load.loaded_dates(
            databases.warehouse, PIPELINE.marker, [REFERENCE + dt.timedelta(days=n) for n in range(10)]
        )
    )
    before = databases.warehouse_rows("SELECT count(*), max(recommendation_date) FROM recommendations")[0]
    date = newest + dt.timedelta(days=1)
    courses, ratings = demo.demo_data(N_RATINGS // 2, until=dt.date(2026, 11, 1), seed=7)
    demo.replace_source_tables(databases.source, courses, ratings)

    seen: list[tuple] = []
    stop = threading.Event()

    def poll() -> None:
        engine = sa.create_engine(databases.warehouse)
        with engine.connect() as connection:
            while not stop.is_set():
                row = connection.execute(
                    sa.text("SELECT count(*), min(recommendation_date), max(recommendation_date) FROM recommendations")
                ).one()
                connection.commit()
                seen.append(tuple(row))
        engine.dispose()

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        result = finish(date)
    finally:
        stop.set()
        reader.join()
    assert result.returncode == 0, result.stderr
    after = databases.warehouse_rows("SELECT count(*), max(recommendation_date) FROM recommendations")[0]
    allowed = {(before[0], before[1], before[1]), (after[0], after[1], after[1])}
    assert set(seen) <= allowed, set(seen) - allowed
    assert seen[0][1] == before[1] and seen[-1][1] == date and len(seen) > 10


def test_an_empty_source_never_replaces_the_recommendations_with_nothing(
    databases: Databases, large_source: pd.DataFrame
) -> None:
    current = databases.warehouse_rows("SELECT count(*), max(recommendation_date) FROM recommendations")
    databases.query(databases.source, "TRUNCATE rating")
    result = finish(REFERENCE + dt.timedelta(days=10))  # newer than every loaded date, and over
    assert result.returncode == 30
    assert "source table 'public.rating' has no rows" in result.stderr
    assert databases.warehouse_rows("SELECT count(*), max(recommendation_date) FROM recommendations") == current
