"""Lineage without a database: when it is on, what it costs off, the events' parts, and appends from many processes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO
from lineage_spec import validate
from openlineage.client.serde import Serde

import workflow
from workflow import lineage
from workflow.lineage import datasets, delivery, events

DAY = dt.date(2026, 11, 10)


@pytest.fixture
def no_client_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Remove every OPENLINEAGE variable and work in an empty folder with an empty home; return the folder."""
    for name in list(os.environ):
        if name.startswith("OPENLINEAGE"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_the_client_is_on_exactly_when_it_finds_a_configuration_of_its_own(
    no_client_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not lineage.client_configured()
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:5000")
    assert lineage.client_configured()
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert not lineage.client_configured()
    monkeypatch.delenv("OPENLINEAGE_DISABLED")
    monkeypatch.delenv("OPENLINEAGE_URL")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "console")
    assert lineage.client_configured()
    monkeypatch.delenv("OPENLINEAGE__TRANSPORT__TYPE")
    (no_client_settings / "openlineage.yml").write_text("transport:\n  type: console\n")
    assert lineage.client_configured()
    (no_client_settings / "openlineage.yml").rename(no_client_settings / "elsewhere.yml")
    assert not lineage.client_configured()
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(no_client_settings / "elsewhere.yml"))
    assert lineage.client_configured()


def test_the_settings_are_read_once_per_run(no_client_settings: Path, luigi_setting) -> None:
    lineage.reset()
    try:
        luigi_setting("lineage", "file", True)
        luigi_setting("lineage", "wait_s", 0.5)
        assert lineage.settings() == lineage.Settings(True, False, "course-recommendations", 0.5)
        luigi_setting("lineage", "file", False)
        assert lineage.settings().on  # cached: workers forked from this process inherit what it read
        lineage.reset()
        assert not lineage.settings().on
    finally:
        lineage.reset()


def test_lineage_off_costs_a_cached_check_and_never_imports_the_client(no_client_settings: Path) -> None:
    script = """
import datetime as dt, sys, time
import workflow
from workflow import lineage
task = workflow.ValidRatings(date=dt.date(2026, 11, 10))
started = time.perf_counter()
for _ in range(100_000):
    lineage.started(task)
    lineage.finished(task, {"status": "done"})
print(time.perf_counter() - started, any(name.startswith("openlineage") for name in sys.modules))
"""
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    seconds, imported = result.stdout.split()
    assert imported == "False"
    assert float(seconds) < 1.0  # 200,000 calls: a few microseconds at most each


def test_a_pipelines_run_id_is_the_same_for_every_task_of_its_date_and_starts_at_the_date() -> None:
    run_id = events.pipeline_run_id("ns", "courses", DAY)
    assert run_id == events.pipeline_run_id("ns", "courses", DAY)
    others = {events.pipeline_run_id("ns", "films", DAY), events.pipeline_run_id("ns", "courses", DAY, True),
              events.pipeline_run_id("ns", "courses", DAY + dt.timedelta(days=1)),
              events.pipeline_run_id("other", "courses", DAY)}  # fmt: skip
    assert run_id not in others and len(others) == 4
    parsed = uuid.UUID(run_id)
    assert parsed.version == 7
    assert parsed.int >> 80 == int(dt.datetime(2026, 11, 10, tzinfo=dt.timezone.utc).timestamp() * 1000)


