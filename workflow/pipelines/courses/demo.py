"""A deterministic synthetic source data set shaped like the real `datacamp_application` database, and its writing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from workflow.io.load import copy_in
from workflow.io.postgres import connect
from workflow.pipelines.courses.warehouse import sql

LANGUAGES = ["r", "python", "sql", "shell", "spreadsheets", "scala", "julia", "git"]
LANGUAGE_WEIGHTS = np.array([0.40, 0.30, 0.12, 0.06, 0.05, 0.03, 0.02, 0.02])
RATING_SHARES = np.array([0.04, 0.06, 0.15, 0.30, 0.45])  # skewed high, like the real ratings
# The data sets' shapes: "demo" (`make run`'s: most users rate one or two courses, a few hundreds), and "even" (1 user
# per 10 ratings, 2% of courses without a language: the shape issue 21 measured the engines on).
SHAPES = ("demo", "even")
RATINGS_PER_USER = 10


def demo_courses(n_courses: int, seed: int = 0, no_language: float = 0.03) -> pd.DataFrame:
    """Return `n_courses` courses in a few languages, about a share `no_language` of them with no language."""
    rng = np.random.default_rng(seed)
    languages = rng.choice(LANGUAGES, size=n_courses, p=LANGUAGE_WEIGHTS).astype(object)
    languages[rng.random(n_courses) < no_language] = None
    course_id = np.arange(1, n_courses + 1)
    return pd.DataFrame(
        {
            "course_id": course_id,
            "title": [f"Course {i}: {lang or 'general'} skills" for i, lang in zip(course_id, languages, strict=True)],
            "description": [f'Learn "{lang or "data"}" step by step,\nwith exercises.' for lang in languages],
            "programming_language": languages,
        }
    )


def demo_ratings(
    n_ratings: int, courses: pd.DataFrame, until: dt.date, seed: int = 0, shape: str = "demo"
) -> pd.DataFrame:
    """Return `n_ratings` integer ratings 1..5 made in the year before `until` (fewer only if courses run out).

    Users rate mostly in one language: with the "demo" shape most users rate one or two courses, with "even"
    there is one user per 10 ratings.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: one of {', '.join(SHAPES)}")
    # Repeated (user, course) draws are dropped, so draw more until enough distinct pairs remain.
    for oversampling in (1.2, 1.5, 2.0, 3.0, 5.0):
        rng = np.random.default_rng(seed + 1)
        n_draws = int(n_ratings * oversampling) + 1
        if shape == "even":
            users = rng.integers(1, max(1, n_ratings // RATINGS_PER_USER) + 1, size=n_draws)
        else:
            users = _skewed_users(rng, n_draws, courses)
        pairs = _rated_pairs(rng, users, courses)
        if len(pairs) >= n_ratings:
            break
    course_ids = courses["course_id"].to_numpy()
    quality = rng.normal(0.0, 0.6, size=course_ids.max() + 1)
    base = rng.choice(np.arange(1, 6), size=len(pairs), p=RATING_SHARES)
    rating = np.clip(np.rint(base + quality[pairs["course_id"].to_numpy()]), 1, 5).astype(np.int64)
    end = pd.Timestamp(until, tz="UTC") + pd.Timedelta(days=1)
    rated_at = end - pd.to_timedelta(rng.integers(1, 365 * 86_400, size=len(pairs)), unit="s")
    return pairs.assign(rating=rating, rated_at=rated_at).head(n_ratings).reset_index(drop=True)


def _skewed_users(rng: np.random.Generator, n_draws: int, courses: pd.DataFrame) -> np.ndarray:
    """Return the user of each of `n_draws` draws, in runs by user: most users rate one or two courses."""
    most_per_user = max(2, min(300, len(courses) // 4))
    per_user = np.clip(np.rint(rng.lognormal(0.3, 1.9, size=n_draws)), 1, most_per_user).astype(np.int64)
    n_users = int(np.searchsorted(np.cumsum(per_user), n_draws)) + 1
    return np.repeat(np.arange(1, n_users + 1), per_user[:n_users])


def _rated_pairs(rng: np.random.Generator, user_id: np.ndarray, courses: pd.DataFrame) -> pd.DataFrame:
    """Return the distinct (user_id, course_id) pairs of one draw per given user; 80% of a user's draws are in the
    user's favourite language."""
    n_users = int(user_id.max())
    languages = courses["programming_language"].fillna("r").to_numpy()
    course_ids = courses["course_id"].to_numpy()
    favourite = rng.choice(LANGUAGES, size=n_users, p=LANGUAGE_WEIGHTS)[user_id - 1]
    course_id = course_ids[rng.integers(0, len(course_ids), size=len(user_id))]
    in_favourite = rng.random(len(user_id)) < 0.8
    for language in LANGUAGES:
        pool = course_ids[languages == language]
        chosen = in_favourite & (favourite == language)
        if len(pool):
            course_id[chosen] = pool[rng.integers(0, len(pool), size=int(chosen.sum()))]
    return pd.DataFrame({"user_id": user_id, "course_id": course_id}).drop_duplicates(ignore_index=True)


def demo_data(
    n_ratings: int, until: dt.date | None = None, seed: int = 0, shape: str = "demo"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (courses, ratings) with ratings up to `until` (today by default), of the given shape (SHAPES).

    100 courses for small sets, 1,000 from 100,000 ratings on; about 3% of them without a language ("even": 2%).
    """
    courses = demo_courses(100 if n_ratings < 100_000 else 1_000, seed, 0.0 if shape == "even" else 0.03)
    if shape == "even":  # exactly 2% without a language: every 50th course
        courses.loc[courses["course_id"] % 50 == 0, "programming_language"] = None
    return courses, demo_ratings(n_ratings, courses, until or dt.date.today(), seed, shape)


def replace_source_tables(url: str, courses: pd.DataFrame, ratings: pd.DataFrame) -> None:
    """Recreate the source tables `courses` and `rating` (with `rated_at` when given) holding exactly these rows."""
    with connect(url) as connection:
        connection.exec_driver_sql(sql("source_schema"))
        if "rated_at" in ratings.columns:
            connection.exec_driver_sql("ALTER TABLE rating ADD COLUMN rated_at timestamptz")
        copy_in(connection, "courses", courses)
        copy_in(connection, "rating", ratings)


def source_row_count(url: str) -> int:
    """Return the number of rows in the source `rating` table, 0 when it does not exist."""
    with connect(url) as connection:
        if not sa.inspect(connection).has_table("rating"):
            return 0
        return connection.execute(sa.text("SELECT count(*) FROM rating")).scalar()


def movielens_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return MovieLens (a `movies.csv` and `ratings.csv` folder) as the application's courses and rating tables: a film
    is a course, its first genre lower-cased its language, a rating a half star of 0.5 to 5 stamped (UTC) at its unix
    timestamp as `rated_at`."""
    movies = pd.read_csv(folder / "movies.csv")
    ratings = pd.read_csv(folder / "ratings.csv")
    courses = pd.DataFrame({
        "course_id": movies["movieId"], "title": movies["title"], "description": movies["genres"],
        "programming_language": movies["genres"].str.split("|").str[0].str.lower(),
    })  # fmt: skip
    rating = pd.DataFrame({
        "user_id": ratings["userId"], "course_id": ratings["movieId"], "rating": ratings["rating"].astype(float),
        "rated_at": pd.to_datetime(ratings["timestamp"], unit="s", utc=True),
    })  # fmt: skip
    return courses, rating
