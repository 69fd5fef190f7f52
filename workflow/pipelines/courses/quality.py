"""Offline quality of the recommendation methods, pure: which rating each user holds out, and the figures of a method
on the held-out ratings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workflow.rules.ids import codes, int64_ids, positions
from workflow.rules.ratings import RATED_AT, utc_stamps

METHODS = ("language_rule", "als")
# The columns of recommendation_quality's frame, one row per method, with their types.
QUALITY_TYPES = {
    "method": "object",
    "n_users": "int64",
    "n_held_out": "int64",
    "n_predicted": "int64",
    "rmse": "float64",
    "mae": "float64",
    "n_relevant": "int64",
    "hit_rate": "float64",
    "ndcg": "float64",
    "coverage": "float64",
    "personal_share": "float64",
    "n_fallback": "int64",
}
# The seeded choice of a held-out rating without stamps: a Lehmer-style hash modulo the Mersenne prime 2^31 - 1,
# whose every intermediate fits int64, so that Spark (pmod on longs) picks the same rows.
PRIME = 2_147_483_647
USER_MULTIPLIER, COURSE_MULTIPLIER = 48_271, 69_621


def hold_out_hash(user_ids: np.ndarray, course_ids: np.ndarray, seed: int) -> np.ndarray:
    """Return ((user_id mod P) * 48271 + (course_id mod P) * 69621 + seed) mod P of each rating (P = 2^31 - 1)."""
    users, courses = np.asarray(user_ids, dtype=np.int64) % PRIME, np.asarray(course_ids, dtype=np.int64) % PRIME
    return (users * USER_MULTIPLIER + courses * COURSE_MULTIPLIER + seed) % PRIME


def held_out_mask(ratings: pd.DataFrame, seed: int) -> np.ndarray:
    """Return which ratings are held out: one per user with at least 2, the most recent by `rated_at` (ties: the
    higher course_id), or for a user with no stamp at all the one with the smallest hold_out_hash (ties: the lower
    course_id).

    A user's ratings without a stamp count as older than their stamped ones.
    """
    user_ids, course_ids = ratings["user_id"].to_numpy(dtype="int64"), ratings["course_id"].to_numpy(dtype="int64")
    (users,), user_coding = codes(user_ids)
    (courses,), _ = codes(course_ids)  # codes keep the ids' order
    n_ratings = np.bincount(users, minlength=user_coding.size)
    if RATED_AT in ratings.columns:
        stamps = utc_stamps(ratings[RATED_AT])  # NaT is the smallest int64
        stamped = np.bincount(users, weights=stamps != np.iinfo(np.int64).min, minlength=user_coding.size) > 0
    else:
        stamps, stamped = np.zeros(len(ratings), dtype=np.int64), np.zeros(user_coding.size, dtype=bool)
    by_stamp = stamped[users]
    first = stamps.copy()  # the first key, then the second, then the row's position: the greatest is held out
    hashed = np.flatnonzero(~by_stamp)
    first[hashed] = -hold_out_hash(user_ids[hashed], course_ids[hashed], seed)
    second = np.where(by_stamp, courses, -courses)
    greatest = np.full(user_coding.size, np.iinfo(np.int64).min)
    np.maximum.at(greatest, users, first)
    candidates = np.flatnonzero(first == greatest[users])  # each user's rows with the greatest first key
    greatest[:] = np.iinfo(np.int64).min
    np.maximum.at(greatest, users[candidates], second[candidates])
    candidates = candidates[second[candidates] == greatest[users[candidates]]]
    last = np.full(user_coding.size, -1)
    np.maximum.at(last, users[candidates], candidates)
    held = np.zeros(len(ratings), dtype=bool)
    held[last[n_ratings >= 2]] = True  # a user with a rating has a candidate: last >= 0 there
    return held


def without_pairs(rated: pd.DataFrame, held_out: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of `rated` whose (user_id, course_id) is not a held-out pair (one held-out course per user)."""
    held_users = held_out["user_id"].to_numpy(dtype="int64")
    order = np.argsort(held_users, kind="stable")
    held_users, held_courses = held_users[order], held_out["course_id"].to_numpy(dtype="int64")[order]
    user = positions(held_users, int64_ids(rated["user_id"]))
    both = rated[["user_id", "course_id"]].notna().all(axis=1).to_numpy()
    course = held_courses[np.maximum(user, 0)] if len(held_courses) else np.zeros(len(user), dtype=np.int64)
    pair = both & (user >= 0) & (course == int64_ids(rated["course_id"]))
    return rated[~pair].reset_index(drop=True)


def method_quality(
    method: str,
    held_out: pd.DataFrame,
    *,
    n_recommended_courses: int,
    n_courses: int,
    n_personal: int,
    n_listed: int,
    n_fallback: int,
    relevant: float,
) -> dict[str, object]:
    """Return a method's row of quality figures from its held-out ratings (`rating`, `predicted`: NaN when not
    predicted, `rank`: the held-out course's place in the user's list, NaN when not in it) and its counts."""
    rating, predicted = held_out["rating"].to_numpy(dtype="float64"), held_out["predicted"].to_numpy(dtype="float64")
    error = (predicted - rating)[~np.isnan(predicted)]
    rank = held_out["rank"].to_numpy(dtype="float64")[rating >= relevant]
    gain = np.where(np.isnan(rank), 0.0, 1.0 / np.log2(1.0 + np.nan_to_num(rank, nan=1.0)))
    return {
        "method": method,
        "n_users": int(held_out["user_id"].nunique()),
        "n_held_out": len(held_out),
        "n_predicted": len(error),
        "rmse": float(np.sqrt(np.mean(error**2))) if len(error) else np.nan,
        "mae": float(np.mean(np.abs(error))) if len(error) else np.nan,
        "n_relevant": len(rank),
        "hit_rate": float(np.mean(~np.isnan(rank))) if len(rank) else np.nan,
        "ndcg": float(np.mean(gain)) if len(rank) else np.nan,
        "coverage": n_recommended_courses / n_courses if n_courses else np.nan,
        "personal_share": n_personal / n_listed if n_listed else 0.0,
        "n_fallback": n_fallback,
    }


def quality_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Return the methods' quality rows as one frame with recommendation_quality's columns and types."""
    return pd.DataFrame(rows, columns=list(QUALITY_TYPES)).astype(QUALITY_TYPES)


def with_ranks(held_out: pd.DataFrame, recommendations: pd.DataFrame) -> pd.Series:
    """Return the rank of each held-out (user_id, course_id) in the recommendations, NaN when it is not there."""
    ranks = held_out[["user_id", "course_id"]].merge(
        recommendations[["user_id", "course_id", "rank"]], on=["user_id", "course_id"], how="left", validate="1:1"
    )["rank"]
    return ranks.astype("float64").set_axis(held_out.index)
