"""The dashboard a data team opens every morning, in a real headless Chromium against the real server and warehouse:
the operations view, freshness, the date picker, the film panel, and a warehouse that stops and comes back."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import luigi
import pandas as pd
import pytest
from conftest import REPO, Databases, empty, headless_chromium
from sqlalchemy.engine import make_url
from test_server import Server, serving
from test_workflow import COURSES, RATINGS

from workflow.daily import DailyPipelines
from workflow.databases import url_of
from workflow.pipelines import films
from workflow.pipelines.courses import demo
from workflow.pipelines.films import demo as film_demo
from workflow.server.settings import embedded_server

YESTERDAY = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
BACKFILL = [YESTERDAY - dt.timedelta(days=n) for n in range(9, 1, -1)]  # 8 dates, up to the day before yesterday
PARTIAL = YESTERDAY - dt.timedelta(days=1)  # loaded as a partial day only
LATE_RATING = YESTERDAY - dt.timedelta(days=5)  # user 15's rating is made that day: earlier dates lack user 15
SCREENSHOTS = REPO / "output" / "screenshots"
DOCS_IMAGE = REPO / "docs" / "dashboard.png"
# The digest of the page's files that docs/dashboard.png shows: the test takes a new picture when they change.
DOCS_SOURCE = REPO / "docs" / "dashboard.png.sha256"
STATIC = REPO / "workflow" / "server" / "static"


def stamped() -> pd.DataFrame:
    """Return the small data set's ratings, made long ago but for user 15's, made on LATE_RATING."""
    ratings = RATINGS.astype({"user_id": "Int64", "course_id": "Int64", "rating": "Int64"})
    long_ago = pd.Timestamp(YESTERDAY - dt.timedelta(days=60), tz="UTC")
    ratings["rated_at"] = [pd.Timestamp(LATE_RATING, tz="UTC") + pd.Timedelta(hours=12) if user == 15 else long_ago
                           for user in ratings["user_id"]]  # fmt: skip
    return ratings


@pytest.fixture(scope="module")
def operations(databases: Databases) -> Iterator[Server]:
    """A warehouse with a backfill of 8 dates of both pipelines, a partial day, a failed yesterday of the courses
    (its film load went in), and the server reading it."""
    empty(databases)
    databases.query(databases.warehouse, "DROP SCHEMA IF EXISTS store CASCADE")
    demo.replace_source_tables(databases.source, COURSES, stamped())
    film_demo.replace_film_tables(url_of(films.PIPELINE.source), 2_000, until=YESTERDAY, seed=5)
    assert luigi.build([DailyPipelines(date=date) for date in BACKFILL], local_scheduler=True, workers=2)
    assert luigi.build([DailyPipelines(date=PARTIAL, partial_day=True)], local_scheduler=True, workers=2)
    databases.query(databases.source, "ALTER TABLE rating RENAME TO rating_moved")
    assert not luigi.build([DailyPipelines(date=YESTERDAY)], local_scheduler=True, workers=2)
    databases.query(databases.source, "ALTER TABLE rating_moved RENAME TO rating")
    with serving(databases) as server:
        yield server


@pytest.fixture
def browser(operations: Server) -> Iterator[object]:
    """A headless Chromium (every host but 127.0.0.1 unresolvable), quit after the test."""
    driver = headless_chromium(1400, 2700, browser_log=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: object, condition: object, seconds: float = 60) -> object:
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(condition)


def body(driver: object, name: str) -> str | None:
    return driver.execute_script(f"return document.body.dataset.{name} || null")


def expected_states(pipeline: str, last: dt.date, days: int = 30) -> dict[str, str]:
    """Return the state each date of the view must have, from what the fixture did."""
    states = {}
    for offset in range(days):
        date = last - dt.timedelta(days=offset)
        if date == YESTERDAY:
            states[f"{date}"] = "failed" if pipeline == "courses" else "loaded"
        elif date == PARTIAL:
            states[f"{date}"] = "partial"
        elif date in BACKFILL:
            states[f"{date}"] = "loaded"
        else:
            states[f"{date}"] = "missing"
    return states


def set_aside_in_history(databases: Databases, pipeline: str, date: dt.date) -> dict[str, int]:
    """Return the rows the date's successful whole-day task runs set aside, by reason, summed in SQL."""
    rows = databases.warehouse_rows(
        "SELECT reason, sum(n::bigint) FROM workflow.task_runs, jsonb_each_text(set_aside) AS s(reason, n) "
        "WHERE pipeline = :pipeline AND run_date = :date AND status = 'done' AND NOT partial GROUP BY reason",
        pipeline=pipeline,
        date=date,
    )
    return {reason: int(n) for reason, n in rows if int(n)}


