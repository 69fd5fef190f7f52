"""Explicit-feedback alternating least squares in NumPy, as Spark MLlib's ALS computes it: pure, frames in, arrays out.

Each user's factors solve (Y^T Y + regularization * n_u * I) x = Y^T r over the factors Y of the courses they rated
(n_u ratings), and each course's the same over its raters' factors: no biases, no centring. Ratings are kept twice,
grouped by user and grouped by course, keys ordered by their number of ratings, so that the keys with n ratings
each are one slice of n-row blocks: their factors are gathered as one keys x n x rank array, and one batched
matmul and one batched solve give their normal equations and factors (a key with one rating needs no solve: its
factors are f r / (f.f + regularization)). A batch holds at most FACTORS_PER_BATCH float64s of factors (and of
normal matrices); a key whose rows alone exceed that is summed a chunk at a time, so memory follows the batch,
not ratings x rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workflow.rules.ids import codes, int64_ids, positions

FACTORS_PER_BATCH = 1 << 20  # float64s of gathered factors (and of normal matrices) held at once: 8 MB
SCORES_PER_CHUNK = 1 << 22  # predicted ratings (users x courses) scored at once: 32 MB of float64


@dataclass(frozen=True)
class Factors:
    """Latent factors of the users and courses that have valid ratings, each row beside its id (ids ascending)."""

    user_ids: np.ndarray
    course_ids: np.ndarray
    users: np.ndarray  # len(user_ids) x rank, float64
    courses: np.ndarray  # len(course_ids) x rank, float64

    def predict(self, user_ids: np.ndarray, course_ids: np.ndarray, min_rating: float, max_rating: float) -> np.ndarray:
        """Return each (user, course)'s predicted rating clipped to the scale, NaN where either has no factors."""
        user, course = positions(self.user_ids, user_ids), positions(self.course_ids, course_ids)
        known = (user >= 0) & (course >= 0)
        predicted = np.full(len(user), np.nan)
        predicted[known] = np.einsum("ij,ij->i", self.users[user[known]], self.courses[course[known]])
        return np.clip(predicted, min_rating, max_rating)


@dataclass(frozen=True)
class _Grouped:
    """Ratings grouped by one side (users or courses), its keys ordered by their number of ratings (then by key):
    the keys in that order, the other side's code and the rating of each row (one key's rows together, in their
    input order), and where each run of keys with the same number of ratings starts (in keys) and how many each has."""

    keys: np.ndarray
    other: np.ndarray
    rating: np.ndarray
    run_starts: np.ndarray  # keys[run_starts[i]:run_starts[i + 1]] have run_counts[i] ratings each
    run_counts: np.ndarray


def fit(ratings: pd.DataFrame, *, rank: int, regularization: float, iterations: int, seed: int) -> Factors:
    """Return the factors that `iterations` sweeps of alternating least squares give the ratings (courses, then
    users, as Spark sweeps).

    Both sides start from seeded random unit vectors, as Spark's do. A repeated (user, course) row counts as
    another observation. Same ratings in the same order and seed: the same factors, to the bit.
    """
    if regularization <= 0:
        raise ValueError(f"ALS regularization must be positive (it keeps every system solvable), not {regularization}")
    user_ids, user = _dense_codes(ratings["user_id"].to_numpy(dtype="int64"))
    course_ids, course = _dense_codes(ratings["course_id"].to_numpy(dtype="int64"))
    rating = ratings["rating"].to_numpy(dtype="float64")
    by_user, by_course = _grouped(user, course, rating, len(user_ids)), _grouped(course, user, rating, len(course_ids))
    del user, course, rating
    rng = np.random.default_rng(seed)
    users, courses = _unit_rows(rng, len(user_ids), rank), _unit_rows(rng, len(course_ids), rank)
    for _ in range(iterations):  # courses, then users, as Spark sweeps
        courses = _solve_side(by_course, users, regularization)
        users = _solve_side(by_user, courses, regularization)
    return Factors(user_ids, course_ids, users, courses)


def _dense_codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct ids ascending, and each id's position among them (int32): codes with no gap."""
    (sparse,), coding = codes(ids)
    present = np.bincount(sparse, minlength=coding.size) > 0
    compact = np.cumsum(present, dtype=np.int64) - 1
    return coding.ids(np.flatnonzero(present)), compact[sparse].astype(np.int32)


def _grouped(key: np.ndarray, other: np.ndarray, rating: np.ndarray, n_keys: int) -> _Grouped:
    """Return the ratings grouped by key, keys ordered by their number of ratings, rows of one key in input order."""
    counts = np.bincount(key, minlength=n_keys)
    keys = np.argsort(counts, kind="stable")
    place = np.empty(n_keys, dtype=np.int64)
    place[keys] = np.arange(n_keys)
    order = np.argsort(place[key], kind="stable")
    sorted_counts = counts[keys]
    run_starts = np.flatnonzero(np.diff(sorted_counts, prepend=-1))
    return _Grouped(keys, other[order], rating[order], np.append(run_starts, n_keys), sorted_counts[run_starts])


def _unit_rows(rng: np.random.Generator, n: int, rank: int) -> np.ndarray:
    """Return n random Gaussian vectors of length `rank`, scaled to unit length."""
    rows = rng.standard_normal((n, rank))
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), np.finfo(float).tiny)
    return rows


