"""Retention end to end: 10 dates of both pipelines loaded through luigid, `retain --keep-days 3`, then a backfill."""

from __future__ import annotations

import datetime as dt
import fcntl
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import luigi
import pytest
import sqlalchemy as sa
from conftest import Databases
from luigi.tools.range import RangeDaily

from workflow import cli, databases, retention, scheduler
from workflow.core import outputs
from workflow.daily import DailyPipelines
from workflow.paths import scheduler_dir
from workflow.pipelines import films
from workflow.pipelines.courses import demo
from workflow.pipelines.films import demo as film_demo

YESTERDAY = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
DATES = [YESTERDAY - dt.timedelta(days=offset) for offset in range(9, -1, -1)]  # the 10 dates up to yesterday
KEPT, REMOVED = DATES[-3:], DATES[:-3]
DRY = "dry run, nothing removed: "


@pytest.fixture(autouse=True)
def quick_workers(luigi_setting: Callable[..., None]) -> None:
    """Make idle workers ask for work again after 0.1 s, not luigi's 1 to 6 s: the dates' chains run back to back."""
    luigi_setting("worker", "wait_interval", 0.1)
    luigi_setting("worker", "wait_jitter", 0)


@pytest.fixture
def luigid(clean: Databases) -> Iterator[int]:
    """Start the project's luigid on a free port, its saved state and task history empty, and stop it after the test
    (its state forgotten: other tests' luigid must not find this test's dates done)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved_state = scheduler_dir() / "state.pickle"
    saved_state.unlink(missing_ok=True)  # tasks of these dates that other tests ran: not done for this one
    scheduler.start(port)
    try:
        luigid_query("TRUNCATE task_events, task_parameters, tasks")  # other tests' tasks: not this test's dates
        yield port
    finally:
        scheduler.stop()
        saved_state.unlink(missing_ok=True)


@pytest.fixture
def sources(clean: Databases) -> Databases:
    """Small demo sources for both pipelines, rated and rented up to yesterday, and no film tables in the warehouse."""
    clean.query(clean.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    catalogue, ratings = demo.demo_data(3_000, until=YESTERDAY, seed=5)
    demo.replace_source_tables(clean.source, catalogue, ratings)
    film_demo.replace_film_tables(databases.url_of(films.PIPELINE.source), 2_000, until=YESTERDAY, seed=5)
    return clean


def luigid_query(statement: str) -> list[tuple]:
    """Return the rows of a statement run on luigid's task history database."""
    engine = sa.create_engine(databases.embedded_server().url(scheduler.TASK_HISTORY_DATABASE))
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def run_dates(first: dt.date, last: dt.date, **scheduler_options: object) -> None:
    """Run every pipeline of the dates first to last, as the daily cron's RangeDaily does."""
    task = RangeDaily(of=DailyPipelines, start=first, stop=last + dt.timedelta(days=1), days_back=10_000)
    result = luigi.build([task], workers=4, detailed_summary=True, **scheduler_options)
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text


def retain(capsys: pytest.CaptureFixture, *arguments: str) -> list[str]:
    """Return the lines `python -m workflow retain` prints (run in this process)."""
    assert cli.main(["retain", *arguments]) == 0
    return capsys.readouterr().out.splitlines()


def rows_by_date(db: Databases) -> dict[str, dict[dt.date, list[tuple]]]:
    """Return each pipeline's warehouse rows by date, and the dates of its load rows and of the courses partitions."""
    courses = db.warehouse_rows(
        "SELECT recommendation_date, user_id, course_id, rating, rank FROM daily_recommendations ORDER BY 1, 2, 5"
    )
    film_rows = db.warehouse_rows("SELECT * FROM store.film_daily ORDER BY load_date, film_id")
    by_date: dict[str, dict[dt.date, list[tuple]]] = {"courses": {}, "films": {}}
    for name, rows in (("courses", courses), ("films", film_rows)):
        for row in rows:
            by_date[name].setdefault(row[0], []).append(row)
    return by_date