def test_a_start_and_a_failure_event_follow_the_spec(luigi_setting) -> None:
    settings = lineage.Settings(file=True, client=False, namespace="course-recommendations", wait_s=2.0)
    task = workflow.ValidRatings(date=DAY)
    task.run_id, task.started_at = str(uuid.uuid4()), dt.datetime(2026, 11, 11, 1, tzinfo=dt.timezone.utc)
    start = json.loads(Serde.to_json(events.run_event(task, None, settings)))
    validate(start)
    assert (start["eventType"], start["run"]["runId"], start["job"]["name"]) == ("START", task.run_id,
                                                                               "courses.ValidRatings")  # fmt: skip
    assert [Path(i["name"]).name for i in start["inputs"]] == ["extracted_ratings.parquet", "cleaned_courses.parquet"]
    assert start["run"]["facets"]["nominalTime"] == {
        **start["run"]["facets"]["nominalTime"],
        "nominalStartTime": "2026-11-10T00:00:00+00:00", "nominalEndTime": "2026-11-11T00:00:00+00:00",
    }  # fmt: skip
    record = {"status": "failed", "finished_at": "2026-11-11T01:00:02.000+00:00", "run_id": task.run_id,
              "set_aside": {"unknown_course": 3, "superseded": 2}, "invalid_rows": 3, "invalid_share": 0.6,
              "error": "InvalidSourceDataError: ratings: 3 of 5 rows are invalid"}  # fmt: skip
    failed = json.loads(Serde.to_json(events.run_event(task, record, settings)))
    validate(failed)
    assert failed["eventType"] == "FAIL" and failed["run"]["runId"] == task.run_id
    assert failed["run"]["facets"]["errorMessage"]["message"] == record["error"]
    assert failed["run"]["facets"]["parent"]["run"] == start["run"]["facets"]["parent"]["run"]
    checks = {a["name"]: (a["success"], a["actual"]) for a in
              failed["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]}  # fmt: skip
    # the tests' luigi.cfg allows half the rows to be invalid; rows replaced by a newer copy break no rule
    assert checks == {"unknown_course": (False, "3"), "superseded": (True, "2"), "max_invalid_share": (False, "0.6")}
    assert "dataQualityAssertions" not in failed["inputs"][1].get("inputFacets", {})


def test_parquet_metrics_come_from_the_footers_of_a_file_or_a_folder_of_parts(tmp_path: Path) -> None:
    table = pa.table({
        "id": pa.array([1, None, 3, None, 5], pa.int64()),
        "name": pa.array(["a", "b", None, "d", "e"]),
        "tags": pa.array([[1], None, [], [2, None], None], pa.list_(pa.int64())),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=2)  # three row groups
    folder = tmp_path / "parts.parquet"
    folder.mkdir()
    pq.write_table(table.slice(0, 2), folder / "part-0.parquet")
    pq.write_table(table.slice(2), folder / "part-1.parquet")
    (folder / "_SUCCESS").touch()
    for path, files in ((tmp_path / "one.parquet", 1), (folder, 2)):
        metrics = datasets.parquet_metrics(path)
        assert (metrics.rowCount, metrics.fileCount) == (5, files)
        assert {name: column.nullCount for name, column in metrics.columnMetrics.items()} == {"id": 2, "name": 1}
        assert metrics.bytes == sum(part.stat().st_size for part in path.glob("*.parquet")) or path.is_file()
        statistics = datasets.parquet_statistics(path)
        assert (statistics.rowCount, statistics.fileCount) == (5, files)
        schema = datasets.parquet_schema(path)
        assert [(field.name, field.type) for field in schema.fields] == [
            ("id", "int64"), ("name", "string"), ("tags", "list<element: int64>")
        ]  # fmt: skip


def _append_lines(path: str, writer: int) -> None:
    line = json.dumps({"writer": writer, "padding": "x" * 50_000})
    for _ in range(60):
        delivery.append_line(Path(path), line)


def test_processes_appending_at_once_leave_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "lineage" / "2026-11-10.jsonl"
    context = multiprocessing.get_context("fork")  # as luigi's workers are
    writers = [context.Process(target=_append_lines, args=(str(path), writer)) for writer in range(6)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
    lines = path.read_text().splitlines()
    assert sorted(json.loads(line)["writer"] for line in lines) == sorted(list(range(6)) * 60)


def test_once_the_backend_failed_the_run_sends_it_nothing_more(caplog: pytest.LogCaptureFixture) -> None:
    lineage.reset()
    try:
        settings = lineage.Settings(file=False, client=True, namespace="ns", wait_s=2.0)
        task = workflow.CleanedCourses(date=DAY)
        task.run_id, task.started_at = str(uuid.uuid4()), dt.datetime.now(dt.timezone.utc)
        lineage.undelivered_file().touch()  # as a worker of this run leaves it
        with caplog.at_level(logging.INFO, logger="luigi-interface.workflow.lineage"):
            delivery.deliver(events.run_event(task, None, settings), DAY, settings)
        assert "START of courses.CleanedCourses not delivered: the OpenLineage backend failed earlier" in caplog.text
        assert delivery._client is None  # no client was even made
    finally:
        lineage.reset()
    assert not lineage.undelivered_file().exists()
