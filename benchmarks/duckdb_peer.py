"""The benchmark's peer: the courses pipeline as a data engineer scripts it with DuckDB, the project's rules in SQL.

Extract: ADBC's binary COPY of the source's courses and ratings (as of the end of the date) into Arrow, both tables
at once. Transform: the rules (workflow/rules/ratings.py, workflow/pipelines/courses/rules.py) as DuckDB SQL over the
Arrow tables on every core; each user walks at most k + per_user places of a language's ranking, k the rows that rate
a course of it, as the project does, rather than pairing every user with every course. Load: ADBC's binary COPY into
the warehouse table `recommendations_duckdb`. Nothing of the workflow package is used but its settings' values.
"""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
import duckdb
import pyarrow as pa

PEER_TABLE = "recommendations_duckdb"
WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())  # what Python's str.strip() strips


@dataclass(frozen=True)
class Settings:
    """The rules' settings: [rules] language_fill, min_rating, max_rating, recommendations_per_user."""

    language_fill: str = "R"
    min_rating: float = 1.0
    max_rating: float = 5.0
    per_user: int = 3


def quoted(text: str) -> str:
    """Return text as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# Each rule a view, in the order they build on each other; {placeholders} are the settings, as literals.
VIEWS = {
    "checked_courses": """SELECT *, CASE WHEN course_id IS NULL THEN 'missing_course_id'
        WHEN count(*) OVER (PARTITION BY course_id) > 1 THEN 'duplicate_course_id' END AS reason FROM courses_in""",
    "cleaned_courses": """SELECT * EXCLUDE (reason) REPLACE (lower(coalesce(nullif(trim(programming_language::VARCHAR,
        {ws}), ''), trim({fill}, {ws}))) AS programming_language) FROM checked_courses WHERE reason IS NULL""",
    "course_languages": """SELECT course_id, programming_language,
        dense_rank() OVER (ORDER BY programming_language) AS language FROM cleaned_courses""",
    # Count first: the repeated pairs among the rows that pass the row rules are few; only they are grouped again.
    "first_rule": """SELECT *, {stamp} AS stamp_, CASE
        WHEN user_id IS NULL OR course_id IS NULL OR rating IS NULL OR isnan(rating) THEN 'missing_value'
        WHEN {stamped} AND stamp_ IS NULL THEN 'missing_timestamp'
        WHEN course_id NOT IN (SELECT course_id FROM cleaned_courses) THEN 'unknown_course'
        WHEN rating < {low} OR rating > {high} THEN 'rating_out_of_range' END AS reason FROM ratings_in""",
    "repeated_pairs": """SELECT user_id, course_id, max(stamp_) AS latest FROM first_rule WHERE reason IS NULL
        GROUP BY ALL HAVING count(*) > 1""",
    "pair_verdicts": """SELECT p.user_id, p.course_id, p.latest, count(*) FILTER (f.stamp_ = p.latest) AS n_latest
        FROM first_rule f JOIN repeated_pairs p USING (user_id, course_id) WHERE f.reason IS NULL GROUP BY ALL""",
    "checked_ratings": """SELECT f.* EXCLUDE (stamp_, reason), CASE WHEN f.reason IS NOT NULL THEN f.reason
        WHEN v.user_id IS NULL THEN NULL WHEN f.stamp_ < v.latest THEN 'superseded'
        WHEN f.stamp_ = v.latest AND v.n_latest = 1 THEN NULL ELSE 'duplicate_pair' END AS reason
        FROM first_rule f LEFT JOIN pair_verdicts v
        ON f.reason IS NULL AND f.user_id = v.user_id AND f.course_id = v.course_id""",
    "valid_ratings": "SELECT user_id, course_id, rating FROM checked_ratings WHERE reason IS NULL",
    "course_averages": """SELECT course_id, avg(rating) AS average_rating, count(*) AS n_ratings
        FROM valid_ratings GROUP BY course_id""",
    # Group once: a user's valid ratings and rating rows per language in one pass over the extract's rows.
    "language_counts": """SELECT r.user_id, c.language, count(*) FILTER (r.reason IS NULL) AS n_rated,
        count(*) AS n_rows FROM checked_ratings r JOIN course_languages c USING (course_id)
        WHERE r.user_id IS NOT NULL GROUP BY ALL""",
    "user_languages": """SELECT * FROM language_counts WHERE n_rated > 0
        QUALIFY n_rated = max(n_rated) OVER (PARTITION BY user_id)""",
    "ranking": """SELECT a.course_id, a.average_rating, c.language, row_number() OVER (PARTITION BY c.language
        ORDER BY a.average_rating DESC, a.course_id) AS place FROM course_averages a JOIN course_languages c
        USING (course_id)""",
    # k + per_user places of the ranking per (user, language): k rows rate at most k of its courses.
    "walk": """SELECT user_id, language, unnest(range(1, greatest(n_rated, n_rows) + {per} + 1)) AS place
        FROM user_languages""",
    "walked": """SELECT w.user_id, w.language, w.place, r.course_id, r.average_rating AS rating FROM walk w
        JOIN ranking r USING (language, place) ANTI JOIN (SELECT user_id, course_id FROM checked_ratings
        WHERE user_id IS NOT NULL AND course_id IS NOT NULL) x
        ON x.user_id = w.user_id AND x.course_id = r.course_id""",
    "candidates": """SELECT * FROM walked
        QUALIFY row_number() OVER (PARTITION BY user_id, language ORDER BY place) <= {per}""",
    # A user's best courses over their languages are the best of all they walked: one ranking, no per-language cut.
    "recommendations": """SELECT user_id, course_id, rating, row_number() OVER (PARTITION BY user_id
        ORDER BY rating DESC, course_id) AS rank FROM walked QUALIFY rank <= {per}""",
}


def define(con: duckdb.DuckDBPyConnection, names: list[str], settings: Settings, stamped: bool = False) -> None:
    """Create the named views of VIEWS on the connection, with the settings written in."""
    values = {"ws": quoted(WHITESPACE), "fill": quoted(settings.language_fill), "low": repr(float(settings.min_rating)),
              "high": repr(float(settings.max_rating)), "per": str(int(settings.per_user)),
              "stamped": str(stamped).upper(), "stamp": "rated_at" if stamped else "NULL::TIMESTAMPTZ"}  # fmt: skip
    for name in names:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {VIEWS[name].format(**values)}")


def transform(courses: pa.Table, ratings: pa.Table, settings: Settings, threads: int | None = None) -> pa.Table:
    """Return each user's top recommendations (user_id, course_id, rating, rank) from the extracted tables."""
    con = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        con.register("courses_in", courses)
        con.register("ratings_in", ratings)
        define(con, list(VIEWS), settings, stamped="rated_at" in ratings.column_names)
        return con.sql("SELECT * FROM recommendations ORDER BY user_id, rank").to_arrow_table()
    finally:
        con.close()


