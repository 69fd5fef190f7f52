"""The courses pipeline's rules, pure: frames in, frames out, no database, file or configuration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workflow.pipelines.courses import factorization, quality
from workflow.pipelines.courses.schemas import COURSE_COLUMNS, RATING_ROLES
from workflow.rules import ratings as ratings_rules
from workflow.rules.ids import codes, combine, int64_ids, positions
from workflow.rules.quality import split_by_checks


def clean_courses(courses: pd.DataFrame, language_fill: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the courses with their language normalised, and those set aside for a missing or repeated course_id.

    The language is `programming_language` trimmed and lower-cased; a missing or blank one becomes
    `language_fill` (lower-cased too). Every copy of a repeated course_id is set aside: none can be trusted.
    """
    courses = courses[COURSE_COLUMNS]
    missing_id = courses["course_id"].isna().to_numpy()
    repeated_id = ~missing_id & courses["course_id"].duplicated(keep=False).to_numpy()
    kept, quarantined = split_by_checks(
        courses, [("missing_course_id", missing_id), ("duplicate_course_id", repeated_id)]
    )
    language = kept["programming_language"].astype("string").str.strip()
    language = language.where(language.notna() & (language != ""), language_fill)
    cleaned = kept.assign(
        course_id=kept["course_id"].astype("int64"),
        programming_language=language.str.strip().str.lower().astype(str),
    )
    return cleaned.sort_values("course_id", kind="stable").reset_index(drop=True), quarantined


