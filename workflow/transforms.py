"""Pure transforms of the recommendation workflow: DataFrames in, DataFrames out, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

COURSE_COLUMNS = ["course_id", "title", "description", "programming_language"]
RATING_COLUMNS = ["user_id", "course_id", "rating"]
# The extract's timestamp of a rating (UTC), whatever the source calls it ([source] rating_timestamp_column).
RATED_AT = "rated_at"

# In the order the logs and run records count them (the checks run in the order validate_ratings lists).
RATING_REASONS = [
    "missing_value", "unknown_course", "rating_out_of_range", "duplicate_pair", "missing_timestamp", "superseded",
]  # fmt: skip
COURSE_REASONS = ["missing_course_id", "duplicate_course_id"]
# Rows set aside because a newer copy replaced them, not because they break a rule: they do not
# count toward [rules] max_invalid_share.
UNCOUNTED_REASONS = ["superseded"]
INT64_MAX = int(np.iinfo(np.int64).max)


class InvalidSourceDataError(ValueError):
    """Too many source rows break the rules for the run to go on."""


def _set_aside(
    frame: pd.DataFrame, checks: list[tuple[str, np.ndarray]], kept_columns: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a frame into the rows that pass every check (with kept_columns only, when given) and the others.

    The others get the first check they fail as `reason`.
    """
    first_failed = np.zeros(len(frame), dtype=np.int8)  # 0: passed every check, i: failed check i first
    for number, (_, failed) in enumerate(checks, start=1):
        first_failed[(first_failed == 0) & failed] = number
    failed_any = first_failed > 0
    names = np.array([name for name, _ in checks], dtype=object)
    quarantined = frame[failed_any].assign(reason=names[first_failed[failed_any] - 1])
    kept = frame[~failed_any] if kept_columns is None else frame.loc[~failed_any, kept_columns]
    return kept, quarantined.reset_index(drop=True)


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

    The rules, checked in this order: user_id, course_id and rating are present (NaN counts as
    missing; `missing_value`); `rated_at` is present when the frame has that column
    (`missing_timestamp`); the course exists (`unknown_course`); min_rating <= rating <= max_rating
    (`rating_out_of_range`). Among the rows that pass them, a (user, course) pair held by several
    copies keeps only the copy with the strictly latest `rated_at`: older copies are `superseded`,
    and copies sharing the latest stamp, or every copy when there is no `rated_at`, are set aside
    as `duplicate_pair`, since none of them can be trusted. Ids may be any int64, or float64 or
    nullable Int64 with missing values.
    """
    stamped = RATED_AT in ratings.columns
    ratings = ratings[RATING_COLUMNS + [RATED_AT] * stamped]
    missing = ratings[RATING_COLUMNS].isna().any(axis=1).to_numpy()
    no_stamp = ratings[RATED_AT].isna().to_numpy() if stamped else np.zeros(len(ratings), dtype=bool)
    known_courses = np.unique(np.asarray(course_ids, dtype=np.int64))
    course = _positions(known_courses, _int64(ratings["course_id"]))
    rating = ratings["rating"].to_numpy(dtype="float64", na_value=np.nan)
    out_of_range = (rating < min_rating) | (rating > max_rating)
    unknown_course = course < 0
    valid_so_far = ~(missing | no_stamp | unknown_course | out_of_range)
    (users,), coding = _codes(_int64(ratings["user_id"])[valid_so_far])
    pair_keys = _combine(users, coding.size, course[valid_so_far], len(known_courses))
    del users, course
    stamps = pd.to_datetime(ratings[RATED_AT], utc=True).array.asi8 if stamped else None  # a view, no copy
    superseded, duplicate = np.zeros(len(ratings), dtype=bool), np.zeros(len(ratings), dtype=bool)
    superseded[valid_so_far], duplicate[valid_so_far] = _repeated_copies(
        pair_keys, None if stamps is None else lambda rows: stamps[np.flatnonzero(valid_so_far)[rows]]
    )
    valid, quarantined = _set_aside(
        ratings,
        [
            ("missing_value", missing),
            ("missing_timestamp", no_stamp),
            ("unknown_course", unknown_course),
            ("rating_out_of_range", out_of_range),
            ("superseded", superseded),
            ("duplicate_pair", duplicate),
        ],
        kept_columns=RATING_COLUMNS,
    )
    valid = valid.astype({"user_id": "int64", "course_id": "int64", "rating": "float64"})
    return valid.reset_index(drop=True), quarantined


def _repeated_copies(
    keys: np.ndarray, stamps_of: Callable[[np.ndarray], np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return which rows of repeated keys are superseded (older than the key's latest stamp) and which are duplicates.

    `stamps_of(rows)` returns the stamps of those rows (asked for the repeated ones only). Duplicates
    are the rows sharing their key's latest stamp with another row, or, without stamps, every row of
    a repeated key.
    """
    # Sort once and look for equal neighbours: much faster than hashing millions of mostly unique keys.
    ordered = np.sort(keys)
    repeated_keys = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    repeated = pd.Series(keys).isin(repeated_keys).to_numpy()
    superseded = np.zeros(len(keys), dtype=bool)
    if stamps_of is None or not repeated.any():
        return superseded, repeated
    rows = np.flatnonzero(repeated)  # usually few: the grouping below costs nothing on millions of ratings
    copies = pd.DataFrame({"key": keys[rows], "stamp": stamps_of(rows)})
    latest = copies["stamp"].to_numpy() == copies.groupby("key")["stamp"].transform("max").to_numpy()
    n_latest = pd.Series(latest).groupby(copies["key"].to_numpy()).transform("sum").to_numpy()
    superseded[rows] = ~latest
    duplicate = np.zeros(len(keys), dtype=bool)
    duplicate[rows] = latest & (n_latest > 1)
    return superseded, duplicate


