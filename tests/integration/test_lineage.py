"""OpenLineage run events of both pipelines: valid against the spec, paired, counted, masked, and never in the way."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest
from conftest import REPO, Databases
from lineage_spec import validate
from sqlalchemy.engine import make_url
from test_workflow import COURSES, RATINGS

import workflow
from workflow import lineage
from workflow.core import outputs
from workflow.daily import DailyPipelines
from workflow.databases import url_of
from workflow.lineage import events
from workflow.pipelines import films
from workflow.pipelines.courses import demo
from workflow.pipelines.films import demo as film_demo
from workflow.rules.ratings import UNCOUNTED_REASONS

DAY = dt.date(2026, 11, 12)
PASSWORD = "L1neage-s3cret"
N_RECOMMENDATIONS = 13  # what test_workflow's small source gives
LUIGI = os.path.join(os.path.dirname(sys.executable), "luigi")
COURSE_JOBS = {
    "courses." + name
    for name in ("ExtractedCourses", "ExtractedRatings", "CleanedCourses", "ValidRatings", "AverageCourseRatings",
                 "CoursesToRecommend", "TopRecommendations", "RecommendationsTask")
}  # fmt: skip
# What DailyPipelines runs of the courses beside them: the offline evaluation of both methods, and its load.
EVALUATION_JOBS = {"courses.RecommendationQuality", "courses.RecommendationQualityTask"}
FILM_JOBS = {
    "films." + name
    for name in ("ExtractedFilms", "ExtractedRentals", "ExtractedInventory", "ExtractedFilmRatings", "FilmRentalRates",
                 "FilmRatings", "FilmRecommendations", "FilmsTask")
}  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_lineage() -> Iterator[None]:
    """Read the lineage settings afresh in each test (this process may have read them, off, in another test)."""
    lineage.reset()
    yield
    lineage.reset()


def read_events(date: dt.date = DAY) -> list[dict]:
    """Return the events the file transport wrote for the date, in order."""
    return [json.loads(line) for line in outputs.lineage_file(date).read_text().splitlines()]


def by_job(found: list[dict]) -> dict[str, list[dict]]:
    jobs = defaultdict(list)
    for event in found:
        jobs[event["job"]["name"]].append(event)
    return jobs


def assert_paired(found: list[dict], jobs: set[str]) -> None:
    """Check each job ran once: one START and one COMPLETE, under the same run id."""
    grouped = by_job(found)
    assert set(grouped) == jobs
    for name, pair in grouped.items():
        assert [event["eventType"] for event in pair] == ["START", "COMPLETE"], name
        assert len({event["run"]["runId"] for event in pair}) == 1, name


def dataset(event: dict, kind: str, name_ends: str) -> dict:
    [found] = [item for item in event[kind] if item["name"].endswith(name_ends)]
    return found


# --- sources ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_urls(databases: Databases) -> dict[str, str]:
    """Return the URLs of both sources and the warehouse for a role that logs in with a password."""
    films_url = url_of(films.PIPELINE.source)  # the embedded server creates the films database first
    if os.environ.get("SOURCE_DATABASE_URL"):  # configured URLs carry their own passwords
        return {"SOURCE_DATABASE_URL": databases.source, "DWH_DATABASE_URL": databases.warehouse,
                "FILMS_DATABASE_URL": films_url}  # fmt: skip
    databases.query(
        databases.warehouse,
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lineage_pw') THEN "
        f"CREATE ROLE lineage_pw LOGIN SUPERUSER PASSWORD '{PASSWORD}'; END IF; END $$",
    )
    urls = {"SOURCE_DATABASE_URL": databases.source, "DWH_DATABASE_URL": databases.warehouse,
            "FILMS_DATABASE_URL": films_url}  # fmt: skip
    return {
        name: make_url(url).set(username="lineage_pw", password=PASSWORD).render_as_string(hide_password=False)
        for name, url in urls.items()
    }


@pytest.fixture
def small_source(clean: Databases) -> Databases:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    return clean


@pytest.fixture
def both_sources(
    small_source: Databases, password_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Fill both sources, empty the film warehouse, and point every URL at the password role; return the URLs."""
    small_source.query(small_source.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    film_demo.replace_film_tables(url_of(films.PIPELINE.source), 4_000, until=DAY, seed=3)
    for name, url in password_urls.items():
        monkeypatch.setenv(name, url)
    return password_urls


# --- 1. every task run of both pipelines, through the file transport --------------------------------------------


def test_both_pipelines_emit_a_valid_start_and_complete_per_task_run_with_exact_counts(
    both_sources: dict[str, str], databases: Databases, luigi_setting
) -> None:
    luigi_setting("lineage", "file", True)
    assert luigi.build([DailyPipelines(date=DAY)], local_scheduler=True, workers=2)
    text = outputs.lineage_file(DAY).read_text()
    found = read_events()
    for event in found:
        validate(event)
    assert_paired(found, COURSE_JOBS | EVALUATION_JOBS | FILM_JOBS)
    assert PASSWORD not in text and "lineage_pw:***@" not in text  # no URL with its credentials at all

    # Parents: the date's run of each pipeline, the same in every task (forked processes included).
    for pipeline, jobs in (("courses", COURSE_JOBS | EVALUATION_JOBS), ("films", FILM_JOBS)):
        expected = events.pipeline_run_id("course-recommendations", pipeline, DAY)
        parents = {(e["run"]["facets"]["parent"]["run"]["runId"], e["run"]["facets"]["parent"]["job"]["name"])
                   for e in found if e["job"]["name"] in jobs}  # fmt: skip
        assert parents == {(expected, pipeline)}
    assert {e["run"]["facets"]["nominalTime"]["nominalStartTime"] for e in found} == {"2026-11-12T00:00:00+00:00"}
    assert {e["job"]["namespace"] for e in found} == {"course-recommendations"}

    completed = {name: pair[1] for name, pair in by_job(found).items()}
    check_parquet_outputs(completed)
    check_loads(completed, databases)
    check_sources(completed, databases)
    check_rating_quality(completed, databases)


def check_parquet_outputs(completed: dict[str, dict]) -> None:
    """Parquet outputs carry their footers' rows, the files' bytes and columns; each parquet input is an output."""
    outputs = {output["name"]: output for event in completed.values() for output in event["outputs"]}
    for name, event in completed.items():
        for output in event["outputs"]:
            if output["namespace"] == "file":
                statistics = output["outputFacets"]["outputStatistics"]
                assert statistics["rowCount"] == pq.ParquetFile(output["name"]).metadata.num_rows, name
                assert statistics["size"] == Path(output["name"]).stat().st_size
                assert [f["name"] for f in output["facets"]["schema"]["fields"]] == pq.read_schema(output["name"]).names
        assert all(item["name"] in outputs for item in event["inputs"] if item["namespace"] == "file"), name


def check_loads(completed: dict[str, dict], databases: Databases) -> None:
    """Loads write tables named database.schema.table in postgres://host:port; the first holds the date's rows."""
    warehouse = make_url(databases.warehouse)
    namespace = f"postgres://{warehouse.host}:{warehouse.port}"
    [(n_recommendations,)] = databases.warehouse_rows(
        "SELECT count(*) FROM daily_recommendations WHERE recommendation_date = :d", d=DAY
    )
    [(n_films,)] = databases.warehouse_rows("SELECT count(*) FROM store.film_daily WHERE load_date = :d", d=DAY)
    load = completed["courses.RecommendationsTask"]
    assert [(o["namespace"], o["name"]) for o in load["outputs"]] == [
        (namespace, f"{warehouse.database}.public.{table}")
        for table in ("daily_recommendations", "courses", "recommendation_loads")
    ]
    assert load["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == n_recommendations == N_RECOMMENDATIONS
    columns = [f["name"] for f in load["outputs"][0]["facets"]["schema"]["fields"]]
    assert columns == ["recommendation_date", "user_id", "course_id", "rating", "rank"]
    evaluation = completed["courses.RecommendationQualityTask"]  # both methods' quality figures: a row each
    assert [(o["namespace"], o["name"]) for o in evaluation["outputs"]] == [
        (namespace, f"{warehouse.database}.public.recommendation_quality")
    ]
    assert evaluation["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 2
    film_load = completed["films.FilmsTask"]
    assert film_load["outputs"][0]["name"] == f"{warehouse.database}.store.film_daily"
    assert film_load["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == n_films == 1000
    assert {i["name"].rsplit("/", 1)[-1] for i in film_load["inputs"]} == {
        "film_rental_rates.parquet", "film_ratings.parquet", "film_recommendations.parquet"
    }  # fmt: skip


def check_sources(completed: dict[str, dict], databases: Databases) -> None:
    """Extracts read their source table, named as the spec says and typed from information_schema."""
    source = make_url(databases.source)
    extracted = dataset(completed["courses.ExtractedRatings"], "inputs", ".public.rating")
    assert (extracted["namespace"], extracted["name"]) == (
        f"postgres://{source.host}:{source.port}", f"{source.database}.public.rating"
    )  # fmt: skip
    assert {f["name"] for f in extracted["facets"]["schema"]["fields"]} == {"user_id", "course_id", "rating"}
    film_source = dataset(completed["films.ExtractedFilms"], "inputs", ".public.film")
    types = {f["name"]: f["type"] for f in film_source["facets"]["schema"]["fields"]}
    assert types["special_features"] == "text[]" and types["rental_rate"] == "numeric"


def check_rating_quality(completed: dict[str, dict], databases: Databases) -> None:
    """The validated ratings carry their metrics from the footers, and one assertion per rule with its result."""
    ratings = dataset(completed["courses.ValidRatings"], "inputs", "extracted_ratings.parquet")
    metrics = ratings["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == len(RATINGS)
    assert metrics["columnMetrics"]["course_id"]["nullCount"] == int(RATINGS["course_id"].isna().sum()) == 1
    assert metrics["columnMetrics"]["user_id"]["nullCount"] == 0
    checks = {a["name"]: a for a in ratings["inputFacets"]["dataQualityAssertions"]["assertions"]}
    record = json.loads((databases.output / f"{DAY}" / "runs" / "valid_ratings.json").read_text())
    assert set(checks) == {*record["set_aside"], "max_invalid_share"}
    for reason, count in record["set_aside"].items():
        expected = (str(count), count == 0 or reason in UNCOUNTED_REASONS)
        assert (checks[reason]["actual"], checks[reason]["success"]) == expected
    assert sum(record["set_aside"].values()) >= 3 and not all(a["success"] for a in checks.values())
    share = checks["max_invalid_share"]
    assert (share["actual"], share["expected"], share["success"]) == (f"{record['invalid_share']:g}", "<= 0.5", True)
    film_ratings = completed["films.FilmRatings"]
    assert "dataQualityAssertions" in dataset(film_ratings, "inputs", "extracted_film_ratings.parquet")["inputFacets"]
    assert "dataQualityAssertions" not in dataset(film_ratings, "inputs", "film_rental_rates.parquet")["inputFacets"]


# --- 2. a real HTTP backend, configured as OpenLineage's client reads it ------------------------------------------


@contextmanager
def lineage_backend(delay_s: float = 0.0) -> Iterator[tuple[str, list[dict]]]:
    """Serve OpenLineage's HTTP API on a local port, answering each event after `delay_s`; yield its URL and the
    events it received."""
    received: list[dict] = []

    class Backend(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, **json.loads(body)})
            time.sleep(delay_s)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_backend_receives_a_start_and_a_complete_for_each_task(
    small_source: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    with lineage_backend() as (url, received):
        monkeypatch.setenv("OPENLINEAGE_URL", url)
        assert luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True, workers=2)
    assert {event["path"] for event in received} == {"/api/v1/lineage"}
    found = [{key: value for key, value in event.items() if key != "path"} for event in received]
    for event in found:
        validate(event)
    assert_paired(found, COURSE_JOBS)
    assert not outputs.lineage_file(DAY).exists()  # [lineage] file is off
    assert not any(name.startswith("OPENLINEAGE__") for name in os.environ)  # the client left no variables behind


# --- 3. a backend that is down or slow costs a run a few seconds ---------------------------------------------------


def closed_port() -> int:
    """Return a local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def luigi_run(**environment: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run the courses pipeline for DAY as a user does (two workers); return its result and its seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [LUIGI, "--module", "workflow", "RecommendationsTask", "--date", f"{DAY}", "--local-scheduler", "--workers",
         "2"], cwd=REPO, env={**os.environ, **environment}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return result, time.monotonic() - started


@pytest.mark.parametrize("backend", ["down", "answers after 30 s"])
def test_a_backend_down_or_slow_never_fails_or_stalls_the_run(small_source: Databases, backend: str) -> None:
    if backend == "down":
        result, seconds = luigi_run(OPENLINEAGE_URL=f"http://127.0.0.1:{closed_port()}")
        received: list[dict] = []
    else:
        with lineage_backend(delay_s=30) as (url, received):
            result, seconds = luigi_run(OPENLINEAGE_URL=url)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert seconds < 30, output
    assert small_source.warehouse_rows(
        "SELECT count(*) FROM daily_recommendations WHERE recommendation_date = :d", d=DAY
    ) == [(N_RECOMMENDATIONS,)]
    undelivered = [line for line in output.splitlines() if "not delivered" in line]
    assert undelivered and "no more events go to the OpenLineage backend in this run" in undelivered[0], output
    assert len(received) <= 2  # the first events of the two workers; none once the run knew the backend failed


# --- 4. failures ------------------------------------------------------------------------------------------------


def test_a_failed_task_emits_fail_with_its_error_message_password_masked(
    small_source: Databases, password_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch, luigi_setting
) -> None:
    luigi_setting("lineage", "file", True)
    monkeypatch.setenv("SOURCE_DATABASE_URL", password_urls["SOURCE_DATABASE_URL"])
    small_source.query(small_source.source, "DROP TABLE rating")
    assert not luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True, workers=2)
    text = outputs.lineage_file(DAY).read_text()
    found = read_events()
    for event in found:
        validate(event)
    failed = by_job(found)["courses.ExtractedRatings"]
    assert [event["eventType"] for event in failed] == ["START", "FAIL"]
    assert failed[0]["run"]["runId"] == failed[1]["run"]["runId"]
    error = failed[1]["run"]["facets"]["errorMessage"]
    assert error["programmingLanguage"] == "python"
    assert "source table 'public.rating' does not exist in postgresql+psycopg2://" in error["message"]
    if not os.environ.get("SOURCE_DATABASE_URL"):  # the fixture's role logs in with a password: masked
        assert "lineage_pw:***@127.0.0.1" in error["message"]
    assert PASSWORD not in text
    assert dataset(failed[1], "inputs", ".public.rating")["namespace"].startswith("postgres://")
    assert "courses.RecommendationsTask" not in by_job(found)  # never ran: its input failed


def test_too_many_invalid_ratings_fail_with_the_share_assertion_failed(small_source: Databases, luigi_setting) -> None:
    luigi_setting("lineage", "file", True)
    luigi_setting("rules", "max_invalid_share", 0.01)
    assert not luigi.build([workflow.RecommendationsTask(date=DAY)], local_scheduler=True, workers=2)
    found = read_events()
    for event in found:
        validate(event)
    [start, failed] = by_job(found)["courses.ValidRatings"]
    assert (start["eventType"], failed["eventType"]) == ("START", "FAIL")
    assert "InvalidSourceDataError" in failed["run"]["facets"]["errorMessage"]["message"]
    ratings = dataset(failed, "inputs", "extracted_ratings.parquet")
    checks = {a["name"]: a for a in ratings["inputFacets"]["dataQualityAssertions"]["assertions"]}
    assert (checks["max_invalid_share"]["expected"], checks["max_invalid_share"]["success"]) == ("<= 0.01", False)
    assert not [output for output in failed["outputs"] if output.get("outputFacets")]  # nothing written