def libpq_url(url: str) -> str:
    """Return a SQLAlchemy URL (postgresql+driver://...) as libpq takes it."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def read_table(url: str, query: str) -> pa.Table:
    """Return a query's rows as Arrow, through ADBC (a binary COPY out of PostgreSQL)."""
    with adbc.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetch_arrow_table()


def extract(url: str, date: dt.date, stamp_column: str = "rated_at") -> tuple[pa.Table, pa.Table]:
    """Return the source's courses and its ratings as they stood at the end of the date (UTC), read at once."""
    cut = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    courses = "SELECT course_id, title, description, programming_language FROM courses"
    ratings = (f"SELECT user_id, course_id, rating, {stamp_column} AS rated_at FROM rating "
               f"WHERE {stamp_column} < '{cut.isoformat()}' OR {stamp_column} IS NULL")  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        found = [pool.submit(read_table, url, query) for query in (courses, ratings)]
        return found[0].result(), found[1].result()


def load(url: str, recommendations: pa.Table) -> int:
    """Replace the warehouse table `recommendations_duckdb` with the recommendations (binary COPY); return the rows."""
    with adbc.connect(libpq_url(url)) as connection:
        with connection.cursor() as cursor:
            rows = cursor.adbc_ingest(PEER_TABLE, recommendations, mode="replace")
        connection.commit()
    return rows
