"""Security: least-privilege roles with passwords, passwords kept out of every output, names from config quoted."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import luigi
import pytest
from conftest import REPO, Databases
from sqlalchemy.engine import make_url
from test_workflow import COURSES, EXPECTED, RATINGS, daily_rows

import workflow
from workflow import devdb
from workflow.core import dated_load
from workflow.databases import url_of
from workflow.errors import DatabaseUnavailableError, SourceDataError
from workflow.io import extract
from workflow.pipelines import films
from workflow.pipelines.courses import PIPELINE, demo, rules, schemas, warehouse
from workflow.pipelines.films import demo as film_demo

LOADER_PASSWORD = "Lo4der-s3cret-7f3a"
READER_PASSWORD = "Re4der-s3cret-91bc"
EXTRACTOR_PASSWORD = "Extr4ct-s3cret-c0de"


def psql(url: str, script: str, **variables: str) -> None:
    """Run a psql script file on the database at `url` with psql variables."""
    parsed = make_url(url)
    command = [str(devdb.find_bindir() / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h", parsed.host,
               "-p", str(parsed.port), "-U", parsed.username, "-d", parsed.database, "-f", script]  # fmt: skip
    for name, value in variables.items():
        command[1:1] = ["-v", f"{name}={value}"]
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def with_role(url: str, role: str, password: str) -> str:
    return make_url(url).set(username=role, password=password).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def roles(databases: Databases) -> dict[str, str]:
    """Create the roles of config/*_grants.sql (once: roles belong to the whole server) and return their URLs."""
    if os.environ.get("SOURCE_DATABASE_URL"):
        pytest.skip("creates roles on the embedded server only")
    demo.replace_source_tables(databases.source, COURSES, RATINGS.astype("Int64"))  # the grants name its tables
    # A new warehouse: the grants make the film pipeline's and the run history's schemas for the loader.
    databases.query(databases.warehouse, "DROP SCHEMA IF EXISTS store CASCADE; DROP SCHEMA IF EXISTS workflow CASCADE")
    psql(databases.warehouse, str(REPO / "config" / "warehouse_grants.sql"),
         loader_password=LOADER_PASSWORD, reader_password=READER_PASSWORD)  # fmt: skip
    psql(databases.source, str(REPO / "config" / "source_grants.sql"), reader_password=EXTRACTOR_PASSWORD)
    return {
        "source": with_role(databases.source, "recommendations_extractor", EXTRACTOR_PASSWORD),
        "loader": with_role(databases.warehouse, "recommendations_loader", LOADER_PASSWORD),
        "reader": with_role(databases.warehouse, "recommendations_reader", READER_PASSWORD),
    }


def test_the_workflow_runs_with_least_privilege_roles_and_no_password_leaks_anywhere(
    clean: Databases, roles: dict[str, str]
) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    clean.query(clean.source, "GRANT SELECT ON courses, rating TO recommendations_extractor")  # tables were recreated
    film_demo.replace_film_tables(url_of(films.PIPELINE.source), 500, until=dt.date(2026, 11, 24), seed=3)
    environment = {**os.environ, "SOURCE_DATABASE_URL": roles["source"], "DWH_DATABASE_URL": roles["loader"]}
    luigi_bin = os.path.join(os.path.dirname(sys.executable), "luigi")
    result = subprocess.run(
        [luigi_bin, "--module", "workflow", "DailyPipelines", "--date", "2026-11-24", "--local-scheduler"],
        cwd=REPO, env=environment, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert daily_rows(clean) == EXPECTED
    assert "recommendations_loader:***@" in result.stderr  # the log names the warehouse, password hidden
    # Both pipelines loaded and every task run went into the run history (none left waiting in a file); the
    # reader reads them all.
    recorded = "SELECT pipeline, count(*) FROM workflow.task_runs WHERE status = 'done' GROUP BY 1 ORDER BY 1"
    runs = clean.query(roles["reader"], recorded)
    assert [pipeline for pipeline, _ in runs] == ["courses", "films"] and all(n >= 4 for _, n in runs), runs
    assert not list((clean.output / "history-pending").glob("*.json"))
    [(films_loaded,)] = clean.query(roles["reader"], "SELECT count(*) FROM store.film")
    assert films_loaded == clean.query(clean.warehouse, "SELECT n_films FROM store.film_loads")[0][0] > 0

    # A failure's message must not show it either.
    clean.query(clean.source, "DROP TABLE rating")
    failed = subprocess.run(
        [luigi_bin, "--module", "workflow", "RecommendationsTask", "--date", "2026-11-23", "--local-scheduler"],
        cwd=REPO, env=environment, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 30 and "recommendations_extractor:***@" in failed.stderr

    for password in (LOADER_PASSWORD, EXTRACTOR_PASSWORD):
        for output in (result.stdout, result.stderr, failed.stdout, failed.stderr):
            assert password not in output
        for path in clean.output.rglob("*"):
            if path.is_file() and "postgres" not in path.parts:  # the server's own files hold only hashes
                assert password.encode() not in path.read_bytes(), path


def test_the_reader_role_runs_the_case_study_query_and_cannot_write(
    clean: Databases, roles: dict[str, str], tmp_path: Path
) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    clean.query(clean.source, "GRANT SELECT ON courses, rating TO recommendations_extractor")
    recommendations, courses = built_frames()
    path = tmp_path / "recommendations.parquet"  # the load streams a parquet file
    recommendations.to_parquet(path)
    warehouse.load_recommendations(roles["loader"], dt.date(2026, 11, 24), path, courses)
    assert [title for title, _ in warehouse.recommended_titles(roles["reader"], 10, 4.4)] == ["C", "B", "H"]
    with pytest.raises(Exception, match="permission denied"):
        clean.query(roles["reader"], "DELETE FROM courses")
    with pytest.raises(Exception, match="permission denied"):
        clean.query(roles["loader"], "SELECT * FROM pg_authid")
    with pytest.raises(DatabaseUnavailableError, match="permission denied for database"):
        dated_load.loaded_dates(
            with_role(clean.source, "recommendations_loader", LOADER_PASSWORD), PIPELINE.marker, [dt.date(2026, 11, 24)]
        )


def built_frames() -> tuple:
    """Return the top recommendations and cleaned courses of the small data set, computed by the pure rules."""

    courses, _ = rules.clean_courses(COURSES, "R")
    valid, _ = rules.validate_ratings(RATINGS, courses["course_id"], 1, 5)
    averages = rules.average_course_ratings(valid)
    candidates = rules.courses_to_recommend(valid, courses, averages)
    return rules.top_recommendations(candidates), courses


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("rating_table", 'rating"; DROP TABLE courses; --'),
        ("rating_table", "rating; DROP TABLE courses"),
        ("schema", 'public"; DROP TABLE courses; --'),
    ],
)
def test_a_table_or_schema_name_from_config_is_quoted_never_executed(
    clean: Databases, luigi_setting, option: str, value: str
) -> None:
    demo.replace_source_tables(clean.source, COURSES, RATINGS.astype("Int64"))
    luigi_setting("source", option, value)
    result = luigi.build(
        [workflow.ExtractedRatings(date=dt.date(2026, 11, 24))], local_scheduler=True, detailed_summary=True
    )
    assert result.status == luigi.LuigiStatusCode.FAILED
    assert clean.query(clean.source, "SELECT count(*) FROM courses") == [(len(COURSES),)]
    with pytest.raises(SourceDataError, match="does not exist"):
        extract.extract_table(clean.source, value if option == "rating_table" else "rating", schemas.RATING_SCHEMA,
                         schema=value if option == "schema" else None)  # fmt: skip
