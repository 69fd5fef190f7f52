"""Pure transforms of the recommendation workflow: DataFrames in, DataFrames out, no I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd

COURSE_COLUMNS = ["course_id", "title", "description", "programming_language"]
RATING_COLUMNS = ["user_id", "course_id", "rating"]


RATING_REASONS = ["missing_value", "unknown_course", "rating_out_of_range", "duplicate_pair"]
COURSE_REASONS = ["missing_course_id", "duplicate_course_id"]


class InvalidSourceDataError(ValueError):
    """Too many source rows break the rules for the run to go on."""


def _set_aside(frame: pd.DataFrame, checks: list[tuple[str, np.ndarray]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a frame into the rows that pass every check and the others, with the first failed check as `reason`."""
    first_failed = np.zeros(len(frame), dtype=np.int8)  # 0: passed every check, i: failed check i first
    for number, (_, failed) in enumerate(checks, start=1):
        first_failed[(first_failed == 0) & failed] = number
    failed_any = first_failed > 0
    names = np.array([name for name, _ in checks], dtype=object)
    quarantined = frame[failed_any].assign(reason=names[first_failed[failed_any] - 1])
    return frame[~failed_any], quarantined.reset_index(drop=True)


def reason_counts(quarantined: pd.DataFrame, reasons: list[str]) -> dict[str, int]:
    """Return how many rows were set aside for each reason, zeros included."""
    counts = quarantined["reason"].value_counts()
    return {reason: int(counts.get(reason, 0)) for reason in reasons}