def _solve_side(grouped: _Grouped, other_factors: np.ndarray, regularization: float) -> np.ndarray:
    """Return each key's least-squares factors given the other side's, with weighted-lambda regularization."""
    rank = other_factors.shape[1]
    solved = np.empty((len(grouped.keys), rank))
    diagonal = np.arange(rank)
    row = 0  # where the run's first key's rows start
    starts, counts = grouped.run_starts.tolist(), grouped.run_counts.tolist()
    for k0, k1, n in zip(starts[:-1], starts[1:], counts, strict=True):
        if n * rank > FACTORS_PER_BATCH:  # one key's rows exceed a batch: its sums are taken a chunk at a time
            for key in grouped.keys[k0:k1]:
                normal, rhs = np.zeros((rank, rank)), np.zeros(rank)
                for c0 in range(row, row + n, FACTORS_PER_BATCH // rank):
                    c1 = min(c0 + FACTORS_PER_BATCH // rank, row + n)
                    factors = other_factors[grouped.other[c0:c1]]
                    normal += factors.T @ factors
                    rhs += factors.T @ grouped.rating[c0:c1]
                normal[diagonal, diagonal] += regularization * n
                solved[key] = np.linalg.solve(normal, rhs)
                row += n
            continue
        if n == 1:  # (f f^T + regularization I) x = f r has the solution f r / (f.f + regularization)
            for b0 in range(k0, k1, FACTORS_PER_BATCH // rank):
                b1 = min(b0 + FACTORS_PER_BATCH // rank, k1)
                end = row + b1 - b0
                factors = other_factors[grouped.other[row:end]]
                scale = grouped.rating[row:end] / (np.einsum("ij,ij->i", factors, factors) + regularization)
                solved[grouped.keys[b0:b1]] = factors * scale[:, None]
                row = end
            continue
        step = max(1, FACTORS_PER_BATCH // (rank * max(n, rank)))  # keys per batch: factors and normals bounded
        for b0 in range(k0, k1, step):
            b1 = min(b0 + step, k1)
            end = row + (b1 - b0) * n
            factors = other_factors[grouped.other[row:end]].reshape(b1 - b0, n, rank)
            transposed = factors.transpose(0, 2, 1)
            normal = transposed @ factors
            normal[:, diagonal, diagonal] += regularization * n
            rhs = transposed @ grouped.rating[row:end].reshape(b1 - b0, n, 1)
            solved[grouped.keys[b0:b1]] = np.linalg.solve(normal, rhs)[:, :, 0]
            row = end
    return solved


def top_courses(
    factors: Factors, rated: pd.DataFrame, *, per_user: int, min_rating: float, max_rating: float
) -> pd.DataFrame:
    """Return each user's `per_user` unrated courses with the highest predicted rating clipped to the scale, ties to
    the lower course_id, ranked from 1 (user_id, course_id, rating, rank; sorted by user_id, rank).

    Every user and course with factors takes part; a course counts as rated by a user when a row of `rated`
    holds both (rows missing an id are ignored).
    """
    n_users, n_courses = len(factors.user_ids), len(factors.course_ids)
    rated_users, rated_courses = _rated_codes(factors, rated)
    rated_offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rated_users, minlength=n_users), out=rated_offsets[1:])
    order = np.argsort(rated_users, kind="stable")
    rated_courses = rated_courses[order]
    del rated_users, order
    width = min(per_user, n_courses)
    best = np.zeros((n_users, width), dtype=np.int64)
    value = np.full((n_users, width), -np.inf)
    step = max(1, SCORES_PER_CHUNK // max(n_courses, 1))
    for u0 in range(0, n_users, step):
        u1 = min(u0 + step, n_users)
        scores = factors.users[u0:u1] @ factors.courses.T
        np.clip(scores, min_rating, max_rating, out=scores)
        r0, r1 = rated_offsets[u0], rated_offsets[u1]
        scores[np.repeat(np.arange(u1 - u0), np.diff(rated_offsets[u0 : u1 + 1])), rated_courses[r0:r1]] = -np.inf
        rows = np.arange(u1 - u0)
        for place in range(width):  # argmax returns the first of equal scores: the lower course_id
            chosen = scores.argmax(axis=1)
            best[u0:u1, place] = chosen
            value[u0:u1, place] = scores[rows, chosen]
            scores[rows, chosen] = -np.inf
    kept = value > -np.inf  # a user with fewer unrated courses than per_user gets fewer rows
    user = np.repeat(np.arange(n_users), width).reshape(n_users, width)[kept]
    return pd.DataFrame(
        {
            "user_id": factors.user_ids[user],
            "course_id": factors.course_ids[best[kept]],
            "rating": value[kept],
            "rank": np.tile(np.arange(1, width + 1, dtype=np.int64), n_users).reshape(n_users, width)[kept],
        }
    )


def _rated_codes(factors: Factors, rated: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return the (user, course) positions among the factors of the rated rows whose user and course both have
    factors."""
    users, courses = int64_ids(rated["user_id"]), int64_ids(rated["course_id"])
    both = rated[["user_id", "course_id"]].notna().all(axis=1).to_numpy()
    user, course = positions(factors.user_ids, users), positions(factors.course_ids, courses)
    known = both & (user >= 0) & (course >= 0)
    return user[known], course[known]


def with_fallback(recommendations: pd.DataFrame, factors: Factors, fallback: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Return the recommendations with the fallback's rows of the users that have no factors, sorted by user_id and
    rank, and the number of those users."""
    without = positions(factors.user_ids, fallback["user_id"].to_numpy(dtype="int64")) < 0
    kept = fallback[without][["user_id", "course_id", "rating", "rank"]]
    n_fallback = int(kept["user_id"].nunique())
    if not n_fallback:
        return recommendations, 0
    kept = kept.astype({"user_id": "int64", "course_id": "int64", "rating": "float64", "rank": "int64"})
    merged = pd.concat([recommendations, kept], ignore_index=True)
    return merged.sort_values(["user_id", "rank"], kind="stable", ignore_index=True), n_fallback
