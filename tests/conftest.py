"""Test fixtures: one real PostgreSQL for the session (embedded, or the one the URLs point at)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from configparser import ConfigParser
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from engines import ENGINES, FilmRules, Rules, film_rules_for, rules_for

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

TEST_CONFIG = REPO / "output" / f"pytest-{os.getpid()}.cfg"


def pytest_configure(config: pytest.Config) -> None:
    """Write the tests' luigi settings, before any test module imports luigi (in-process and child runs read them).

    The tests' small data sets hold invalid rows on purpose: up to half of a table may be invalid
    (the 1% default is tested on its own); an unreachable server is given up after 0.6 s, not 15.
    """
    TEST_CONFIG.parent.mkdir(exist_ok=True)
    TEST_CONFIG.write_text("[rules]\nmax_invalid_share = 0.5\n[connection]\nattempts = 3\nfirst_wait = 0.2\n")
    os.environ["LUIGI_CONFIG_PATH"] = str(TEST_CONFIG)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the tests' luigi settings file."""
    TEST_CONFIG.unlink(missing_ok=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder: `unit` (no database, seconds) or `integration` (real PostgreSQL)."""
    for item in items:
        folder = item.path.parent.name
        if folder in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, folder))


@dataclass
class Databases:
    """The session's source and warehouse URLs and its output root."""

    source: str
    warehouse: str
    output: Path

    def query(self, url: str, statement: str, **params: object) -> list[tuple]:
        """Return all rows of a statement run on the database at `url`."""
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                result = connection.execute(sa.text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def warehouse_rows(self, statement: str, **params: object) -> list[tuple]:
        return self.query(self.warehouse, statement, **params)


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    """Start the embedded server once, for an output root of its own under output/, unless URLs are set."""
    # Any folder would do: as root, when the server's system user cannot enter it, the server keeps its cluster in a
    # folder of its own, which remove() deletes. Under output/, a failed session's files are easy to find.
    output = REPO / "output" / f"pytest-{os.getpid()}"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(mode=0o755, parents=True)
    os.environ["WORKFLOW_OUTPUT_DIR"] = str(output)
    from workflow import databases  # noqa: PLC0415  (after WORKFLOW_OUTPUT_DIR is set)
    from workflow.pipelines import courses  # noqa: PLC0415

    external = bool(os.environ.get("SOURCE_DATABASE_URL") and os.environ.get("DWH_DATABASE_URL"))
    if not external:
        databases.embedded_server().ensure_running()
    try:
        source = databases.url_of(courses.PIPELINE.source)
        yield Databases(source=source, warehouse=databases.warehouse_url(), output=output)
    finally:
        if not external:
            databases.embedded_server().remove()  # stops it and deletes its cluster, wherever it lives
        shutil.rmtree(output, ignore_errors=True)


def empty(databases: Databases) -> Databases:
    """Empty the source and warehouse databases of the courses pipeline's tables and the run history, and remove every
    parquet target, run record and lineage file."""
    databases.query(databases.source, "DROP TABLE IF EXISTS rating; DROP TABLE IF EXISTS courses")
    databases.query(
        databases.warehouse,
        "DROP VIEW IF EXISTS recommendations; DROP TABLE IF EXISTS daily_recommendations, "
        "recommendation_loads, recommendation_quality, courses; DROP TABLE IF EXISTS workflow.task_runs",
    )
    for dated in [*databases.output.glob("20*"), databases.output / "history-pending", databases.output / "lineage"]:
        shutil.rmtree(dated, ignore_errors=True)
    return databases


@pytest.fixture
def clean(databases: Databases) -> Databases:
    """Empty the source and warehouse databases and remove every parquet target."""
    return empty(databases)


def require_chromium() -> None:
    """Skip the test, saying why, when Debian's chromium or chromedriver is missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("no chromium/chromedriver (make test installs them with apt-get when it runs as root)")


def headless_chromium(width: int, height: int, *, browser_log: bool = False) -> object:
    """Return a headless chromium driven by selenium (the caller quits it); skip the test when there is none."""
    require_chromium()
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     # Every host name but the test servers' fails to resolve: no request can leave the machine.
                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                     f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    if browser_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


@pytest.fixture
def luigi_setting() -> Iterator:
    """Return a function that sets a luigi.cfg option for one test, restored afterwards."""
    import luigi  # noqa: PLC0415

    parser = luigi.configuration.get_config()
    previous: list[tuple[str, str, str | None]] = []

    def set_option(section: str, option: str, value: object) -> None:
        if not parser.has_section(section):
            parser.add_section(section)
        old = ConfigParser.get(parser, section, option, raw=True) if parser.has_option(section, option) else None
        previous.append((section, option, old))
        parser.set(section, option, str(value))

    yield set_option
    for section, option, old in reversed(previous):
        if old is None:
            parser.remove_option(section, option)
        else:
            parser.set(section, option, old)


@pytest.fixture(scope="session", params=ENGINES)
def rules(request: pytest.FixtureRequest) -> Rules:
    """Return the courses rules of each engine in turn, behind the pandas interface (tests/engines.py)."""
    return rules_for(request.param)


@pytest.fixture(scope="session", params=ENGINES)
def film_rules(request: pytest.FixtureRequest) -> FilmRules:
    """Return the film rules of each engine in turn, behind the pandas interface (tests/engines.py)."""
    return film_rules_for(request.param)


def frame(rows: list[tuple], columns: str) -> pd.DataFrame:
    """Return a DataFrame from rows and a space-separated column list."""
    return pd.DataFrame(rows, columns=columns.split())