def clean_courses(courses: pd.DataFrame, language_fill: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the courses with their language normalised, and those set aside for a missing or repeated course_id.

    The language is `programming_language` trimmed and lower-cased; a missing or blank one becomes
    `language_fill` (lower-cased too). Every copy of a repeated course_id is set aside: none can be trusted.
    """
    courses = courses[COURSE_COLUMNS]
    missing_id = courses["course_id"].isna().to_numpy()
    repeated_id = ~missing_id & courses["course_id"].duplicated(keep=False).to_numpy()
    kept, quarantined = _set_aside(courses, [("missing_course_id", missing_id), ("duplicate_course_id", repeated_id)])
    language = kept["programming_language"].astype("string").str.strip()
    language = language.where(language.notna() & (language != ""), language_fill)
    cleaned = kept.assign(
        course_id=kept["course_id"].astype("int64"),
        programming_language=language.str.strip().str.lower().astype(str),
    )
    return cleaned.sort_values("course_id", kind="stable").reset_index(drop=True), quarantined


def validate_ratings(
    ratings: pd.DataFrame, course_ids: pd.Series, min_rating: float, max_rating: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the valid ratings, and the others with the first rule they break as `reason`.

    A rating is valid when user_id, course_id and rating are present (NaN counts as missing), the
    course exists, min_rating <= rating <= max_rating, and no other otherwise valid row rates the
    same course by the same user: every copy of such a pair is set aside, since none can be trusted.
    """
    ratings = ratings[RATING_COLUMNS]
    missing = ratings.isna().any(axis=1).to_numpy()
    unknown_course = ~missing & ~ratings["course_id"].isin(course_ids).to_numpy()
    rating = ratings["rating"].to_numpy(dtype="float64", na_value=np.nan)
    out_of_range = ~missing & ~unknown_course & ((rating < min_rating) | (rating > max_rating))
    valid_so_far = ~(missing | unknown_course | out_of_range)
    repeated = np.zeros(len(ratings), dtype=bool)
    (pair_keys,) = _pair_keys(
        (ratings["user_id"].to_numpy()[valid_so_far], ratings["course_id"].to_numpy()[valid_so_far])
    )
    # Sort once and look for equal neighbours: much faster than hashing millions of mostly unique keys.
    ordered = np.sort(pair_keys)
    repeated_keys = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    repeated[valid_so_far] = pd.Series(pair_keys).isin(repeated_keys).to_numpy()
    valid, quarantined = _set_aside(
        ratings,
        [
            ("missing_value", missing),
            ("unknown_course", unknown_course),
            ("rating_out_of_range", out_of_range),
            ("duplicate_pair", repeated),
        ],
    )
    valid = valid.astype({"user_id": "int64", "course_id": "int64", "rating": "float64"})
    return valid.reset_index(drop=True), quarantined


def _pair_keys(*pairs: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Return (user_ids, course_ids) pairs encoded as one int64 each, comparable across the given arrays."""
    course_ids = [np.asarray(courses, dtype=np.int64) for _, courses in pairs]
    lowest = min((int(ids.min()) for ids in course_ids if len(ids)), default=0)
    width = max((int(ids.max()) for ids in course_ids if len(ids)), default=0) - lowest + 1
    return [
        np.asarray(users, dtype=np.int64) * width + (ids - lowest)
        for (users, _), ids in zip(pairs, course_ids, strict=True)
    ]


def check_invalid_share(table: str, n_rows: int, quarantined: pd.DataFrame, max_share: float) -> None:
    """Raise InvalidSourceDataError naming the table, the counts per reason and a few rows when too many are invalid."""
    if n_rows == 0 or len(quarantined) / n_rows <= max_share:
        return
    counts = quarantined["reason"].value_counts()
    examples = quarantined.groupby("reason", sort=True).head(1).head(3).to_dict("records")
    raise InvalidSourceDataError(
        f"{table}: {len(quarantined):,} of {n_rows:,} rows ({len(quarantined) / n_rows:.2%}) break the rules, "
        f"more than the {max_share:.2%} allowed ([rules] max_invalid_share): "
        + ", ".join(f"{count:,} {reason}" for reason, count in counts.items())
        + f"; for example {examples}"
    )


def average_course_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Return each rated course's mean rating (`average_rating`) and number of ratings, by course_id."""
    grouped = ratings.groupby("course_id", sort=True)["rating"]
    averages = pd.DataFrame({"average_rating": grouped.mean(), "n_ratings": grouped.size().astype("int64")})
    return averages.reset_index()


def user_languages(ratings: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return each user's languages: every language tied for the most ratings by that user, with that count."""
    languages, names = _user_language_codes(ratings, courses)
    return pd.DataFrame(
        {
            "user_id": languages["user_id"].to_numpy(),
            "programming_language": names[languages["language"].to_numpy()].astype(str),
            "n_rated": languages["n_rated"].to_numpy(),
        }
    )


def _user_language_codes(ratings: pd.DataFrame, courses: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
    """Return each user's top languages as codes (user_id, language, n_rated), and the sorted names they index.

    Integer codes rather than strings: on millions of ratings, counting integer keys is an order
    of magnitude faster and lighter than grouping by (user, language name).
    """
    codes, names = pd.factorize(courses["programming_language"], sort=True)
    course_ids = courses["course_id"].to_numpy(dtype="int64")
    lowest = int(course_ids.min()) if len(course_ids) else 0
    language_of = np.full(int(course_ids.max()) - lowest + 1 if len(course_ids) else 1, -1, dtype=np.int64)
    language_of[course_ids - lowest] = codes
    rated = ratings["course_id"].to_numpy(dtype="int64") - lowest
    known = (rated >= 0) & (rated < len(language_of))
    language = np.where(known, language_of[np.where(known, rated, 0)], -1)
    known &= language >= 0
    n_languages = max(len(names), 1)
    keys = ratings["user_id"].to_numpy(dtype="int64")[known] * n_languages + language[known]
    counts = pd.Series(keys).value_counts(sort=False)
    order = np.argsort(counts.index.to_numpy(), kind="stable")
    keys, n_rated = counts.index.to_numpy()[order], counts.to_numpy()[order]
    # keys // n and keys % n recover (user, language) for negative user ids too: numpy floors.
    counted = pd.DataFrame({"user_id": keys // n_languages, "language": keys % n_languages, "n_rated": n_rated})
    most = counted.groupby("user_id", sort=False)["n_rated"].transform("max").to_numpy()
    return counted[counted["n_rated"].to_numpy() == most].reset_index(drop=True), names


def language_rankings(averages: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return the rated courses ordered by language, then average rating (highest first), then course_id."""
    ranked = averages[["course_id", "average_rating"]].merge(
        courses[["course_id", "programming_language"]], on="course_id", how="inner", validate="one_to_one"
    )
    return ranked.sort_values(
        ["programming_language", "average_rating", "course_id"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)


def courses_to_recommend(
    ratings: pd.DataFrame, courses: pd.DataFrame, averages: pd.DataFrame, per_language: int = 3
) -> pd.DataFrame:
    """Return each user's best `per_language` unrated courses of each of their languages, with their average rating.

    Rather than pairing every user with every course of their languages, walk each language's
    ranking: a user who rated k courses of a language finds their best unrated courses among that
    language's first k + per_language, so the candidates grow with the ratings, not users x courses.
    """
    languages, names = _user_language_codes(ratings, courses)
    ranking = language_rankings(averages, courses)
    # The ranking is sorted by language name, so each language's courses are one slice of it.
    bounds = np.searchsorted(names.get_indexer(ranking["programming_language"]), np.arange(len(names) + 1))
    language = languages["language"].to_numpy()
    take = np.minimum(languages["n_rated"].to_numpy() + per_language, np.diff(bounds)[language])
    # One row per (user, language, place in that language's ranking), as plain arrays: a DataFrame
    # of all of them would be copied whole; only the rows kept become one.
    group = np.repeat(np.arange(len(languages), dtype=np.int32), take)
    place = np.arange(len(group), dtype=np.int64) - np.repeat(np.cumsum(take) - take, take)
    position = (bounds[:-1][language][group] + place).astype(np.int32)
    del place
    user_id = languages["user_id"].to_numpy()[group]
    rated_pairs, candidate_pairs = _pair_keys(
        (ratings["user_id"].to_numpy(), ratings["course_id"].to_numpy()),
        (user_id, ranking["course_id"].to_numpy()[position]),
    )
    unrated = np.flatnonzero(~pd.Series(candidate_pairs).isin(rated_pairs).to_numpy())  # hash lookup, not np.isin
    del rated_pairs, candidate_pairs
    # Rows of a (user, language) group stay contiguous and in ranking order: keep each group's first few.
    group = group[unrated]
    starts_group = np.ones(len(group), dtype=bool)
    starts_group[1:] = group[1:] != group[:-1]
    first_of_group = np.maximum.accumulate(np.where(starts_group, np.arange(len(group)), 0))
    keep = unrated[np.arange(len(group)) - first_of_group < per_language]
    return pd.DataFrame(
        {
            "user_id": user_id[keep],
            "course_id": ranking["course_id"].to_numpy()[position[keep]],
            "rating": ranking["average_rating"].to_numpy()[position[keep]],
        }
    )


def top_recommendations(candidates: pd.DataFrame, per_user: int = 3) -> pd.DataFrame:
    """Return each user's `per_user` candidates with the highest rating, ties by course_id, ranked from 1."""
    ordered = candidates.sort_values(
        ["user_id", "rating", "course_id"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)
    rank = ordered.groupby("user_id", sort=False).cumcount() + 1
    top = ordered.assign(rank=rank.astype("int64"))[rank <= per_user]
    return top[["user_id", "course_id", "rating", "rank"]].reset_index(drop=True)