def loaded(db: Databases) -> dict[str, list[dt.date]]:
    """Return the dates of each pipeline's load rows, of the courses partitions and of the run history."""
    partitions = db.warehouse_rows(
        "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid"
        " WHERE inhparent = 'daily_recommendations'::regclass ORDER BY 1"
    )
    return {
        "courses": [
            date for (date,) in db.warehouse_rows("SELECT recommendation_date FROM recommendation_loads ORDER BY 1")
        ],
        "films": [date for (date,) in db.warehouse_rows("SELECT load_date FROM store.film_loads ORDER BY 1")],
        "partitions": [dt.datetime.strptime(name[-8:], "%Y%m%d").date() for (name,) in partitions],
        "runs": [date for (date,) in db.warehouse_rows("SELECT DISTINCT run_date FROM workflow.task_runs ORDER BY 1")],
    }


def current(db: Databases) -> tuple[list[tuple], list[tuple]]:
    """Return the current recommendations of both pipelines: the `recommendations` view and store.film."""
    return (
        db.warehouse_rows("SELECT * FROM recommendations ORDER BY user_id, rank"),
        db.warehouse_rows("SELECT * FROM store.film ORDER BY film_id"),
    )


def files_of(output: Path) -> dict[str, int]:
    """Return every file under the output root that belongs to a date (its folder, lineage, waiting records): sizes."""
    found = [path for path in output.glob("20*/**/*") if path.is_file() and path.name != outputs.LOCK_NAME]
    found += [*output.glob("lineage/*.jsonl"), *output.glob("history-pending/*.json")]
    return {str(path.relative_to(output)): path.stat().st_size for path in found}


def date_of(relative: str) -> dt.date:
    """Return the date a file of files_of() belongs to (the test names waiting records and lineage files by date)."""
    folder, *rest = Path(relative).parts
    return dt.date.fromisoformat(rest[-1][:10] if folder in ("lineage", "history-pending") else folder)


def expected_lines(db: Databases) -> list[str]:
    """Return the lines retention should print for the removed dates, from what the warehouse and output hold now."""
    rows = rows_by_date(db)
    runs = dict(db.warehouse_rows("SELECT run_date, count(*) FROM workflow.task_runs GROUP BY 1"))
    tasks = {
        dt.date.fromisoformat(value): n
        for value, n in luigid_query("SELECT value, count(*) FROM task_parameters WHERE name = 'date' GROUP BY 1")
    }
    files = files_of(db.output)
    lines = [f"keeping the 3 date(s) {KEPT[0]} to {YESTERDAY} (UTC); 7 older date(s) found"]
    for date in REMOVED:
        sizes = [size for path, size in files.items() if date_of(path) == date]
        lines.append(
            f"{date}: courses {len(rows['courses'][date]):,} rows, films {len(rows['films'][date]):,} rows; "
            f"{runs[date]:,} run(s) of the run history; {tasks[date]:,} luigid task(s); "
            f"{len(sizes):,} file(s), {sum(sizes):,} bytes"
        )
    return lines