def validate_ratings(
    ratings: pd.DataFrame, course_ids: pd.Series | pd.DataFrame, min_rating: float, max_rating: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the valid course ratings, and the others with the first rule they break as `reason` (rules.ratings)."""
    return ratings_rules.validate_ratings(ratings, course_ids, min_rating, max_rating, RATING_ROLES)


def average_course_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Return each rated course's mean rating (`average_rating`) and number of ratings, by course_id."""
    return ratings_rules.average_ratings(ratings, RATING_ROLES)


def user_languages(ratings: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return each user's languages: every language tied for the most ratings by that user, with that count."""
    course_ids, course_language, names = _course_languages(courses)
    (users,), coding = codes(ratings["user_id"].to_numpy(dtype="int64"))
    language = _language_of(course_ids, course_language, ratings["course_id"])
    user, top, n_rated = _top_languages(users, coding.size, language, len(names))
    return pd.DataFrame(
        {
            "user_id": coding.ids(user),
            "programming_language": names[top].astype(str),
            "n_rated": n_rated,
        }
    )


def _course_languages(courses: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Return the course ids, each course's language as a code, and the sorted language names the codes index.

    Integer codes rather than strings: on millions of ratings, counting integer keys is an order
    of magnitude faster and lighter than grouping by (user, language name).
    """
    codes, names = pd.factorize(courses["programming_language"], sort=True)
    return courses["course_id"].to_numpy(dtype="int64"), codes.astype(np.int64), names


def _language_of(course_ids: np.ndarray, course_language: np.ndarray, ids: pd.Series) -> np.ndarray:
    """Return the language code of each course id, or -1 for ids that are not among the courses."""
    return _at(course_language, positions(course_ids, ids.to_numpy(dtype="int64")))


def _at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Return values[index] as int64, or -1 where the index is -1."""
    if not len(values):
        return np.full(len(index), -1, dtype=np.int64)
    found = values.astype(np.int64, copy=False).take(index, mode="clip")  # one array: no values[index] beside it
    found[index < 0] = -1
    return found


def _count_pairs(users: np.ndarray, n_users: int, language: np.ndarray, n_languages: int) -> tuple[np.ndarray, ...]:
    """Return each distinct (user code, language code) of the rows with a language, in order, and its count."""
    width = max(n_languages, 1)
    known = language >= 0
    if known.all():
        keys = combine(users, n_users, language, width)
    else:
        keys = combine(users[known], n_users, language[known], width)
    del known
    if n_users * width <= 4 * len(keys) + 1024:  # dense keys: an array of counts, ten times faster than hashing
        counts = np.bincount(keys, minlength=n_users * width)
        keys = np.flatnonzero(counts)
        counts = counts[keys]
    else:
        counted = pd.Series(keys).value_counts(sort=False)
        order = np.argsort(counted.index.to_numpy(), kind="stable")
        keys, counts = counted.index.to_numpy()[order], counted.to_numpy()[order]
    return keys // width, keys % width, counts.astype(np.int64)


def _top_languages(users: np.ndarray, n_users: int, language: np.ndarray, n_languages: int) -> tuple[np.ndarray, ...]:
    """Return (user code, language code, n_rated) of each user's languages tied for the most rows, in order."""
    user, language, n_rated = _count_pairs(users, n_users, language, n_languages)
    if not len(user):
        return user, language, n_rated
    starts = np.flatnonzero(np.concatenate([[True], user[1:] != user[:-1]]))
    most = np.repeat(np.maximum.reduceat(n_rated, starts), np.diff(np.append(starts, len(user))))
    top = n_rated == most
    return user[top], language[top], n_rated[top]


def language_rankings(averages: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return the rated courses ordered by language, then average rating (highest first), then course_id."""
    ranked = averages[["course_id", "average_rating"]].merge(
        courses[["course_id", "programming_language"]], on="course_id", how="inner", validate="one_to_one"
    )
    return ranked.sort_values(
        ["programming_language", "average_rating", "course_id"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)


def courses_to_recommend(
    ratings: pd.DataFrame,
    courses: pd.DataFrame,
    averages: pd.DataFrame,
    per_language: int = 3,
    rated: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return each user's best `per_language` unrated courses of each of their languages, with their average rating.

    A user's languages come from their (valid) `ratings`. A course counts as rated by a user when
    any row of `rated` (the day's whole extract, whatever the rating; rows missing an id are
    ignored) holds both; without `rated`, the `ratings` are those rows. Rather than pairing every
    user with every course of their languages, walk each language's ranking: a user whose rows
    hold k courses of a language finds their best unrated courses among that language's first
    k + per_language, so the candidates grow with the rows, not users x courses.
    """
    course_ids, course_language, names = _course_languages(courses)
    n_languages = len(names)
    rated = ratings if rated is None else rated
    rated_users, rated_courses = int64_ids(rated["user_id"]), int64_ids(rated["course_id"])
    if rated["user_id"].hasnans or rated["course_id"].hasnans:
        both = rated[["user_id", "course_id"]].notna().all(axis=1).to_numpy()
        rated_users, rated_courses = rated_users[both], rated_courses[both]
    valid_language = _language_of(course_ids, course_language, ratings["course_id"])
    (valid_users, rated_users), coding = codes(ratings["user_id"].to_numpy(dtype="int64"), rated_users)
    # From here on only codes: dropping the frames frees them when the caller passed them without keeping them.
    del ratings, rated
    user, language, n_rated = _top_languages(valid_users, coding.size, valid_language, n_languages)
    del valid_users, valid_language
    rated_course = positions(course_ids, rated_courses)
    del rated_courses
    # The (user, language) group of each rated row, when it is one of the user's languages, else -1.
    rated_group = _group_of(
        rated_users, _at(course_language, rated_course), user, language, n_users=coding.size, n_languages=n_languages
    )
    del rated_users
    # k: the rated rows of the group, an upper bound of its rated courses (a course rated twice counts twice).
    k = np.maximum(n_rated, np.bincount(rated_group[rated_group >= 0], minlength=len(user)))
    ranking = language_rankings(averages, courses)
    ranking_language = names.get_indexer(ranking["programming_language"])
    # The ranking is sorted by language name, so each language's courses are one slice of it.
    bounds = np.searchsorted(ranking_language, np.arange(n_languages + 1))
    take = np.minimum(k + per_language, np.diff(bounds)[language])
    first = np.cumsum(take) - take
    # The walk: one place per (user, language, place in that language's ranking), group after group, known only
    # by a flag of whether it is rated (the rows kept are found from the flags, not from arrays of all the places).
    n_walk = int(first[-1] + take[-1]) if len(take) else 0
    # A candidate is rated when a rated row holds its user and course: mark the candidate row each
    # rated row falls on (its group's, at its course's place in its language's slice), if inside the walk.
    place_of_course = np.full(len(course_ids), -1, dtype=np.int64)
    place_of_course[positions(course_ids, ranking["course_id"].to_numpy(dtype="int64"))] = (
        np.arange(len(ranking)) - bounds[ranking_language]
    )
    place = _at(place_of_course, rated_course)
    del rated_course
    hits = np.flatnonzero((rated_group >= 0) & (place >= 0))
    place, hit_group = place[hits], rated_group[hits]
    del rated_group, hits
    inside_walk = place < take[hit_group]
    is_rated = np.zeros(n_walk, dtype=bool)
    is_rated[first[hit_group[inside_walk]] + place[inside_walk]] = True
    del place, hit_group, inside_walk
    unrated = np.flatnonzero(~is_rated)
    # Each group's places are contiguous and in ranking order, and so are its unrated ones in `unrated`: keep the
    # first few of each (a group has at least one place: its user rated a course of its language).
    n_unrated = take - np.add.reduceat(is_rated.view(np.uint8), first, dtype=np.int64) if len(take) else take
    del is_rated
    n_kept = np.minimum(n_unrated, per_language)
    group = np.repeat(np.arange(len(user)), n_kept)
    offset = np.arange(len(group)) - np.repeat(np.cumsum(n_kept) - n_kept, n_kept)  # 0, 1, 2 within each group
    keep = unrated[np.repeat(np.cumsum(n_unrated) - n_unrated, n_kept) + offset]
    del unrated, offset
    position = keep - first[group] + bounds[language[group]]  # the place's row in `ranking`
    return pd.DataFrame(
        {
            "user_id": coding.ids(user[group]),
            "course_id": ranking["course_id"].to_numpy()[position],
            "rating": ranking["average_rating"].to_numpy()[position],
        },
        copy=False,
    )


def _group_of(
    users: np.ndarray, language: np.ndarray, group_user: np.ndarray, group_language: np.ndarray, *, n_users: int,
    n_languages: int,
) -> np.ndarray:  # fmt: skip
    """Return, for each (user code, language code) row, the index of the equal (group_user, group_language), or -1.

    The groups must be distinct and in increasing order of (user, language); rows with language -1 get -1.
    """
    width = max(n_languages, 1)
    group_keys = combine(group_user, n_users, group_language, width)
    unknown = language < 0
    keys = combine(users, n_users, np.where(unknown, 0, language), width)
    if n_users * width <= 4 * len(keys) + 1024:  # dense keys: a table over them, faster than a binary search
        table = np.full(n_users * width, -1, dtype=np.int64)
        table[group_keys] = np.arange(len(group_keys))
        found = table[keys]
    else:
        index = np.minimum(np.searchsorted(group_keys, keys), max(len(group_keys) - 1, 0))
        found = np.where(group_keys[index] == keys, index, -1) if len(group_keys) else np.full(len(keys), -1)
    found[unknown] = -1
    return found


def top_recommendations(candidates: pd.DataFrame, per_user: int = 3) -> pd.DataFrame:
    """Return each user's `per_user` candidates with the highest rating, ties by course_id, ranked from 1."""
    user = candidates["user_id"].to_numpy(dtype="int64")
    rating = candidates["rating"].to_numpy(dtype="float64")
    course = candidates["course_id"].to_numpy(dtype="int64")
    order = _best_first(user, rating, course)
    user, rating, course = user[order], rating[order], course[order]
    starts = np.ones(len(user), dtype=bool)
    starts[1:] = user[1:] != user[:-1]
    rank = np.arange(len(user)) - np.maximum.accumulate(np.where(starts, np.arange(len(user)), 0)) + 1
    kept = rank <= per_user
    return pd.DataFrame(
        {"user_id": user[kept], "course_id": course[kept], "rating": rating[kept], "rank": rank[kept]}, copy=False
    )


def _best_first(user: np.ndarray, rating: np.ndarray, course: np.ndarray) -> np.ndarray:
    """Return the order of the rows by user, then rating (highest first), then course_id.

    The walk's candidates come grouped by user and each language's in ranking order, so usually only the few users
    with two languages need sorting: the rows already in order stay where they are.
    """
    if len(user) < 2 or np.any(user[1:] < user[:-1]):
        return np.lexsort((course, -rating, user))
    same_user = user[1:] == user[:-1]
    in_order = (rating[:-1] > rating[1:]) | ((rating[:-1] == rating[1:]) & (course[:-1] < course[1:]))
    unsorted_users = np.unique(user[1:][same_user & ~in_order])
    order = np.arange(len(user))
    if len(unsorted_users):
        rows = np.flatnonzero(np.isin(user, unsorted_users))  # whole users, in user order: sorted among themselves
        order[rows] = rows[np.lexsort((course[rows], -rating[rows], user[rows]))]
    return order


def als_recommendations(
    ratings: pd.DataFrame,
    rated: pd.DataFrame,
    fallback: pd.DataFrame,
    *,
    per_user: int,
    rank: int,
    regularization: float,
    iterations: int,
    seed: int,
    min_rating: float,
    max_rating: float,
) -> tuple[pd.DataFrame, int]:
    """Return each user's top `per_user` unrated courses by predicted rating, and how many users fell back to the
    case study's rule.

    The predictions come from alternating least squares over the valid `ratings` (factorization.fit); a
    user is recommended the courses with factors that no row of `rated` pairs with them, ranked by the
    predicted rating clipped to [min_rating, max_rating], ties to the lower course_id. Users of `fallback`
    (the rule's top recommendations) with no valid rating keep its rows as they are.
    """
    factors = factorization.fit(ratings, rank=rank, regularization=regularization, iterations=iterations, seed=seed)
    top = factorization.top_courses(factors, rated, per_user=per_user, min_rating=min_rating, max_rating=max_rating)
    # The rule recommends only to users with valid ratings, so with the daily data no user falls back:
    # the count is there for callers whose fallback covers more users.
    return factorization.with_fallback(top, factors, fallback)


def held_out_ratings(ratings: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Return the rating each user with at least 2 valid ratings holds out for the evaluation (user_id, course_id,
    rating, sorted by user_id): the most recent by `rated_at`, ties to the higher course_id; for a user with no
    stamp, the one with the smallest quality.hold_out_hash, ties to the lower course_id."""
    held = ratings[quality.held_out_mask(ratings, seed)][["user_id", "course_id", "rating"]]
    return held.sort_values("user_id", kind="stable", ignore_index=True)


def recommendation_quality(
    ratings: pd.DataFrame,
    rated: pd.DataFrame,
    courses: pd.DataFrame,
    *,
    per_user: int,
    rank: int,
    regularization: float,
    iterations: int,
    seed: int,
    min_rating: float,
    max_rating: float,
    relevant: float = 4.0,
) -> pd.DataFrame:
    """Return the offline quality of the case study's rule and of ALS, one row per method (quality.QUALITY_TYPES).

    Each user with at least 2 valid ratings holds one out (held_out_ratings); both methods are fitted on the
    others, with the held-out pairs no longer counted as rated, and scored on the held-out ratings: the
    rule predicts a course's training average, ALS its clipped u.v, else the course average.
    """
    held_mask = quality.held_out_mask(ratings, seed)
    held = ratings[held_mask][["user_id", "course_id", "rating"]].reset_index(drop=True)
    train = ratings[~held_mask][["user_id", "course_id", "rating"]].reset_index(drop=True)
    rated_eval = quality.without_pairs(rated[["user_id", "course_id"]], held)
    averages = average_course_ratings(train)
    candidates = courses_to_recommend(
        train[["user_id", "course_id"]], courses, averages, per_language=per_user, rated=rated_eval
    )
    rule_top = top_recommendations(candidates, per_user)
    average = averages["average_rating"].to_numpy()
    found = positions(averages["course_id"].to_numpy(dtype="int64"), held["course_id"].to_numpy(dtype="int64"))
    rule_predicted = np.where(found >= 0, average[np.maximum(found, 0)] if len(average) else np.nan, np.nan)
    factors = factorization.fit(train, rank=rank, regularization=regularization, iterations=iterations, seed=seed)
    als_top = factorization.top_courses(
        factors, rated_eval, per_user=per_user, min_rating=min_rating, max_rating=max_rating
    )
    als_top, n_fallback = factorization.with_fallback(als_top, factors, rule_top)
    als_predicted = factors.predict(
        held["user_id"].to_numpy(dtype="int64"), held["course_id"].to_numpy(dtype="int64"), min_rating, max_rating
    )
    als_predicted = np.where(np.isnan(als_predicted), rule_predicted, als_predicted)
    n_listed = als_top["user_id"].nunique()
    counts = {"n_courses": len(courses), "relevant": relevant}
    return quality.quality_frame(
        [
            quality.method_quality(
                "language_rule",
                held.assign(predicted=rule_predicted, rank=quality.with_ranks(held, rule_top)),
                n_recommended_courses=rule_top["course_id"].nunique(),
                n_personal=0,
                n_listed=rule_top["user_id"].nunique(),
                n_fallback=0,
                **counts,
            ),
            quality.method_quality(
                "als",
                held.assign(predicted=als_predicted, rank=quality.with_ranks(held, als_top)),
                n_recommended_courses=als_top["course_id"].nunique(),
                n_personal=n_listed - n_fallback,
                n_listed=n_listed,
                n_fallback=n_fallback,
                **counts,
            ),
        ]
    )