@dataclass(frozen=True)
class _Coding:
    """How int64 ids of one kind became codes 0 <= code < size, equal exactly when the ids are."""

    size: int
    lowest: int  # code = id - lowest, when `uniques` is None
    uniques: np.ndarray | None  # otherwise id = uniques[code]

    def ids(self, codes: np.ndarray) -> np.ndarray:
        """Return the ids the codes stand for."""
        return codes + self.lowest if self.uniques is None else self.uniques[codes]


def _codes(*arrays: np.ndarray) -> tuple[list[np.ndarray], _Coding]:
    """Return the int64 ids of the arrays as codes, in the ids' order, below a size proportional to their number.

    Dense ids (spanning at most about twice their number) become id - lowest, which costs nothing;
    others, any int64 ids (negative, huge, sparse), are numbered by hashing (pd.factorize).
    """
    arrays = tuple(np.asarray(ids, dtype=np.int64) for ids in arrays)
    present = [ids for ids in arrays if len(ids)]
    if not present:
        return list(arrays), _Coding(0, 0, None)
    lowest, highest = min(int(ids.min()) for ids in present), max(int(ids.max()) for ids in present)
    n_values = sum(len(ids) for ids in arrays)
    if highest - lowest < 2 * n_values + 1024:  # Python ints: no overflow, whatever the ids
        return [ids - lowest for ids in arrays], _Coding(highest - lowest + 1, lowest, None)
    codes, uniques = pd.factorize(np.concatenate(arrays), sort=True)
    parts = np.split(codes.astype(np.int64), np.cumsum([len(ids) for ids in arrays])[:-1])
    return parts, _Coding(len(uniques), 0, np.asarray(uniques, dtype=np.int64))


def _int64(ids: pd.Series) -> np.ndarray:
    """Return a column of ids as int64 (missing ones as 0), without a copy when it is int64 already."""
    return ids.to_numpy() if ids.dtype == np.int64 else ids.to_numpy(dtype="int64", na_value=0)