def cell(driver: object, pipeline: str, date: dt.date) -> object:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return driver.find_element(By.CSS_SELECTOR, f'.pipeline[data-pipeline="{pipeline}"] .cell[data-date="{date}"]')


def detail(driver: object) -> dict[str, str]:
    """Return the figures the detail panel shows, by name."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#ops-detail dt")]
    values = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#ops-detail dd")]
    return dict(zip(names, values, strict=True))


def open_dashboard(driver: object, base: str) -> None:
    """Open the dashboard and wait until it has drawn the operations view and the charts."""
    driver.get(base + "/")
    wait_for(driver, lambda d: body(d, "runs") == "ready" and body(d, "charts") in ("ready", "failed"))
    assert body(driver, "charts") == "ready" and body(driver, "warehouse") == "up"


def test_the_operations_view_shows_each_dates_state_and_the_freshness_and_a_failed_yesterday_is_red(
    operations: Server, browser: object
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    driver = browser
    open_dashboard(driver, operations.base)
    for pipeline in ("courses", "films"):
        cells = driver.find_elements(By.CSS_SELECTOR, f'.pipeline[data-pipeline="{pipeline}"] .cell')
        shown = {c.get_attribute("data-date"): c.get_attribute("data-state") for c in cells}
        assert shown == expected_states(pipeline, YESTERDAY), pipeline
        assert [c.get_attribute("data-date") for c in cells] == sorted(shown)  # oldest left
    assert cell(driver, "courses", YESTERDAY).value_of_css_property("background-color") == "rgba(198, 40, 40, 1)"
    assert cell(driver, "films", YESTERDAY).value_of_css_property("background-color") == "rgba(46, 125, 50, 1)"
    freshness = {e.get_attribute("data-pipeline"): e.get_attribute("data-state")
                 for e in driver.find_elements(By.CSS_SELECTOR, "#freshness li")}  # fmt: skip
    assert freshness == {"courses": "failed", "films": "fresh"}


def test_a_cell_shows_its_dates_figures_from_the_load_row_and_the_run_history(
    operations: Server, browser: object
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    driver, databases = browser, operations.databases
    open_dashboard(driver, operations.base)
    date = BACKFILL[-1]
    cell(driver, "courses", date).click()
    [(rows, invalid, duration)] = databases.warehouse_rows(
        "SELECT n_recommendations, n_invalid, duration_s FROM recommendation_loads WHERE recommendation_date = :d",
        d=date,
    )
    shown = detail(driver)
    assert driver.find_element(By.CSS_SELECTOR, "#ops-detail h3").text == f"courses, {date}"
    assert shown["State"] == "loaded" and shown["Rows loaded"] == f"{rows:,}" and shown["Engine"] == "pandas"
    assert shown["Invalid rows"] == f"{invalid:,}" and invalid > 0 and shown["Duration"] == f"{duration:.1f} s"
    reasons = set_aside_in_history(databases, "courses", date)
    assert reasons and shown["Set aside"] == ", ".join(
        f"{r.replace('_', ' ')}: {n:,}" for r, n in sorted(reasons.items())
    )
    assert shown["Loaded at"] and "T" not in shown["Loaded at"]  # a local time, not raw ISO

    # The failed date names its task and its one-line error; hovering another date, then leaving, shows it again.
    cell(driver, "courses", YESTERDAY).click()
    shown = detail(driver)
    assert shown["State"] == "failed" and shown["Failed in"] == "ExtractedRatings"
    assert shown["Error"].startswith("SourceDataError: source table 'public.rating' does not exist in postgresql")
    source = make_url(databases.source)  # where the source is stays on the server's side
    assert "://***/" in shown["Error"] and f"{source.host}:{source.port}" not in driver.page_source
    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415

    ActionChains(driver).move_to_element(cell(driver, "films", date)).perform()
    assert driver.find_element(By.CSS_SELECTOR, "#ops-detail h3").text == f"films, {date}"
    ActionChains(driver).move_to_element(driver.find_element(By.ID, "film-query")).perform()
    assert driver.find_element(By.CSS_SELECTOR, "#ops-detail h3").text == f"courses, {YESTERDAY}"

    # A partial day's figures are its partial load's, on hover (the cell's title).
    [(films_loaded,)] = databases.warehouse_rows("SELECT n_films FROM store.film_loads WHERE load_date = :d", d=PARTIAL)
    hover = cell(driver, "films", PARTIAL).get_attribute("title").splitlines()
    assert hover[0] == f"{PARTIAL}: State: partial day (recomputed after the day ends)"
    assert f"Rows loaded: {films_loaded:,}" in hover and "Engine: pandas" in hover


def test_the_date_picker_draws_the_chosen_dates_results_on_a_numeric_rating_axis(
    operations: Server, browser: object
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    driver, databases = browser, operations.databases
    open_dashboard(driver, operations.base)
    assert body(driver, "chartsDate") == f"{PARTIAL}"  # the current date: the newest load, a partial day here
    assert driver.find_element(By.ID, "results-message").text.endswith(f"on {PARTIAL} (the current date)")
    counts = []
    for chosen in (BACKFILL[0], BACKFILL[-1]):
        driver.execute_script(
            "const p = document.getElementById('results-date'); p.value = arguments[0];"
            "p.dispatchEvent(new Event('change'))",
            f"{chosen}",
        )
        wait_for(driver, lambda d, chosen=chosen: body(d, "chartsDate") == f"{chosen}")
        ratings = databases.warehouse_rows(
            "SELECT round(rating::numeric, 1)::float, count(*) FROM daily_recommendations "
            "WHERE recommendation_date = :d GROUP BY 1 ORDER BY 1",
            d=chosen,
        )
        counts.append(sum(n for _, n in ratings))
        assert driver.find_element(By.ID, "results-message").text == f"{counts[-1]} recommendations on {chosen}"
        drawn = driver.execute_script(
            "const c = document.getElementById('chart-ratings'); return [c.layout.xaxis.type, c.data[0].x, c.data[0].y]"
        )
        assert drawn == ["linear", [r for r, _ in ratings], [n for _, n in ratings]]
    assert BACKFILL[0] < LATE_RATING <= BACKFILL[-1] and counts[0] < counts[1]  # user 15 rated in between


def test_the_film_panel_shows_a_films_figures_and_recommended_titles_and_errors_read_as_sentences(
    operations: Server, browser: object
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    driver, databases = browser, operations.databases
    open_dashboard(driver, operations.base)
    [(film_id, title, rate, average, ratings_count, recommended)] = databases.warehouse_rows(
        "SELECT film_id, title, rental_rate, avg_rating, rating_count, recommended_film_ids FROM store.film "
        "WHERE avg_rating IS NOT NULL AND cardinality(recommended_film_ids) = 3 ORDER BY film_id LIMIT 1"
    )
    titles = dict(databases.warehouse_rows("SELECT film_id, title FROM store.film"))
    driver.find_element(By.ID, "film-query").send_keys(title.lower())
    driver.find_element(By.CSS_SELECTOR, "#film-form button").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "film-matches").text or d.find_element(By.ID, "film-title").text)
    for choice in driver.find_elements(By.CSS_SELECTOR, "#film-matches button"):
        if choice.text == title:
            choice.click()
    wait_for(driver, lambda d: d.find_element(By.ID, "film-title").text == f"{title} (#{film_id})")
    assert driver.find_element(By.ID, "film-rate").text == f"${rate:.2f}"
    assert driver.find_element(By.ID, "film-rating").text == f"{average:.2f}"
    assert driver.find_element(By.ID, "film-count").text == f"{ratings_count:,}"
    shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#film-recommended li")]
    assert shown == [f"{titles[i]} (#{i})" for i in recommended]

    # A look-up the server refuses reads as a sentence, not as validation JSON.
    driver.find_element(By.ID, "user-id").send_keys("ten")
    driver.find_element(By.CSS_SELECTOR, "#lookup button").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "lookup-message").text)
    assert driver.find_element(By.ID, "lookup-message").text.startswith("user id: Input should be a valid integer")
    driver.find_element(By.ID, "user-id").clear()
    driver.find_element(By.ID, "user-id").send_keys("10")
    driver.find_element(By.CSS_SELECTOR, "#lookup button").click()
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#lookup-results li"))

    cell(driver, "courses", YESTERDAY).click()
    take_screenshot(driver, "dashboard")
    requested = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert requested and all(name.startswith(operations.base) for name in requested), requested
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors and all("422" in message for message in errors), errors  # the refused look-up's answer only


def test_while_the_warehouse_is_down_the_page_says_so_keeps_its_content_and_recovers_without_a_reload(
    operations: Server, browser: object
) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    if os.environ.get("SOURCE_DATABASE_URL"):
        pytest.skip("stops only the embedded server")
    driver = browser
    driver.get(operations.base + "/?refresh=2")
    wait_for(driver, lambda d: body(d, "runs") == "ready" and body(d, "charts") == "ready")
    driver.execute_script("window.sameDocument = true")
    cells = len(driver.find_elements(By.CSS_SELECTOR, ".cell[data-date]"))
    embedded = embedded_server()
    embedded.stop()
    try:
        wait_for(driver, lambda d: body(d, "warehouse") == "down", 30)
        banner = driver.find_element(By.ID, "banner")
        assert banner.is_displayed() and banner.text.startswith("The warehouse cannot answer now: cannot connect")
        assert "Retrying every 5 s" in banner.text and "keeps showing what it read last" in banner.text
        take_screenshot(driver, "dashboard-warehouse-down")
        page = driver.find_element(By.TAG_NAME, "body").text
        url = make_url(operations.databases.warehouse)
        for secret in (f":{url.port}", "recommendations_reader", url.username, url.database, "password"):
            assert secret not in page, secret
        assert len(driver.find_elements(By.CSS_SELECTOR, ".cell[data-date]")) == cells  # kept
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-courses svg.main-svg")
    finally:
        embedded.ensure_running()
    wait_for(driver, lambda d: body(d, "warehouse") == "up", 60)
    assert not driver.find_element(By.ID, "banner").is_displayed()
    assert driver.execute_script("return window.sameDocument === true")  # no reload
    assert len(driver.find_elements(By.CSS_SELECTOR, ".cell[data-date]")) == cells


def take_screenshot(driver: object, name: str) -> Path:
    """Save a screenshot under output/screenshots/; refresh docs/dashboard.png when the page's files changed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    if name == "dashboard":
        digest = hashlib.sha256()
        for source in sorted(STATIC.iterdir()):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        if not DOCS_IMAGE.exists() or not DOCS_SOURCE.exists() or DOCS_SOURCE.read_text().strip() != digest.hexdigest():
            DOCS_IMAGE.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGE)
            DOCS_SOURCE.write_text(digest.hexdigest() + "\n")
    return path


