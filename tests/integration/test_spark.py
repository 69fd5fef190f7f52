"""The Spark engine end to end: on local[2] and on a standalone cluster, the graph loads the pandas engine's rows.

Each run is a `luigi` command of its own (a JVM per run), as a user runs it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, SHARED, Databases, frame
from engines import require_spark
from test_operations import luigid  # noqa: F401  (the luigid fixture)

from workflow.io.parquet import read_frame
from workflow.pipelines.courses import demo

DAY = dt.date(2026, 11, 20)
LUIGI = str(Path(sys.executable).with_name("luigi"))
STEPS = ["cleaned_courses", "valid_ratings", "average_course_ratings", "courses_to_recommend", "top_recommendations"]


@pytest.fixture(autouse=True)
def spark_here() -> None:
    require_spark()


def run(engine: str, *, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run RecommendationsTask for DAY on an engine (one worker: its tasks share one Spark session)."""
    return subprocess.run(
        [LUIGI, "--module", "workflow", "RecommendationsTask", "--date", f"{DAY}", "--local-scheduler",
         "--workers", "1", "--engine-name", engine],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=timeout,
        env={**os.environ, "SPARK_MASTER": "local[2]", **(env or {})},
    )  # fmt: skip


def loaded(databases: Databases) -> list[tuple]:
    return databases.warehouse_rows(
        "SELECT user_id, rank, course_id, rating FROM daily_recommendations WHERE recommendation_date = :date "
        "ORDER BY user_id, rank",
        date=DAY,
    )


def quarantined(databases: Databases) -> list[tuple]:
    """Return the day's quarantined ratings as sorted tuples (missing values as None), whatever wrote them."""
    table = read_frame(databases.output / f"{DAY}" / "quarantined_ratings.parquet").astype(object)
    rows = [tuple(None if pd.isna(value) else value for value in row) for row in table.itertuples(index=False)]
    return sorted(rows, key=repr)


def forget(databases: Databases) -> None:
    """Forget the day: its targets and its load, as `python -m workflow invalidate` does."""
    subprocess.run([sys.executable, "-m", "workflow", "invalidate", "--date", f"{DAY}"], cwd=REPO, check=True)


def noisy_demo(databases: Databases, n_ratings: int) -> None:
    """Load demo data shaped like real data: repeated ratings, NULLs, unknown courses, a large id, mixed case."""
    courses, ratings = demo.demo_data(n_ratings, until=DAY)
    stamp = pd.Timestamp(f"{DAY} 08:00", tz="UTC")
    first = ratings.iloc[0]
    noise = frame(
        [
            (first.user_id, first.course_id, 1.0, stamp),  # a re-rating: the later copy wins
            (first.user_id, first.course_id, 2.0, stamp),  # ... tied with another: both set aside
            (None, first.course_id, 4.0, stamp), (7, 999_999, 4.0, stamp), (8, first.course_id, 9.0, stamp),
            (2_000_000_000, first.course_id, 5.0, stamp), (9, first.course_id, 3.0, None),
        ],
        "user_id course_id rating rated_at",
    )  # fmt: skip
    ratings = pd.concat([ratings, noise], ignore_index=True).astype({"user_id": "Int64", "course_id": "Int64"})
    courses = courses.assign(programming_language=courses["programming_language"].str.upper().where(
        courses.index % 3 == 0, courses["programming_language"]))  # fmt: skip
    demo.replace_source_tables(databases.source, courses, ratings)


def test_spark_local_loads_the_pandas_engines_rows_and_quarantine(clean: Databases) -> None:
    noisy_demo(clean, 20_000)
    pandas_run = run("pandas")
    assert pandas_run.returncode == 0, pandas_run.stderr
    expected, expected_quarantine = loaded(clean), quarantined(clean)
    assert len(expected) > 5_000 and len(expected_quarantine) >= 6
    forget(clean)

    spark_run = run("spark")
    assert spark_run.returncode == 0, spark_run.stderr[-3000:]
    assert loaded(clean) == expected  # rating bit for bit: float8 compared exactly
    assert quarantined(clean) == expected_quarantine
    for step in STEPS:  # each target a folder of part files, committed whole
        target = clean.output / f"{DAY}" / f"{step}.parquet"
        assert target.is_dir() and (target / "_SUCCESS").is_file(), step
    assert "Spark session" in spark_run.stderr and "UI at http://127.0.0.1:" in spark_run.stderr
    # The run history holds both engines' runs of the day, with the same figures.
    runs = clean.warehouse_rows(
        "SELECT engine, task, rows_in, rows_out, set_aside, invalid_rows, invalid_share FROM workflow.task_runs"
        " WHERE run_date = :date AND status = 'done'", date=DAY,
    )  # fmt: skip
    by_engine = {engine: sorted(row[1:] for row in runs if row[0] == engine) for engine in ("pandas", "spark")}
    assert len(by_engine["pandas"]) == 8 and by_engine["spark"] == by_engine["pandas"]