def _positions(known: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Return each id's position in `known` (distinct int64 ids), or -1 for the ids not in it."""
    known, ids = np.asarray(known, dtype=np.int64), np.asarray(ids, dtype=np.int64)
    if not len(known):
        return np.full(len(ids), -1, dtype=np.int64)
    lowest, highest = int(known.min()), int(known.max())
    if highest - lowest >= 2 * len(known) + 1024:  # sparse ids: a hash lookup, exact for any int64
        return pd.Index(known).get_indexer(ids).astype(np.int64)
    # Dense ids: a table over their range (at most about twice their number), faster than hashing.
    table = np.full(highest - lowest + 1, -1, dtype=np.int64)
    table[known - lowest] = np.arange(len(known))
    inside = (ids >= lowest) & (ids <= highest)
    if inside.all():
        return table[ids - lowest]
    positions = np.full(len(ids), -1, dtype=np.int64)
    positions[inside] = table[ids[inside] - lowest]
    return positions


def _combine(codes: np.ndarray, size: int, other: np.ndarray, width: int) -> np.ndarray:
    """Return one int64 key per (code, other) pair, codes below `size` and other in [0, width): code * width + other."""
    width = max(width, 1)
    if size * width > INT64_MAX:  # codes grow with the rows: unreachable for data that fits in memory
        raise OverflowError(f"{size:,} x {width:,} pair keys do not fit in 64 bits")
    keys = codes * width
    keys += other
    return keys


def check_invalid_share(table: str, n_rows: int, quarantined: pd.DataFrame, max_share: float) -> None:
    """Raise InvalidSourceDataError naming the table, the counts per reason and a few rows when too many are invalid.

    Rows set aside for one of UNCOUNTED_REASONS (older copies of a re-rated pair) are not invalid:
    they count neither toward the share nor in the message's counts, which mentions them apart.
    """
    invalid = quarantined[~quarantined["reason"].isin(UNCOUNTED_REASONS).to_numpy()]
    if n_rows == 0 or len(invalid) / n_rows <= max_share:
        return
    counts = invalid["reason"].value_counts()
    examples = invalid.groupby("reason", sort=True).head(1).head(3).to_dict("records")
    uncounted = quarantined.loc[quarantined["reason"].isin(UNCOUNTED_REASONS).to_numpy(), "reason"].value_counts()
    raise InvalidSourceDataError(
        f"{table}: {len(invalid):,} of {n_rows:,} rows ({len(invalid) / n_rows:.2%}) break the rules, "
        f"more than the {max_share:.2%} allowed ([rules] max_invalid_share): "
        + ", ".join(f"{count:,} {reason}" for reason, count in counts.items())
        + "".join(f" (and {count:,} {reason}, not counted)" for reason, count in uncounted.items())
        + f"; for example {examples}"
    )


def average_course_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Return each rated course's mean rating (`average_rating`) and number of ratings, by course_id."""
    grouped = ratings.groupby("course_id", sort=True)["rating"]
    averages = pd.DataFrame({"average_rating": grouped.mean(), "n_ratings": grouped.size().astype("int64")})
    return averages.reset_index()


def user_languages(ratings: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return each user's languages: every language tied for the most ratings by that user, with that count."""
    course_ids, course_language, names = _course_languages(courses)
    (users,), coding = _codes(ratings["user_id"].to_numpy(dtype="int64"))
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
    return _at(course_language, _positions(course_ids, ids.to_numpy(dtype="int64")))


def _at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Return values[index] as int64, or -1 where the index is -1."""
    if not len(values):
        return np.full(len(index), -1, dtype=np.int64)
    return np.where(index >= 0, values[index], -1)


def _count_pairs(users: np.ndarray, n_users: int, language: np.ndarray, n_languages: int) -> tuple[np.ndarray, ...]:
    """Return each distinct (user code, language code) of the rows with a language, in order, and its count."""
    width = max(n_languages, 1)
    known = language >= 0
    if known.all():
        keys = _combine(users, n_users, language, width)
    else:
        keys = _combine(users[known], n_users, language[known], width)
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
    rated_users, rated_courses = _int64(rated["user_id"]), _int64(rated["course_id"])
    if rated["user_id"].hasnans or rated["course_id"].hasnans:
        both = rated[["user_id", "course_id"]].notna().all(axis=1).to_numpy()
        rated_users, rated_courses = rated_users[both], rated_courses[both]
    (valid_users, rated_users), coding = _codes(ratings["user_id"].to_numpy(dtype="int64"), rated_users)
    user, language, n_rated = _top_languages(
        valid_users, coding.size, _language_of(course_ids, course_language, ratings["course_id"]), n_languages
    )
    del valid_users
    rated_course = _positions(course_ids, rated_courses)
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
    # One row per (user, language, place in that language's ranking), as plain arrays: a DataFrame
    # of all of them would be copied whole; only the rows kept become one.
    group = np.repeat(np.arange(len(user), dtype=np.int32), take)
    position = (np.arange(len(group), dtype=np.int64) - np.repeat(first - bounds[:-1][language], take)).astype(np.int32)
    # A candidate is rated when a rated row holds its user and course: mark the candidate row each
    # rated row falls on (its group's, at its course's place in its language's slice), if inside the walk.
    place_of_course = np.full(len(course_ids), -1, dtype=np.int64)
    place_of_course[_positions(course_ids, ranking["course_id"].to_numpy(dtype="int64"))] = (
        np.arange(len(ranking)) - bounds[ranking_language]
    )
    place = _at(place_of_course, rated_course)
    del rated_course
    hits = np.flatnonzero((rated_group >= 0) & (place >= 0))
    place, hit_group = place[hits], rated_group[hits]
    del rated_group, hits
    inside_walk = place < take[hit_group]
    is_rated = np.zeros(len(group), dtype=bool)
    is_rated[first[hit_group[inside_walk]] + place[inside_walk]] = True
    del place, hit_group, inside_walk
    unrated = np.flatnonzero(~is_rated)
    del is_rated
    # Rows of a (user, language) group stay contiguous and in ranking order: keep each group's first few.
    group = group[unrated]
    starts_group = np.ones(len(group), dtype=bool)
    starts_group[1:] = group[1:] != group[:-1]
    first_of_group = np.maximum.accumulate(np.where(starts_group, np.arange(len(group)), 0))
    kept = np.arange(len(group)) - first_of_group < per_language
    keep = unrated[kept]
    return pd.DataFrame(
        {
            "user_id": coding.ids(user[group[kept]]),
            "course_id": ranking["course_id"].to_numpy()[position[keep]],
            "rating": ranking["average_rating"].to_numpy()[position[keep]],
        }
    )


def _group_of(
    users: np.ndarray, language: np.ndarray, group_user: np.ndarray, group_language: np.ndarray, *, n_users: int,
    n_languages: int,
) -> np.ndarray:  # fmt: skip
    """Return, for each (user code, language code) row, the index of the equal (group_user, group_language), or -1.

    The groups must be distinct and in increasing order of (user, language); rows with language -1 get -1.
    """
    width = max(n_languages, 1)
    group_keys = _combine(group_user, n_users, group_language, width)
    unknown = language < 0
    keys = _combine(users, n_users, np.where(unknown, 0, language), width)
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
    ordered = candidates.sort_values(
        ["user_id", "rating", "course_id"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)
    rank = ordered.groupby("user_id", sort=False).cumcount() + 1
    top = ordered.assign(rank=rank.astype("int64"))[rank <= per_user]
    return top[["user_id", "course_id", "rating", "rank"]].reset_index(drop=True)