def test_the_films_search_finds_titles_by_any_part_and_escapes_like_wildcards(operations: Server) -> None:
    titles = sorted(operations.databases.warehouse_rows("SELECT title, film_id FROM store.film"))
    title = titles[0][0]
    part = title[1:-1].lower()
    status, found, _ = operations.get(f"/api/films?title={urllib.parse.quote(part)}")
    assert status == 200
    assert found == [{"film_id": i, "title": t} for t, i in titles if part in t.lower()][:20]
    for wildcard in ("%25", "_", "%5C"):  # %, _ and \ match only themselves: no title holds them
        assert operations.get(f"/api/films?title={wildcard}")[:2] == (200, [])
    status, problem, _ = operations.get("/api/films?title=%00")
    assert status == 422 and problem["detail"][0]["loc"] == ["query", "title"]


def test_the_quality_chart_draws_both_methods_figures_of_every_evaluated_date(
    operations: Server, browser: object
) -> None:
    databases = operations.databases
    rows = databases.warehouse_rows(
        "SELECT recommendation_date, method, partial, hit_rate, ndcg, rmse FROM recommendation_quality "
        "ORDER BY recommendation_date, method"
    )
    assert {(date, partial) for date, _, partial, *_ in rows} == {(d, False) for d in BACKFILL} | {(PARTIAL, True)}
    status, report, _ = operations.get("/api/quality?days=90")
    assert status == 200
    assert [(f["date"], f["method"], f["hit_rate"], f["ndcg"], f["rmse"]) for f in report["figures"]] == [
        (f"{date}", method, hit, ndcg, rmse) for date, method, _, hit, ndcg, rmse in rows
    ]
    assert len(operations.get("/api/quality?days=2")[1]["figures"]) == 4  # the newest two dates, both methods

    driver = browser
    open_dashboard(driver, operations.base)
    drawn = driver.execute_script("return document.getElementById('chart-quality').data.map((t) => [t.name, t.x, t.y])")
    for method, name in (("language_rule", "case study's rule"), ("als", "factorization (ALS)")):
        mine = [row for row in rows if row[1] == method]
        assert [f"{row[0]}" for row in mine] == next(x for n, x, _ in drawn if n == f"hit rate, {name}")
        assert [row[5] for row in mine] == next(y for n, _, y in drawn if n == f"RMSE, {name}")
