"""The film pipeline end to end on the real Pagila data, loaded as superuser into the embedded server."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal

import luigi
import pandas as pd
import pytest
from conftest import REPO, SHARED, Databases
from sqlalchemy.engine import make_url

import workflow
from workflow import devdb

PAGILA = SHARED / "datasets" / "pagila"
NEEDS_PAGILA = pytest.mark.skipif(
    not PAGILA.exists(), reason="../shared/datasets/pagila is absent: the Pagila end-to-end tests need it"
)
pytestmark = NEEDS_PAGILA
DAY = dt.date(2022, 7, 1)  # inside the rental history (2022-02-14 to 2022-08-23)
LATER = dt.date(2022, 9, 1)  # after it: every rental


def psql(url: str, *arguments: str) -> None:
    """Run psql on the database at `url` (as the embedded server's superuser)."""
    binary = devdb.find_bindir() / "psql"
    parsed = make_url(url)
    subprocess.run(
        [str(binary if binary.exists() else shutil.which("psql")), "-q", "-v", "ON_ERROR_STOP=1", "-h", parsed.host,
         "-p", str(parsed.port), "-U", parsed.username, "-d", parsed.database, *arguments],
        check=True, capture_output=True, env={**os.environ, "PGPASSWORD": parsed.password or ""},
    )  # fmt: skip


@pytest.fixture(scope="module")
def pagila(databases: Databases) -> Iterator[str]:
    """Load Pagila (schema, then data) into a fresh `pagila` database and return its URL."""
    from workflow.databases import url_of  # noqa: PLC0415
    from workflow.pipelines import films  # noqa: PLC0415

    url = url_of(films.PIPELINE.source)
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    database = make_url(url).database
    psql(admin, "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', "-c", f'CREATE DATABASE "{database}"')
    psql(url, "-f", str(PAGILA / "pagila-schema.sql"))
    psql(url, "-f", str(PAGILA / "pagila-data.sql"))
    yield url


@pytest.fixture
def films(pagila: str, databases: Databases) -> Databases:
    """Pagila as the films source, an empty warehouse schema `store`, and no parquet targets."""
    databases.query(databases.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    for dated in databases.output.glob("20*"):
        shutil.rmtree(dated)
    databases.films = pagila
    return databases


def build(date: dt.date = DAY) -> luigi.execution_summary.LuigiRunResult:
    """Run FilmsTask for a date and return Luigi's result, which must be a success."""
    result = luigi.build([workflow.FilmsTask(date=date)], local_scheduler=True, workers=2, detailed_summary=True)
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text
    return result


def reference_recommendations(databases: Databases, before: dt.datetime, n: int = 3) -> dict[int, list[int]]:
    """Return each film's co-rental recommendations, computed the plain way from the rentals before a time."""
    rentals = databases.query(
        databases.films,
        "SELECT r.customer_id, i.film_id FROM rental r JOIN inventory i USING (inventory_id) WHERE r.rental_date < :t",
        t=before,
    )
    customers, rented = defaultdict(set), defaultdict(set)
    for customer, film in rentals:
        customers[film].add(customer)
        rented[customer].add(film)
    result = {}
    for (film,) in databases.query(databases.films, "SELECT film_id FROM film"):
        counts = Counter(other for customer in customers[film] for other in rented[customer] if other != film)
        result[film] = [other for other, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]]
    return result


def current(databases: Databases) -> dict[int, list[int]]:
    return dict(databases.warehouse_rows("SELECT film_id, recommended_film_ids FROM store.film"))


def test_pagila_loads_every_film_with_exact_rate_parts_and_the_reference_recommendations(films: Databases) -> None:
    build()
    assert films.warehouse_rows("SELECT count(*), count(DISTINCT film_id) FROM store.film") == [(1000, 1000)]
    assert current(films) == reference_recommendations(films, dt.datetime(2022, 7, 2, tzinfo=dt.timezone.utc))
    rows = films.warehouse_rows("SELECT film_id, rental_rate, rental_rate_dollar, rental_rate_cents FROM store.film")
    assert {rate for _, rate, _, _ in rows} == {Decimal("0.99"), Decimal("2.99"), Decimal("4.99")}
    assert all(rate == dollar + Decimal(cents) / 100 for _, rate, dollar, cents in rows)
    assert films.warehouse_rows("SELECT count(*) FROM store.film WHERE avg_rating IS NULL AND rating_count = 0") == [
        (1000,)
    ]
    # Columns pass through faithfully: the source's own values, compared in SQL types on both sides.
    columns = "film_id, title, description, release_year, rental_rate, replacement_cost, rating::text, last_update, "
    columns += "special_features, fulltext::text"
    source = films.query(films.films, f"SELECT {columns} FROM film ORDER BY film_id")
    assert films.warehouse_rows(f"SELECT {columns} FROM store.film ORDER BY film_id") == source
    # Films nobody rented (Pagila has films without inventory) get an empty array, not NULL.
    assert films.warehouse_rows("SELECT count(*) FROM store.film WHERE recommended_film_ids IS NULL") == [(0,)]
    assert films.warehouse_rows("SELECT count(*) > 0 FROM store.film WHERE recommended_film_ids = '{}'") == [(True,)]


def test_extracted_types_are_kept_faithfully_in_parquet(films: Databases) -> None:
    build()
    schema = pd.read_parquet(films.output / f"{DAY}" / "extracted_films.parquet").dtypes
    import pyarrow.parquet as pq  # noqa: PLC0415

    types = {
        field.name: str(field.type) for field in pq.read_schema(films.output / f"{DAY}" / "extracted_films.parquet")
    }
    assert types["rental_rate"] == "decimal128(4, 2)" and types["replacement_cost"] == "decimal128(5, 2)"
    assert types["rating"] == "string" and types["fulltext"] == "string" and types["release_year"] == "int32"
    assert types["special_features"].startswith("list<") and types["last_update"] == "timestamp[us, tz=UTC]"
    assert len(schema) == 14


def test_an_as_of_date_uses_only_the_rentals_before_it_and_the_newest_date_is_current(films: Databases) -> None:
    build(LATER)
    build(DAY)  # an older date, loaded after: what is current stays the newest date's
    cut = dt.datetime(2022, 7, 2, tzinfo=dt.timezone.utc)
    rentals = pd.read_parquet(films.output / f"{DAY}" / "extracted_rentals.parquet")
    assert len(rentals) == films.query(films.films, "SELECT count(*) FROM rental WHERE rental_date < :t", t=cut)[0][0]
    assert len(rentals) < 16_044 and rentals["rented_at"].max() < pd.Timestamp(cut)
    later = reference_recommendations(films, dt.datetime(2022, 9, 2, tzinfo=dt.timezone.utc))
    assert current(films) == later
    day_rows = films.warehouse_rows(
        "SELECT film_id, recommended_film_ids FROM store.film_daily WHERE load_date = :d", d=DAY
    )
    assert dict(day_rows) == reference_recommendations(films, cut) != later
    assert films.warehouse_rows("SELECT load_date, n_films FROM store.film_loads ORDER BY 1") == [
        (DAY, 1000), (LATER, 1000)
    ]  # fmt: skip


def test_a_second_run_does_nothing_and_changes_nothing(films: Databases) -> None:
    build()
    before = films.warehouse_rows("SELECT film_id, xmin::text FROM store.film_daily ORDER BY 1")
    marker = films.warehouse_rows("SELECT * FROM store.film_loads")
    targets = {path: path.read_bytes() for path in (films.output / f"{DAY}").glob("*.parquet")}
    assert "Did not run any tasks" in build().summary_text
    assert films.warehouse_rows("SELECT film_id, xmin::text FROM store.film_daily ORDER BY 1") == before
    assert films.warehouse_rows("SELECT * FROM store.film_loads") == marker
    assert {path: path.read_bytes() for path in (films.output / f"{DAY}").glob("*.parquet")} == targets


def run_luigi(task: str, date: dt.date) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "luigi"), "--module", "workflow", task, "--date", f"{date}",
         "--local-scheduler"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def test_a_missing_rental_table_is_missing_data_and_leaves_the_warehouse_untouched(films: Databases) -> None:
    films.query(films.films, "ALTER TABLE rental RENAME TO rental_hidden")
    try:
        result = run_luigi("FilmsTask", DAY)
        assert result.returncode == 20, result.stderr  # [retcode] missing_data
        lines = [line for line in result.stderr.splitlines() if "source table public.rental does not exist" in line]
        assert len(lines) == 1 and make_url(films.films).database in lines[0] and ":***@" not in lines[0]
        assert films.warehouse_rows("SELECT to_regclass('store.film_loads')") == [(None,)]
    finally:
        films.query(films.films, "ALTER TABLE rental_hidden RENAME TO rental")
    assert run_luigi("FilmsTask", DAY).returncode == 0  # once the table exists, the next run proceeds
    assert films.warehouse_rows("SELECT count(*) FROM store.film") == [(1000,)]


def test_a_ratings_table_gives_each_film_its_average_and_count(films: Databases) -> None:
    films.query(
        films.films,
        "CREATE TABLE film_rating (customer_id integer, film_id integer, rating integer, rated_at timestamptz);"
        "INSERT INTO film_rating VALUES (1, 1, 5, '2022-06-01'), (2, 1, 4, '2022-06-02'), (1, 1, 3, '2022-05-01'),"
        " (3, 2, 2, '2022-06-30 23:59:59+00'), (4, 2, 5, '2022-07-02 00:00:00+00'), (5, 3, 1, '2022-06-01')",
    )
    try:
        build()
    finally:
        films.query(films.films, "DROP TABLE film_rating")
    rows = films.warehouse_rows(
        "SELECT film_id, avg_rating, rating_count FROM store.film WHERE film_id <= 4 ORDER BY 1"
    )
    assert rows == [(1, 4.5, 2), (2, 2.0, 1), (3, 1.0, 1), (4, None, 0)]


def test_daily_pipelines_runs_both_pipelines_for_a_date(films: Databases) -> None:
    from workflow.daily import DailyPipelines  # noqa: PLC0415

    task = DailyPipelines(date=DAY)
    assert [type(required).__name__ for required in task.requires()] == [
        "RecommendationsTask", "RecommendationQualityTask", "FilmsTask"
    ]  # fmt: skip
    build()
    assert DailyPipelines.bulk_complete([DAY]) == []  # the courses pipeline has not loaded it
