"""The recommendations server, started for real on 127.0.0.1 against the real warehouse loaded by the graph."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import REPO, Databases, empty, frame, headless_chromium
from sqlalchemy.engine import make_url

from workflow.server.settings import embedded_server

DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
COURSES = frame(
    [
        (1, "Intro to Python", "basics", "python"),
        (2, "Pandas: 'quoted' & <b>bold</b>", "frames", "Python"),
        (3, "Data visualisation é", "plots", " python "),
        (4, "R basics", "r", "r"),
        (5, "Tidyverse", "r", None),
        (6, "SQL joins", "sql", "sql"),
        (7, "Window functions", "sql", "SQL"),
        (8, "Statistics in Python", "stats", "python"),
    ],
    "course_id title description programming_language",
)
USERS = list(range(100, 124))
UNKNOWN_USER = 999_999
# The second day's predicted ratings are 2.667, 3.667, 3.833, 4.833 and 5.0: thresholds between and on them.
THRESHOLDS = [0, 3.7, 4.0, 4.5, 4.9, 5]
QUALITY = {1: 5, 2: 4, 3: 5, 4: 5, 5: 3, 6: 5, 7: 4, 8: 4}  # each course's usual rating
# The application's tables, as the pipeline reads them (rated_at: each day's extract takes the ratings made by its end).
SOURCE_SCHEMA = """
DROP TABLE IF EXISTS rating; DROP TABLE IF EXISTS courses;
CREATE TABLE courses (course_id integer, title text, description text, programming_language text);
CREATE TABLE rating (user_id integer, course_id integer, rating integer, rated_at timestamptz);
"""
# The case study's recommendations_for_user query (README, "Databases"), with the course ids and the rank breaking
# ties between equal ratings.
CASE_STUDY_QUERY = """
SELECT courses.course_id, title, rating FROM recommendations
INNER JOIN courses ON courses.course_id = recommendations.course_id
WHERE user_id=:user_id AND rating>:threshold
ORDER BY rating DESC, rank
"""


def stamped_ratings() -> pd.DataFrame:
    """Return ratings of the first day, and more on the second day that change its averages and users' picks."""
    rows = []
    for index, user in enumerate(USERS):
        for offset in range(1 + index % 3):
            course = 1 + (index * 5 + offset * 3) % 8
            rating = max(1, QUALITY[course] - ((index * 3 + offset + course) % 4 == 3) - ((index + course) % 5 == 4))
            rated_at = pd.Timestamp(DAYS[0], tz="UTC") + pd.Timedelta(hours=1 + index % 20)
            if index % 3 == 1 and offset == 0:
                rated_at += pd.Timedelta(days=1)  # made on the second day: not in the first day's extract
            rows.append((user, course, rating, rated_at))
    ratings = pd.DataFrame(rows, columns=["user_id", "course_id", "rating", "rated_at"])
    return ratings.drop_duplicates(["user_id", "course_id"]).reset_index(drop=True)