def test_retention_keeps_the_3_newest_dates_and_a_backfill_recomputes_a_removed_one_exactly(
    sources: Databases, luigid: int, capsys: pytest.CaptureFixture
) -> None:
    started = time.monotonic()
    run_dates(DATES[0], DATES[-1], scheduler_host="127.0.0.1", scheduler_port=luigid)
    loading = time.monotonic() - started
    assert loaded(sources) == {"courses": DATES, "films": DATES, "partitions": DATES, "runs": DATES}
    # A run record waiting for the warehouse, and a lineage file, of a removed date and of a kept one.
    pending, lineage = sources.output / "history-pending", sources.output / "lineage"
    pending.mkdir()
    lineage.mkdir()
    for date in (REMOVED[2], KEPT[0]):
        record = next((outputs.date_dir(date) / "runs").glob("*.json"))
        shutil.copy(record, pending / f"{date}.json")
        (lineage / f"{date}.jsonl").write_text('{"eventType": "COMPLETE"}\n')
    before_rows, before_current, before_files = rows_by_date(sources), current(sources), files_of(sources.output)
    expected = expected_lines(sources)
    capsys.readouterr()

    # A dry run says exactly what the run will remove, and removes nothing.
    dry = retain(capsys, "--keep-days", "3", "--dry-run")
    assert dry[0] == DRY + expected[0]
    assert dry[1:-1] == [DRY + line for line in expected[1:]]
    assert (rows_by_date(sources), current(sources), files_of(sources.output)) == (
        before_rows, before_current, before_files,
    )  # fmt: skip

    started = time.monotonic()
    lines = retain(capsys, "--keep-days", "3")
    seconds = time.monotonic() - started
    with capsys.disabled():  # shown with `pytest -s`
        print(f"\nloading 10 dates: {loading:.1f} s; retention: {seconds:.2f} s", *lines, sep="\n")
    assert lines == [line.removeprefix(DRY) for line in dry]
    assert lines[:-1] == expected
    assert lines[-1].startswith("total, 7 date(s): courses ")
    n_rows = sum(len(before_rows["courses"][date]) for date in REMOVED)
    assert f"courses {n_rows:,} rows, films {7 * 1000:,} rows;" in lines[-1]
    assert f"{sum(before_files.values()) - sum(files_of(sources.output).values()):,} bytes" in lines[-1]

    # Exactly the 3 newest dates remain: in the warehouse, under output/, in the run history and luigid's history.
    assert loaded(sources) == {"courses": KEPT, "films": KEPT, "partitions": KEPT, "runs": KEPT}
    assert {date: rows for date, rows in rows_by_date(sources)["courses"].items()} == {
        date: before_rows["courses"][date] for date in KEPT
    }
    assert sorted(rows_by_date(sources)["films"]) == KEPT
    assert {date_of(path) for path in files_of(sources.output)} == set(KEPT)
    assert sorted(path.name for path in sources.output.glob("20*")) == [f"{date}" for date in KEPT]
    assert sorted(path.name for path in pending.iterdir()) == [f"{KEPT[0]}.json"]
    assert sorted(path.name for path in lineage.iterdir()) == [f"{KEPT[0]}.jsonl"]
    luigid_dates = luigid_query("SELECT DISTINCT value FROM task_parameters WHERE name = 'date' ORDER BY 1")
    assert [dt.date.fromisoformat(value) for (value,) in luigid_dates] == KEPT
    assert luigid_query("SELECT count(*) FROM task_events WHERE task_id NOT IN (SELECT id FROM tasks)") == [(0,)]
    assert current(sources) == before_current

    # Idempotent: a second run finds nothing to remove.
    assert retain(capsys, "--keep-days", "3") == [
        f"keeping the 3 date(s) {KEPT[0]} to {YESTERDAY} (UTC); no date before {KEPT[0]}: nothing to remove"
    ]

    # A backfill over the removed dates recomputes them, as of their dates, to exactly the rows they had.
    run_dates(REMOVED[0], REMOVED[-1], local_scheduler=True)
    assert rows_by_date(sources) == before_rows
    assert current(sources) == before_current


def test_retention_keeps_the_newest_loaded_date_and_skips_a_date_a_run_is_using(
    sources: Databases, luigid: int, capsys: pytest.CaptureFixture, luigi_setting: Callable[..., None]
) -> None:
    old = DATES[:3]  # all three older than the 3 dates kept
    run_dates(old[0], old[-1], scheduler_host="127.0.0.1", scheduler_port=luigid)
    with open(outputs.date_dir(old[0]) / outputs.LOCK_NAME) as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)  # as a run of the date holds it
        lines = retain(capsys, "--keep-days", "3")
    assert lines[0] == f"keeping the 3 date(s) {KEPT[0]} to {YESTERDAY} (UTC); 3 older date(s) found"
    assert lines[1] == f"{old[0]}: skipped, a run of it is using {outputs.date_dir(old[0])}"
    assert lines[2].startswith(f"{old[1]}: courses ") and " films 1,000 rows;" in lines[2]
    assert lines[3] == f"{old[2]}: kept, the newest date courses and films loaded (the current one)"
    assert lines[4].startswith("total, 1 date(s): ")
    assert loaded(sources) == {"courses": [old[0], old[2]], "films": [old[0], old[2]],
                               "partitions": [old[0], old[2]], "runs": [old[0], old[2]]}  # fmt: skip

    # With no --keep-days, [retention] keep_days decides: 0 is off; 1 removes the date no run uses any more.
    assert retain(capsys) == ["retention is off ([retention] keep_days is 0 and no --keep-days): nothing removed"]
    luigi_setting("retention", "keep_days", 1)
    lines = retain(capsys)
    assert [line.split(":")[0] for line in lines[1:]] == [f"{old[0]}", f"{old[2]}", "total, 1 date(s)"]
    assert loaded(sources)["courses"] == loaded(sources)["films"] == [old[2]]
    assert sorted(path.name for path in sources.output.glob("20*")) == [f"{old[2]}"]
    assert list(retention.retain(1, dry_run=True))[-2].startswith(DRY + f"{old[2]}: kept, the newest date")
