"""The rules spelled out the slow way, independently of the package: what its tests compare the pipeline with.

The plain-Python reference reads the rules row by row with loops, dicts, sets and Counters; the brute
force pairs every user with every course of their languages with pandas, then sorts. The film
pipeline's ratings follow the same rules as the courses' (with `unknown_film`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pandas as pd

Row = tuple[object, ...]


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def plain(value: object) -> object:
    """A frame cell as a comparable plain value: None when missing."""
    return None if pd.isna(value) else value


def expected_clean(rows: list[Row], fill: str) -> tuple[list[Row], list[Row]]:
    """Return the cleaned courses sorted by id, and (course_id, title, reason) of each set aside, in input order."""
    copies = Counter(int(row[0]) for row in rows if not is_missing(row[0]))
    cleaned, quarantined = [], []
    for course_id, title, description, language in rows:
        if is_missing(course_id):
            quarantined.append((None, title, "missing_course_id"))
        elif copies[int(course_id)] > 1:
            quarantined.append((int(course_id), title, "duplicate_course_id"))
        else:
            text = language.strip() if isinstance(language, str) else ""
            cleaned.append((int(course_id), title, description, (text or fill).lower()))
    return sorted(cleaned, key=lambda row: row[0]), quarantined


def first_broken_rule(
    row: Row, course_ids: set[int], low: float, high: float, unknown: str = "unknown_course"
) -> str | None:
    """Return the first rule a single row breaks, or None (the rules about other rows come after)."""
    user, course, rating, *stamp = row
    if is_missing(user) or is_missing(course) or is_missing(rating):
        return "missing_value"
    if stamp and is_missing(stamp[0]):
        return "missing_timestamp"
    if course not in course_ids:
        return unknown
    if not low <= rating <= high:
        return "rating_out_of_range"
    return None


def expected_validate(
    rows: list[Row], course_ids: set[int], low: float, high: float, unknown: str = "unknown_course"
) -> tuple[list[Row], list[Row]]:
    """Return the valid (user, course, rating[, rated_at]) rows, and each other row with its reason, in input order.

    Rows are (user, course, rating), or (user, course, rating, rated_at) when the extract has timestamps;
    a rating of an item not in course_ids is set aside as `unknown`.
    """
    stamped = bool(rows) and len(rows[0]) == 4
    first_failed = [first_broken_rule(row, course_ids, low, high, unknown) for row in rows]
    # The stamps of each pair's copies that break no rule so far: the strictly latest alone is the rating.
    copies: dict[tuple, list] = defaultdict(list)
    for row, failed in zip(rows, first_failed, strict=True):
        if failed is None:
            copies[(row[0], row[1])].append(row[3] if stamped else None)
    valid, quarantined = [], []
    for row, failed in zip(rows, first_failed, strict=True):
        stamps = copies[(row[0], row[1])]
        reason = failed
        if failed is None and len(stamps) > 1:
            if stamped and row[3] < max(stamps):
                reason = "superseded"
            elif not stamped or stamps.count(row[3]) > 1:
                reason = "duplicate_pair"
        if reason is None:
            valid.append((row[0], row[1], float(row[2]), *row[3:4]))  # the stamp stays with a valid rating
        else:
            quarantined.append((*(None if is_missing(v) else v for v in row), reason))
    return valid, quarantined


def expected_averages(valid: list[Row]) -> list[Row]:
    """Return (item, mean rating, number of ratings) of each item of the valid (user, item, rating[, rated_at]) rows,
    by item."""
    ratings: dict[int, list[float]] = defaultdict(list)
    for _, item, rating, *_ in valid:
        ratings[item].append(rating)
    return [(item, sum(values) / len(values), len(values)) for item, values in sorted(ratings.items())]


def expected_co_rentals(rows: list[Row], film_ids: set[int], per_film: int) -> dict[int, list[int]]:
    """Return each film's `per_film` other films rented by the most of its customers, ties to the lower id.

    Rows are (customer, film); those missing either, or of a film not in film_ids, are ignored.
    """
    customers: dict[int, set] = {film: set() for film in film_ids}
    for customer, film in rows:
        if not is_missing(customer) and film in customers:
            customers[film].add(customer)
    recommended = {}
    for film in sorted(film_ids):
        shared = {other: len(customers[film] & customers[other]) for other in film_ids if other != film}
        ranked = sorted((other for other, n in shared.items() if n > 0), key=lambda other: (-shared[other], other))
        recommended[film] = ranked[:per_film]
    return recommended


def expected_top(
    rating_rows: list[Row], course_rows: list[Row], fill: str, low: float, high: float, *, per_user: int = 3
) -> list[Row]:
    """Return (user_id, course_id, average, rank) of each user's best unrated courses of their languages."""
    cleaned, _ = expected_clean(course_rows, fill)
    language = {row[0]: row[3] for row in cleaned}
    valid, _ = expected_validate(rating_rows, set(language), low, high)
    sums: dict[int, float] = defaultdict(float)
    counts: Counter[int] = Counter()
    rated_validly: dict[int, set[int]] = defaultdict(set)
    for user, course, rating, *_ in valid:
        sums[course] += rating
        counts[course] += 1
        rated_validly[user].add(course)
    # Rated: any row holding the user and the course, whatever else it holds or lacks.
    rated = rated_pairs(rating_rows)
    average = {course: sums[course] / counts[course] for course in counts}
    top = []
    for user in sorted(rated_validly):
        per_language = Counter(language[course] for course in rated_validly[user])
        most = max(per_language.values())
        languages = {name for name, n in per_language.items() if n == most}
        eligible = [c for c in average if language[c] in languages and (user, c) not in rated]
        eligible.sort(key=lambda course: (-average[course], course))
        top += [(user, c, average[c], rank) for rank, c in enumerate(eligible[:per_user], start=1)]
    return top


def rated_pairs(rating_rows: list[Row]) -> set[tuple[int, int]]:
    """Return the (user, course) of every row that holds both."""
    return {(row[0], row[1]) for row in rating_rows if not is_missing(row[0]) and not is_missing(row[1])}


def brute_force_recommendations(ratings: pd.DataFrame, courses: pd.DataFrame, per_user: int) -> pd.DataFrame:
    """The rules spelled out the slow way: every user x course of their languages, then sort."""
    averages = ratings.groupby("course_id")["rating"].mean().rename("rating").reset_index()
    rated = ratings.merge(courses, on="course_id")
    counts = rated.groupby(["user_id", "programming_language"]).size().rename("n").reset_index()
    top = counts[counts["n"] == counts.groupby("user_id")["n"].transform("max")]
    pairs = top.merge(courses, on="programming_language").merge(averages, on="course_id")
    seen = set(zip(ratings["user_id"], ratings["course_id"], strict=True))
    pairs = pairs[[(u, c) not in seen for u, c in zip(pairs["user_id"], pairs["course_id"], strict=True)]]
    pairs = pairs.sort_values(["user_id", "rating", "course_id"], ascending=[True, False, True])
    best = pairs.groupby("user_id").head(per_user)
    best = best.assign(rank=best.groupby("user_id").cumcount() + 1)
    return best[["user_id", "course_id", "rating", "rank"]].reset_index(drop=True)