@pytest.mark.skipif(not (SHARED / "datasets" / "datacamp").exists(), reason="../shared/datasets/datacamp is absent")
def test_spark_local_loads_the_pandas_engines_rows_on_the_real_case_study_data(clean: Databases) -> None:
    from test_workflow import load_datacamp  # noqa: PLC0415

    load_datacamp(clean)
    assert run("pandas").returncode == 0
    expected = loaded(clean)
    forget(clean)
    spark_run = run("spark")
    assert spark_run.returncode == 0, spark_run.stderr[-3000:]
    assert loaded(clean) == expected and len(expected) > 100_000


def dated_targets(databases: Databases) -> list[str]:
    folder = databases.output / f"{DAY}"
    return sorted(path.name for path in folder.glob("*.parquet")) if folder.exists() else []


@pytest.mark.parametrize(
    ("env", "args_engine", "message"),
    [
        ({}, "flink", "unknown engine 'flink' (--engine-name): choose one of pandas, spark"),
        ({"JAVA_HOME": "/nonexistent"}, "spark", "the Spark engine needs Java 17 or newer"),
    ],
)
def test_an_engine_that_cannot_start_fails_in_one_line_before_anything_is_computed(
    clean: Databases, env: dict[str, str], args_engine: str, message: str
) -> None:
    noisy_demo(clean, 1_000)
    result = run(args_engine, env=env)
    assert result.returncode == 30
    assert message in result.stderr and "Traceback" not in result.stderr
    assert dated_targets(clean) == []


def test_an_unknown_engine_in_the_environment_is_named_with_where_it_came_from(clean: Databases) -> None:
    noisy_demo(clean, 1_000)
    result = subprocess.run(
        [LUIGI, "--module", "workflow", "RecommendationsTask", "--date", f"{DAY}", "--local-scheduler"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "WORKFLOW_ENGINE": "Dask"},
    )  # fmt: skip
    assert result.returncode == 30
    assert "unknown engine 'dask' (WORKFLOW_ENGINE): choose one of pandas, spark" in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_master_fails_quickly_in_one_line_and_writes_nothing(clean: Databases) -> None:
    noisy_demo(clean, 1_000)
    master = f"spark://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run("spark", env={"SPARK_MASTER": master})
    assert time.monotonic() - started < 60
    assert result.returncode == 30
    assert f"the Spark master {master} is unreachable" in result.stderr and "Traceback" not in result.stderr
    assert dated_targets(clean) == []


def test_a_run_killed_during_a_spark_step_leaves_no_partial_target_and_the_rerun_equals_a_clean_run(
    clean: Databases,
) -> None:
    noisy_demo(clean, 300_000)
    assert run("pandas").returncode == 0
    expected = loaded(clean)
    forget(clean)

    folder = clean.output / f"{DAY}"
    command = [LUIGI, "--module", "workflow", "RecommendationsTask", "--date", f"{DAY}", "--local-scheduler",
               "--workers", "1", "--engine-name", "spark"]  # fmt: skip
    env = {**os.environ, "SPARK_MASTER": "local[2]"}
    killed = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline, writing = time.monotonic() + 300, []
    while not writing and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # a Spark step is writing its part files into a temporary folder
        writing = [path for step in STEPS[1:] for path in folder.glob(f".{step}.parquet.tmp-*")]
    os.killpg(killed.pid, signal.SIGKILL)  # the luigi process and its Spark JVM
    killed.wait()
    assert writing, "no Spark step was caught writing"
    step = writing[0].name.split(".parquet")[0].lstrip(".")
    assert not (folder / f"{step}.parquet").exists()  # the step's target never appeared
    for target in folder.glob("*.parquet"):  # the targets that did appear are whole
        assert target.is_file() or (target / "_SUCCESS").is_file(), target

    rerun = run("spark")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert loaded(clean) == expected
    assert not [path for path in folder.rglob("*.tmp-*")]  # the killed run's temporary folder was removed