@dataclass
class Server:
    """A running server: its base URL, its log file, and the databases behind it."""

    base: str
    log: Path
    databases: Databases

    def get(self, path: str) -> tuple[int, object, dict[str, str]]:
        """Return the status, JSON body (or text) and headers of a GET request."""
        return self.request(path)

    def request(self, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple:
        """Return the status, JSON body (or text, or bytes when not UTF-8) and headers (lower-case names)."""
        request = urllib.request.Request(self.base + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, body, found = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, body, found = error.code, error.read(), error.headers
        headers = {name.lower(): value for name, value in found.items()}
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return status, body, headers
        is_json = headers.get("content-type", "").startswith("application/json") and method != "HEAD"
        return status, json.loads(text) if is_json else text, headers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment() -> dict[str, str]:
    """Return the server's environment: the session's output root, and SERVER_DATABASE_URL with real servers."""
    if os.environ.get("DWH_DATABASE_URL") and not os.environ.get("SERVER_DATABASE_URL"):
        pytest.skip("with DWH_DATABASE_URL, the server needs SERVER_DATABASE_URL (the reader role) to be set")
    return dict(os.environ)


def start_server(log: Path, port: int, arguments: list[str] | None = None) -> subprocess.Popen:
    """Start `python -m workflow.server` (or python with the arguments) on the port; return it once it accepts
    connections."""
    command = [sys.executable, *(arguments or ["-m", "workflow.server", "--port", str(port)])]
    process = subprocess.Popen(
        command, cwd=REPO, env=server_environment(), stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise AssertionError(f"the server did not start: {log.read_text()}")


def reader_existed(databases: Databases) -> bool:
    return bool(databases.warehouse_rows("SELECT 1 FROM pg_roles WHERE rolname = 'recommendations_reader'"))


@pytest.fixture(scope="module")
def server(databases: Databases) -> Iterator[Server]:
    """Load both days with the graph into an emptied warehouse, start the server on them, and stop it after."""
    empty(databases)
    databases.query(databases.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    fill_source(databases.source)
    luigi_bin = Path(sys.executable).parent / "luigi"
    for day in DAYS:  # the pipeline's own command (README, "Running it"): the server's tests need none of its modules
        command = [str(luigi_bin), "--module", "workflow", "RecommendationsTask", "--date", f"{day}",
                   "--local-scheduler"]  # fmt: skip
        run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr[-3000:]
    with serving(databases) as server:
        yield server


@contextmanager
def serving(databases: Databases) -> Iterator[Server]:
    """Start the server on the databases for the block, then stop it and leave the reader role as it was."""
    existed = reader_existed(databases)
    port = free_port()
    log = databases.output / f"server-{port}.log"
    process = start_server(log, port)
    try:
        yield Server(f"http://127.0.0.1:{port}", log, databases)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if not existed and not os.environ.get("SERVER_DATABASE_URL"):  # leave the server's roles as they were
            databases.query(
                databases.warehouse, "DROP OWNED BY recommendations_reader; DROP ROLE recommendations_reader"
            )


def fill_source(url: str) -> None:
    """Create the application's tables holding the courses and the two days' ratings."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(SOURCE_SCHEMA)
            insert = "INSERT INTO courses VALUES (:course_id, :title, :description, :programming_language)"
            connection.execute(sa.text(insert), COURSES.to_dict("records"))
            ratings = stamped_ratings().astype(object).to_dict("records")
            connection.execute(sa.text("INSERT INTO rating VALUES (:user_id, :course_id, :rating, :rated_at)"), ratings)
    finally:
        engine.dispose()


def expected(databases: Databases, user_id: int, threshold: float) -> list[dict]:
    """Return what the case study's query gives on the warehouse itself."""
    rows = databases.warehouse_rows(CASE_STUDY_QUERY, user_id=user_id, threshold=threshold)
    return [{"course_id": course_id, "title": title, "rating": rating} for course_id, title, rating in rows]


def test_a_users_recommendations_equal_the_case_study_query_on_the_warehouse(server: Server) -> None:
    compared = 0
    for user_id in USERS:
        for threshold in THRESHOLDS:
            status, body, headers = server.get(f"/api/users/{user_id}/recommendations?threshold={threshold}")
            if status == 404:  # a user of the first day alone, with nothing eligible
                assert expected(server.databases, user_id, 0) == []
                continue
            assert status == 200, body
            assert body == expected(server.databases, user_id, threshold), (user_id, threshold)
            assert headers["x-recommendation-date"] == f"{DAYS[1]}"
            compared += len(body)
    assert compared > 20
    status, body, _ = server.get("/api/users/100/recommendations")  # the default threshold is 4.5
    assert body == expected(server.databases, 100, 4.5)


def test_a_past_date_gives_that_dates_recommendations(server: Server) -> None:
    differing = 0
    for user_id in USERS:
        rows = server.databases.warehouse_rows(
            "SELECT d.course_id, c.title, d.rating FROM daily_recommendations d JOIN courses c USING (course_id)"
            " WHERE recommendation_date = :day AND user_id = :user AND rating > 4.0 ORDER BY rating DESC, rank",
            day=DAYS[0], user=user_id,
        )  # fmt: skip
        status, body, headers = server.get(f"/api/users/{user_id}/recommendations?threshold=4.0&date={DAYS[0]}")
        if status == 404:
            assert "unknown user" in body["detail"]
            continue
        assert body == [{"course_id": c, "title": t, "rating": r} for c, t, r in rows]
        assert headers["x-recommendation-date"] == f"{DAYS[0]}"
        differing += body != server.get(f"/api/users/{user_id}/recommendations?threshold=4.0")[1]
    assert differing > 0  # the two days differ: the date is really used


def test_an_unknown_user_or_a_date_never_loaded_gives_404_with_a_reason(server: Server) -> None:
    status, body, _ = server.get(f"/api/users/{UNKNOWN_USER}/recommendations")
    assert status == 404 and body == {
        "detail": f"unknown user {UNKNOWN_USER}: no recommendations for them on {DAYS[1]}"
    }
    status, body, _ = server.get("/api/users/100/recommendations?date=2020-01-01")
    assert status == 404
    assert body["detail"] == f"2020-01-01 was never loaded: loaded dates range from {DAYS[0]} to {DAYS[1]} (2 loaded)"


@pytest.mark.parametrize(
    "path",
    [
        "/api/users/abc/recommendations",
        "/api/users/1.5/recommendations",
        "/api/users/" + urllib.parse.quote("1;DROP TABLE courses") + "/recommendations",
        "/api/users/" + urllib.parse.quote("' OR 1=1 --") + "/recommendations",
        f"/api/users/{2**63}/recommendations",
        "/api/users/100/recommendations?threshold=" + urllib.parse.quote("' OR 1=1 --"),
        "/api/users/100/recommendations?threshold=" + urllib.parse.quote("4.5;DROP TABLE courses"),
        "/api/users/100/recommendations?threshold=nan",
        "/api/users/100/recommendations?threshold=inf",
        "/api/users/100/recommendations?date=" + urllib.parse.quote("2026-11-01' OR 1=1 --"),
        "/api/users/100/recommendations?date=2026-13-01",
        "/api/users/100/recommendations?date=2026-02-30",
        "/api/users/100/recommendations?date=yesterday",
        "/api/users/100/recommendations?date=0000-00-00",
        "/api/users/100/recommendations?date=2026-11-01T00:00:00",
        "/api/users/100/recommendations?date=20261101",
        f"/api/users/{-(2**63) - 1}/recommendations",
        "/api/loads?limit=0",
        "/api/loads?offset=-1",
        f"/api/loads?offset={2**63}",
        f"/api/loads?offset={10**30}",
        "/api/loads?limit=" + urllib.parse.quote("1; DELETE FROM courses"),
        "/api/films/" + urllib.parse.quote("1 OR 1=1"),
        f"/api/films/{2**63}",
        "/api/dashboard?date=2026-02-30",
        "/api/dashboard?date=" + urllib.parse.quote("2026-11-01'; DROP TABLE courses; --"),
        "/api/runs?days=0",
        "/api/runs?days=367",
        f"/api/runs?days={2**64}",
        "/api/runs?days=" + urllib.parse.quote("30 OR 1=1"),
    ],
)
def test_malformed_or_sql_looking_input_gives_422_with_the_declared_body_never_500(server: Server, path: str) -> None:
    before = warehouse_state(server.databases)
    status, body, headers = server.get(path)
    assert status == 422, body
    assert headers["content-type"] == "application/json"
    # FastAPI's HTTPValidationError, as /openapi.json declares it for every 422: a list of errors, each located.
    assert isinstance(body, dict) and set(body) == {"detail"} and isinstance(body["detail"], list) and body["detail"]
    for error in body["detail"]:
        assert {"loc", "msg", "type"} <= error.keys() and error["loc"][0] in ("path", "query"), error
    declared = server.get("/openapi.json")[1]["components"]["schemas"]["HTTPValidationError"]
    assert declared["properties"]["detail"]["type"] == "array"
    assert warehouse_state(server.databases) == before


def warehouse_state(databases: Databases) -> list[tuple]:
    """Return the row counts and the last load of the warehouse's tables: what a read-only server never changes."""
    return databases.warehouse_rows(
        "SELECT (SELECT count(*) FROM courses), (SELECT count(*) FROM daily_recommendations),"
        " (SELECT count(*) FROM recommendation_loads), (SELECT max(loaded_at) FROM recommendation_loads)"
    )


def test_the_load_history_is_newest_first_and_paginated(server: Server) -> None:
    status, body, _ = server.get("/api/loads")
    assert status == 200 and body["total"] == 2
    assert [load["date"] for load in body["loads"]] == [f"{DAYS[1]}", f"{DAYS[0]}"]
    counts = dict(server.databases.warehouse_rows(
        "SELECT recommendation_date, count(*) FROM daily_recommendations GROUP BY 1"))  # fmt: skip
    for load in body["loads"]:
        assert load["rows"] == counts[dt.date.fromisoformat(load["date"])]
        assert load["users"] > 0 and load["loaded_at"] and load["partial"] is False
        assert {"invalid_rows", "invalid_share", "duration_s"} <= load.keys()  # null until the warehouse has them
    _, second_page, _ = server.get("/api/loads?limit=1&offset=1")
    assert second_page["total"] == 2 and second_page["loads"] == body["loads"][1:]


def test_healthz_tells_the_newest_load_its_age_and_the_freshness_and_answers_head(server: Server) -> None:
    status, body, _ = server.get("/healthz")
    assert status == 200, body
    assert body["status"] == "ok" and body["newest_date"] == f"{DAYS[1]}" and body["loads"] == 2
    assert 0 <= body["newest_load_age_s"] < 3600
    [(loaded_at,)] = server.databases.warehouse_rows(
        "SELECT loaded_at FROM recommendation_loads WHERE recommendation_date = :day", day=DAYS[1]
    )
    assert dt.datetime.fromisoformat(body["newest_loaded_at"]) == loaded_at  # the newest date's own load
    # The days loaded are long past: the course pipeline is late; the film pipeline has loaded nothing.
    assert body["fresh"] is False and [(p["pipeline"], p["state"]) for p in body["pipelines"]] == [
        ("courses", "late"), ("films", "late")
    ]  # fmt: skip
    assert "warehouse" not in body and "recommendations_reader" not in json.dumps(body)  # no role, host or port
    for path in ("/healthz", "/api/loads", "/api/freshness", "/", "/vendor/plotly.min.js"):
        status, text, headers = server.request(path, method="HEAD")
        assert (status, text) == (200, ""), path
        assert headers["content-type"] == server.get(path)[2]["content-type"], path


def test_without_a_run_history_the_grants_hold_and_runs_and_freshness_answer_from_the_loads(server: Server) -> None:
    from workflow.server.settings import grant_reader  # noqa: PLC0415

    server.databases.query(server.databases.warehouse, "ALTER SCHEMA workflow RENAME TO workflow_away")
    try:
        if not os.environ.get("SERVER_DATABASE_URL"):
            grant_reader(server.databases.warehouse)  # the run history's relation is skipped while it does not exist
        status, body, _ = server.get("/api/runs?days=3")
        assert status == 200, body
        courses = body["pipelines"][0]
        assert [day["runs"] for day in courses["dates"]] == [0, 0, 0]
        assert {day["state"] for day in courses["dates"]} <= {"late", "missing"}  # its loads are older
        status, body, _ = server.get("/api/freshness")
        assert status == 200 and [p["state"] for p in body["pipelines"]] == ["late", "late"], body
        assert server.get("/healthz")[0] == 200
    finally:
        server.databases.query(server.databases.warehouse, "ALTER SCHEMA workflow_away RENAME TO workflow")


def test_the_dashboard_data_are_the_warehouses_aggregates(server: Server) -> None:
    status, body, _ = server.get("/api/dashboard")
    assert status == 200
    assert [load["date"] for load in body["loads"]] == [f"{DAYS[0]}", f"{DAYS[1]}"]
    current = server.databases.warehouse_rows("SELECT count(*) FROM recommendations")[0][0]
    assert sum(bucket["recommendations"] for bucket in body["ratings"]) == current
    assert sum(language["recommendations"] for language in body["languages"]) == current
    top = server.databases.warehouse_rows(
        "SELECT course_id, count(*) FROM recommendations GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1")  # fmt: skip
    assert (body["top_courses"][0]["course_id"], body["top_courses"][0]["recommendations"]) == top[0]


def test_a_film_without_the_film_pipeline_is_404_and_with_it_its_row_and_recommended_titles(server: Server) -> None:
    status, body, _ = server.get("/api/films/1")
    assert status == 404 and body == {"detail": "no film pipeline loaded (store.film does not exist)"}
    server.databases.query(server.databases.warehouse, """
        CREATE SCHEMA store;
        CREATE TABLE store.film (film_id bigint PRIMARY KEY, title text, release_year int, recommended_film_ids int[]);
        INSERT INTO store.film VALUES (1, 'Alien', 1979, '{3,2,99}'), (2, 'Blade Runner', 1982, '{}'),
                                      (3, 'Brazil', 1985, NULL);
    """)  # fmt: skip
    try:
        status, body, _ = server.get("/api/films/1")
        assert status == 200, body
        assert body == {
            "film_id": 1, "title": "Alien", "release_year": 1979, "recommended_film_ids": [3, 2, 99],
            "recommended_films": [{"film_id": 3, "title": "Brazil"}, {"film_id": 2, "title": "Blade Runner"}],
        }  # fmt: skip
        assert server.get("/api/films/3")[1]["recommended_films"] == []
        status, body, _ = server.get("/api/films/4")
        assert status == 404 and body == {"detail": "unknown film 4: it is not in store.film"}
    finally:
        server.databases.query(server.databases.warehouse, "DROP SCHEMA store CASCADE")


def reader_url(databases: Databases) -> str:
    """Return the reader role's URL the server uses: SERVER_DATABASE_URL, or the embedded one with its password."""
    if os.environ.get("SERVER_DATABASE_URL"):
        return os.environ["SERVER_DATABASE_URL"]
    password_file = databases.output / "postgres" / "reader.password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    return (
        make_url(databases.warehouse)
        .set(username="recommendations_reader", password=password)
        .render_as_string(hide_password=False)
    )


async def execute_in_a_server_session(url: str, statement: str) -> None:
    """Run a statement on a connection of the server's pool, as the server opens them."""
    from workflow.server.warehouse import Warehouse  # noqa: PLC0415

    warehouse = Warehouse(url)
    await warehouse.open()
    try:
        async with warehouse.connection() as connection:
            await connection.execute(statement)
    finally:
        await warehouse.close()


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM courses",
        "INSERT INTO recommendation_loads (recommendation_date, n_recommendations, n_users) VALUES (now(), 0, 0)",
        "UPDATE daily_recommendations SET rating = 5",
        "CREATE TABLE stolen (x int)",
        "DROP VIEW recommendations",
    ],
)
def test_the_reader_role_cannot_write_even_outside_the_servers_read_only_sessions(
    server: Server, statement: str
) -> None:
    url = reader_url(server.databases)
    with pytest.raises(asyncpg.PostgresError, match=r"read-only transaction|permission denied"):
        asyncio.run(execute_in_a_server_session(url, statement))  # the server's own sessions
    with pytest.raises(Exception, match=r"permission denied|must be owner"):  # its grants alone forbid it too
        server.databases.query(url, statement)
    assert server.databases.warehouse_rows("SELECT count(*) FROM courses") == [(len(COURSES),)]


def test_no_page_or_error_shows_a_password(server: Server) -> None:
    url = reader_url(server.databases)
    password = make_url(url).password
    assert password
    pages = ["/", "/healthz", "/api/loads", "/api/dashboard", "/api/users/100/recommendations",
             f"/api/users/{UNKNOWN_USER}/recommendations", "/api/users/x/recommendations", "/api/films/1",
             "/openapi.json", "/static/dashboard.js"]  # fmt: skip
    for page in pages:
        _, body, headers = server.get(page)
        assert password not in json.dumps(body) + json.dumps(headers), page
    assert password not in server.log.read_text()
    assert "Uvicorn running on http://127.0.0.1:" in server.log.read_text()  # this machine only, by default


def wait_for(server: Server, path: str, status: int, seconds: float = 60) -> tuple[int, object]:
    """Poll the path until it answers the status; return the last answer."""
    deadline = time.monotonic() + seconds
    answer: tuple[int, object] = (0, None)
    while time.monotonic() < deadline:
        answer = server.get(path)[:2]
        if answer[0] == status:
            break
        time.sleep(0.3)
    return answer


def test_a_stopped_warehouse_gives_503_with_the_reason_and_the_server_recovers_by_itself(server: Server) -> None:
    if os.environ.get("SOURCE_DATABASE_URL"):
        pytest.skip("stops only the embedded server")
    password = make_url(reader_url(server.databases)).password
    embedded = embedded_server()
    assert server.get("/api/users/100/recommendations")[0] == 200  # the pool holds connections now
    embedded.stop()
    try:
        status, body, headers = server.get("/healthz")
        assert status == 503, body
        assert body == {"status": "unavailable", "detail": body["detail"]} and "cannot connect" in body["detail"]
        assert headers["retry-after"] == "5"
        assert server.request("/healthz", method="HEAD")[0] == 503
        port = str(make_url(reader_url(server.databases)).port)
        for path in ("/api/users/100/recommendations", "/api/loads", "/api/dashboard", "/api/freshness", "/api/runs"):
            status, body, headers = server.get(path)
            assert status == 503 and "connect" in body["detail"], (path, body)
            assert headers.get("retry-after") == "5"
            assert password not in body["detail"] and "recommendations_reader" not in body["detail"]
            assert port not in body["detail"] and "127.0.0.1" not in body["detail"]
    finally:
        embedded.ensure_running()
    assert wait_for(server, "/healthz", 200)[0] == 200
    status, body, _ = server.get("/api/users/100/recommendations")
    assert status == 200 and body == expected(server.databases, 100, 4.5)


def test_a_warehouse_url_without_a_reader_url_stops_the_server_with_one_clear_line() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "SERVER_DATABASE_URL"}
    environment["DWH_DATABASE_URL"] = "postgresql://recommendations_loader:Secr3t-pw@127.0.0.1:1/dwh"
    result = subprocess.run([sys.executable, "-m", "workflow.server", "--port", str(free_port())], cwd=REPO,
                            env=environment, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "set SERVER_DATABASE_URL" in lines[0], lines
    assert "config/warehouse_grants.sql" in lines[0] and "Secr3t-pw" not in result.stderr


# What the server may import of the project: itself, the embedded server (for the development default), the pipelines'
# declarations and the freshness rule (neither imports luigi).
ALLOWED = (
    "workflow.server",
    "workflow.devdb",
    "workflow.errors",
    "workflow.io.urls",
    "workflow.paths",
    "workflow.registry",
    "workflow.core.pipeline",
    "workflow.freshness",
)
# What it must never load, directly or not: the pipelines' tasks, rules and warehouse code, the task kit, the engines
# and the settings (all of them import luigi or pyspark). It reads the registry: the pipelines' declarations only.
PIPELINE = (
    "workflow.pipelines.courses.", "workflow.pipelines.films.", "workflow.core.tasks", "workflow.core.dated_load",
    "workflow.core.outputs", "workflow.cli", "workflow.config", "workflow.daily", "workflow.databases",
    "workflow.engines", "workflow.rules", "workflow.io.postgres", "workflow.scheduler",
)  # fmt: skip


def test_the_server_imports_neither_luigi_nor_the_pipeline() -> None:
    code = (
        "import sys, workflow.server.app, workflow.server.runner, workflow.server.__main__; "
        "assert 'luigi' not in sys.modules, 'luigi'; "
        f"loaded = [m for m in sys.modules if m.startswith({PIPELINE!r})]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_the_server_package_names_no_luigi_and_no_pipeline_module() -> None:
    import ast  # noqa: PLC0415

    embedded_imports = []
    for path in (REPO / "workflow" / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                assert name.split(".")[0] != "luigi", path
                assert name.split(".")[0] != "workflow" or name.startswith(ALLOWED), (path, name)
                if name.startswith("workflow.devdb"):
                    embedded_imports.append(path.name)
    assert set(embedded_imports) == {"settings.py"}  # one place to change when the module moves


def test_the_dashboard_draws_its_charts_offline_and_looks_up_a_user_in_a_real_browser(server: Server) -> None:
    driver = headless_chromium(1400, 1700, browser_log=True)
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    try:
        driver.get(server.base + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts") in ("ready", "failed"))
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-charts") == "ready"
        for chart in ("chart-loads", "chart-ratings", "chart-languages", "chart-courses"):
            assert driver.find_elements(By.CSS_SELECTOR, f"#{chart} svg.main-svg"), chart
        # One point per loaded date on each line of the loads chart; the load rows' invalid share on its own axis.
        drawn = driver.execute_script("return document.getElementById('chart-loads').data.map((t) => t.name)")
        assert drawn == ["rows", "users", "invalid share"]
        points = driver.find_elements(By.CSS_SELECTOR, "#chart-loads .scatterlayer .trace path.point")
        assert len(points) == len(drawn) * len(DAYS)
        bars = driver.find_elements(By.CSS_SELECTOR, "#chart-languages .barlayer path")
        assert len(bars) == len(server.get("/api/dashboard")[1]["languages"])
        assert driver.execute_script("return document.body.dataset.chartsDate") == f"{DAYS[1]}"  # the current date
        assert "Pandas: 'quoted' & <b>bold</b>" in driver.find_element(By.ID, "chart-courses").text  # text, not markup

        user_id = next(u for u in USERS if len(expected(server.databases, u, 4.0)) >= 2)
        titles = [row["title"] for row in expected(server.databases, user_id, 4.0)]
        driver.find_element(By.ID, "user-id").send_keys(str(user_id))
        threshold = driver.find_element(By.ID, "threshold")
        threshold.clear()
        threshold.send_keys("4.0")
        driver.find_element(By.CSS_SELECTOR, "#lookup button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lookup-results li"))
        shown = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#lookup-results li .title")]
        assert shown == titles

        driver.find_element(By.ID, "user-id").clear()
        driver.find_element(By.ID, "user-id").send_keys(str(UNKNOWN_USER))
        driver.find_element(By.CSS_SELECTOR, "#lookup button").click()
        wait.until(lambda d: "unknown user" in d.find_element(By.ID, "lookup-message").text)
        assert not driver.find_elements(By.CSS_SELECTOR, "#lookup-results li")
        # Nothing was loaded from elsewhere, and the page's security policy refused nothing it needed.
        requested = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert requested and all(name.startswith(server.base) for name in requested), requested
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert all("404" in message for message in errors), errors  # the unknown user's answer only
    finally:
        driver.quit()


def test_several_workers_share_the_port_answer_keep_alive_requests_at_once_and_stop_together(server: Server) -> None:
    import http.client  # noqa: PLC0415

    port = free_port()
    log = server.databases.output / f"server-{port}.log"
    command = [sys.executable, "-m", "workflow.server", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(
        command, cwd=REPO, env=server_environment(), stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while "Application startup complete" not in log.read_text() or log.read_text().count("startup complete") < 2:
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.2)
        workers = {int(pid) for pid in log.read_text().split("(pids ")[1].split(")")[0].split(", ")}
        assert len(workers) == 2
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies, bodies = [], []
        for _ in range(20):  # one keep-alive connection: Nagle's algorithm would add ~40 ms to each
            started = time.perf_counter()
            connection.request("GET", "/api/users/100/recommendations")
            response = connection.getresponse()
            bodies.append((response.status, json.loads(response.read())))
            latencies.append(time.perf_counter() - started)
        connection.close()
        assert bodies == [(200, expected(server.databases, 100, 4.5))] * 20
        assert sorted(latencies)[10] < 0.03, latencies
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert process.returncode == 0, log.read_text()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.parametrize("path", ["/vendor/plotly.min.js", "/static/dashboard.js", "/static/dashboard.css", "/"])
def test_the_dashboards_files_are_gzipped_for_clients_that_take_it_and_revalidated_by_etag(
    server: Server, path: str
) -> None:
    import gzip  # noqa: PLC0415

    status, plain, headers = server.request(path)
    assert status == 200 and "content-encoding" not in headers and headers["vary"] == "Accept-Encoding"
    status, packed, zipped = server.request(path, headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert status == 200 and zipped["content-encoding"] == "gzip" and zipped["vary"] == "Accept-Encoding"
    assert gzip.decompress(packed).decode() == plain and int(zipped["content-length"]) == len(packed)
    assert zipped["content-type"] == headers["content-type"] and zipped["etag"] != headers["etag"]
    if path == "/vendor/plotly.min.js":  # 4.8 MB as it is
        assert len(plain) > 4_000_000 and len(packed) < len(plain) / 3
    status, body, again = server.request(path, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped["etag"]})
    assert (status, body, again["etag"]) == (304, "", zipped["etag"])
    assert server.request(path, headers={"Accept-Encoding": "gzip;q=0"})[2].get("content-encoding") is None


def test_serve_prints_each_log_line_once_and_logs_requests_only_with_access_log(server: Server) -> None:
    for access_log in (False, True):
        port = free_port()
        log = server.databases.output / f"server-{port}.log"
        command = ["-m", "workflow", "serve", "--port", str(port), *(["--access-log"] if access_log else [])]
        process = start_server(log, port, command)
        try:
            assert server.request("/healthz")[0] == 200
            for _ in range(2):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/loads?limit=1", timeout=30) as response:
                    assert response.status == 200
        finally:
            process.terminate()
            process.wait(timeout=30)
        lines = log.read_text().splitlines()
        assert sum("reading the warehouse" in line for line in lines) == 1, lines
        assert sum("Application startup complete" in line for line in lines) == 1, lines
        assert sum("Finished server process" in line for line in lines) == 1, lines
        requests = [line for line in lines if '"GET /api/loads?limit=1 HTTP/1.1" 200' in line]
        assert len(requests) == (2 if access_log else 0), lines
        assert not [line for line in lines if "recommendations_reader:" in line and "***" not in line]


def test_every_command_and_every_serve_option_has_its_help() -> None:
    top = subprocess.run([sys.executable, "-m", "workflow", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip
    for command in ("recommend", "demo-data", "invalidate", "status", "scheduler", "freshness", "summary", "films",
                    "db", "retain", "spark", "serve"):  # fmt: skip
        assert f"\n    {command} " in top or f"\n    {command}\n" in top, command
    description = top.split("positional arguments")[0]
    assert "films" in description and "serve" in description and "freshness" in description
    for module in (["workflow", "serve"], ["workflow.server"]):
        text = subprocess.run([sys.executable, "-m", *module, "--help"], cwd=REPO, capture_output=True, text=True,
                              timeout=60, check=True).stdout  # fmt: skip
        options = text.split("options:")[1]
        for option in ("--host HOST", "--port PORT", "--workers WORKERS", "--access-log"):
            line = next(line for line in options.splitlines() if line.strip().startswith(option))
            assert line.strip() != option, (module, option)  # something follows: its help