def test_the_graph_on_a_standalone_cluster_with_two_workers_loads_the_pandas_engines_rows(
    clean: Databases, tmp_path: Path
) -> None:
    from workflow.devspark import cluster  # noqa: PLC0415

    noisy_demo(clean, 20_000)
    assert run("pandas").returncode == 0
    expected = loaded(clean)
    forget(clean)
    state = tmp_path / "spark"
    try:
        started = cluster.start(state, workers=2, worker_memory="1g", worker_cores=1)
        result = run("spark", env={"SPARK_MASTER": started.master_url})
        assert result.returncode == 0, result.stderr[-3000:]
        assert loaded(clean) == expected
        # The work was done by executors, processes of the two workers: each left its log in the work folder (a
        # third appears when a worker replaces an executor it lost, as a loaded machine makes happen).
        assert len(list((state / "work").glob("app-*/*/stderr"))) >= 2
    finally:
        cluster.stop(state)
        shutil.rmtree(state, ignore_errors=True)


def test_the_jdbc_extract_reads_in_ranges_what_copy_reads_and_keeps_the_password_out_of_the_url(
    clean: Databases, tmp_path: Path
) -> None:
    from workflow.devspark import jdbc  # noqa: PLC0415
    from workflow.engines.spark_jdbc import jdbc_url  # noqa: PLC0415
    from workflow.errors import WorkflowError  # noqa: PLC0415

    try:
        jdbc.jdbc_jar() or jdbc.fetch_jdbc_jar()  # Debian's package, unpacked under the output root without root
    except WorkflowError as error:
        pytest.skip(f"no PostgreSQL JDBC driver here and none could be fetched: {error}")
    address, properties = jdbc_url("postgresql://reader:s3cret@127.0.0.1:5433/app?sslmode=prefer")
    assert address == "jdbc:postgresql://127.0.0.1:5433/app?sslmode=prefer" and "s3cret" not in address
    assert properties["password"] == "s3cret" and properties["user"] == "reader"

    noisy_demo(clean, 20_000)
    assert run("pandas").returncode == 0
    expected, expected_quarantine = loaded(clean), quarantined(clean)
    copied = read_frame(clean.output / f"{DAY}" / "extracted_ratings.parquet")
    forget(clean)
    settings = tmp_path / "luigi.cfg"
    settings.write_text(
        Path(os.environ["LUIGI_CONFIG_PATH"]).read_text() + "[spark]\nextract = jdbc\njdbc-partitions = 4\n"
    )
    result = run("spark", env={"LUIGI_CONFIG_PATH": str(settings)})
    assert result.returncode == 0, result.stderr[-3000:]
    extracted = clean.output / f"{DAY}" / "extracted_ratings.parquet"
    assert extracted.is_dir() and len(list(extracted.glob("part-*.parquet"))) >= 2  # ranges read apart (empty: no file)
    by_jdbc = read_frame(extracted)
    key = ["user_id", "course_id", "rated_at", "rating"]
    pd.testing.assert_frame_equal(
        by_jdbc.sort_values(key, na_position="first").reset_index(drop=True),
        copied.sort_values(key, na_position="first").reset_index(drop=True),
        check_dtype=False,
    )
    assert loaded(clean) == expected and quarantined(clean) == expected_quarantine


def test_spark_tasks_show_the_spark_ui_as_their_tracking_url_in_luigid(clean: Databases, luigid: int) -> None:  # noqa: F811
    noisy_demo(clean, 2_000)
    result = subprocess.run(
        [LUIGI, "--module", "workflow", "RecommendationsTask", "--date", f"{DAY}", "--scheduler-host", "127.0.0.1",
         "--scheduler-port", str(luigid), "--workers", "1", "--engine-name", "spark"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=600,
        env={**os.environ, "SPARK_MASTER": "local[2]"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    query = urllib.parse.quote(json.dumps({"status": "DONE"}))
    with urllib.request.urlopen(f"http://127.0.0.1:{luigid}/api/task_list?data={query}", timeout=10) as response:
        tasks = json.load(response)["response"].values()
    tracking = {task["name"]: task.get("tracking_url") for task in tasks if f"date={DAY}" in task["display_name"]}
    for step in ("CleanedCourses", "ValidRatings", "AverageCourseRatings", "CoursesToRecommend", "TopRecommendations"):
        assert (tracking.get(step) or "").startswith("http://127.0.0.1:"), tracking
