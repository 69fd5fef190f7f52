"""Matrix factorization (ALS) and the offline evaluation, on tiny rating matrices whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import frame
from engines import Rules

from workflow.pipelines.courses import factorization, quality

SCALE = {"min_rating": 1.0, "max_rating": 5.0}
EXACT = {"rank": 1, "regularization": 1e-4, "iterations": 10, "seed": 42}  # enough sweeps to converge on rank 1
NO_FALLBACK = frame([], "user_id course_id rating rank").astype({"rating": "float64"})
LOW, HIGH = -(2**63), 2**63 - 1
T1, T2, T3 = (pd.Timestamp(f"2026-11-2{day} 10:00", tz="UTC") for day in (1, 2, 3))


def rank_one(users: dict[int, float], courses: dict[int, float], unobserved: set[tuple[int, int]]) -> pd.DataFrame:
    """Return the ratings a_u * b_c of every (user, course) but the unobserved ones."""
    rows = [(u, c, a * b) for u, a in users.items() for c, b in courses.items() if (u, c) not in unobserved]
    return frame(rows, "user_id course_id rating")


def recommend(rules: Rules, ratings: pd.DataFrame, rated: pd.DataFrame | None = None, **settings: object) -> tuple:
    """Return als_recommendations of the ratings (rated: the ratings themselves unless given)."""
    chosen = {"per_user": 3, **EXACT, **SCALE, **settings}
    return rules.als_recommendations(ratings, ratings if rated is None else rated, NO_FALLBACK, **chosen)


def test_a_rank_one_matrix_is_recovered_and_its_missing_cells_recommended(rules: Rules) -> None:
    users = {1: 1.0, 2: 1.5, 3: 2.0, 4: 0.8, 5: 1.2, 6: 1.8}
    courses = {10: 2.0, 20: 2.5, 30: 1.5, 40: 3.0, 50: 2.2}
    unobserved = {(1, 20), (3, 40), (5, 10)}
    top, n_fallback = recommend(rules, rank_one(users, courses, unobserved), per_user=1, max_rating=100.0)
    assert n_fallback == 0
    assert [(u, c, r) for u, c, r in zip(top["user_id"], top["course_id"], top["rank"], strict=True)] == [
        (1, 20, 1), (3, 40, 1), (5, 10, 1),
    ]  # fmt: skip
    expected = [users[u] * courses[c] for u, c in sorted(unobserved)]
    assert top["rating"].tolist() == pytest.approx(expected, rel=1e-2)
    assert list(top.columns) == ["user_id", "course_id", "rating", "rank"]
    assert top.dtypes.tolist() == [np.int64, np.int64, np.float64, np.int64]


def test_on_given_factors_the_highest_clipped_prediction_comes_first_rated_never_and_ties_to_the_lower_id() -> None:
    # Exact on the pandas engine (the Spark one breaks ties made by clipping among each user's best few by raw
    # prediction: spark_factorization.top_courses). Predictions: user 9 -> 2, 4, 6, 8, 10, 4.4; user 8 -> all below 1.
    factors = factorization.Factors(
        user_ids=np.array([8, 9]),
        course_ids=np.array([10, 20, 30, 40, 50, 60]),
        users=np.array([[0.1, 0.0], [2.0, 0.0]]),
        courses=np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0], [5.0, 0.0], [2.2, 0.0]]),
    )
    rated = frame(
        [(9, 10, 2.0), (9, 20, None), (9, 40, 7.0), (8, 20, 1.0), (None, 30, 1.0)], "user_id course_id rating"
    )
    top = factorization.top_courses(factors, rated, per_user=3, **SCALE)
    assert top.values.tolist() == [
        [8, 10, 1.0, 1], [8, 30, 1.0, 2], [8, 40, 1.0, 3],  # all clipped up to 1.0: the lowest unrated ids
        [9, 30, 5.0, 1], [9, 50, 5.0, 2], [9, 60, 4.4, 3],  # 6 and 10 clipped to 5.0, the lower id first
    ]  # fmt: skip
    assert top.dtypes.tolist() == [np.int64, np.int64, np.float64, np.int64]


def test_the_same_seed_gives_the_same_rows(rules: Rules) -> None:
    rng = np.random.default_rng(3)
    ratings = frame(
        [(u, c, float(rng.integers(1, 6))) for u in range(1, 9) for c in range(1, 9) if rng.random() < 0.5],
        "user_id course_id rating",
    )
    settings = {"rank": 3, "regularization": 0.1, "iterations": 5, "seed": 7}
    first, _ = recommend(rules, ratings, **settings)
    second, _ = recommend(rules, ratings, **settings)
    pd.testing.assert_frame_equal(first, second)
    assert len(first) and set(first["rank"]) <= {1, 2, 3}
    assert first["rating"].between(1.0, 5.0).all()


def test_a_user_of_the_rule_with_no_valid_rating_keeps_the_rules_rows(rules: Rules) -> None:
    ratings = rank_one({1: 1.0, 2: 1.5}, {10: 2.0, 20: 2.5, 30: 1.5}, {(1, 30)})
    fallback = frame(
        [(1, 20, 4.0, 1), (7, 10, 3.5, 1), (7, 20, 2.0, 2)], "user_id course_id rating rank"
    )  # user 1 has valid ratings: ALS's rows, not these
    top, n_fallback = rules.als_recommendations(ratings, ratings, fallback, per_user=3, **EXACT, **SCALE)
    assert n_fallback == 1
    assert top[["user_id", "course_id", "rank"]].values.tolist() == [[1, 30, 1], [7, 10, 1], [7, 20, 2]]
    assert top["rating"].tolist()[1:] == [3.5, 2.0]


def test_ids_anywhere_in_the_int64_range_come_back_as_they_went_in(rules: Rules) -> None:
    users = {HIGH: 1.0, LOW: 1.5, -1: 2.0, 3_000_000_007: 0.8}
    courses = {LOW: 2.0, HIGH: 2.5, -5: 1.5, 0: 2.2}
    top, _ = recommend(rules, rank_one(users, courses, {(HIGH, LOW), (-1, 0)}), per_user=2, max_rating=100.0)
    assert top[["user_id", "course_id"]].values.tolist() == [[-1, 0], [HIGH, LOW]]
    assert top["rating"].tolist() == pytest.approx([2.0 * 2.2, 1.0 * 2.0], rel=1e-2)


def test_no_ratings_give_no_recommendations(rules: Rules) -> None:
    ratings = frame([], "user_id course_id rating").astype({"user_id": "int64", "course_id": "int64"})
    fallback = frame([(7, 10, 3.5, 1)], "user_id course_id rating rank")
    top, n_fallback = rules.als_recommendations(ratings, ratings, fallback, per_user=3, **EXACT, **SCALE)
    assert n_fallback == 1 and top["user_id"].tolist() == [7]


# --- the offline evaluation ------------------------------------------------------------------


def test_the_most_recent_rating_is_held_out_ties_to_the_higher_course_and_unstamped_rows_count_as_older(
    rules: Rules,
) -> None:
    ratings = frame(
        [
            (1, 1, 5.0, T1), (1, 2, 4.0, T3), (1, 3, 2.0, T2),  # course 2 is the latest
            (2, 1, 3.0, T3), (2, 3, 4.0, T3), (2, 2, 5.0, T1),  # a tie at T3: course 3
            (3, 4, 4.0, T1),  # one rating: never held out
            (4, 5, 1.0, None), (4, 1, 2.0, T1),  # the stamped one is the latest
        ],
        "user_id course_id rating rated_at",
    )  # fmt: skip
    held = rules.held_out_ratings(ratings, seed=42)
    assert held.values.tolist() == [[1, 2, 4.0], [2, 3, 4.0], [4, 1, 2.0]]


def test_the_valid_ratings_keep_their_stamps_so_the_newest_valid_one_is_held_out_not_the_hashs_pick(
    rules: Rules,
) -> None:
    extract = frame(
        [
            (1, 1, 5.0, T1), (1, 2, 4.0, T3), (1, 3, 2.0, T2),  # course 2 is the newest
            (2, 1, 3.0, T1), (2, 2, 4.0, T2), (2, 3, 5.0, T3), (2, 3, 1.0, T1),  # course 3's later copy counts
            (3, 1, 9.0, T3), (3, 2, 4.0, T1), (3, 3, 2.0, T2),  # the newest breaks a rule: course 3
        ],
        "user_id course_id rating rated_at",
    )  # fmt: skip
    valid, _ = rules.validate_ratings(extract, pd.Series([1, 2, 3]), min_rating=1, max_rating=5)
    held = rules.held_out_ratings(valid, seed=42)
    assert held.values.tolist() == [[1, 2, 4.0], [2, 3, 5.0], [3, 3, 2.0]]
    by_hash = rules.held_out_ratings(valid.drop(columns="rated_at"), seed=42)
    assert by_hash["course_id"].tolist() != held["course_id"].tolist()  # the hash would have picked others


def test_without_stamps_the_seeded_hash_picks_the_held_out_rating_on_both_engines(rules: Rules) -> None:
    ids = [(HIGH, LOW), (HIGH, 7), (HIGH, -3), (-1, 5), (-1, 6), (-1, 2**40), (5, 1), (5, 2), (5, 3), (6, 1)]
    ratings = frame([(u, c, 3.0) for u, c in ids], "user_id course_id rating")
    prime = 2**31 - 1

    def key(user: int, course: int) -> int:
        return ((user % prime) * 48271 + (course % prime) * 69621 + 11) % prime

    by_user: dict[int, list[int]] = {}
    for user, course in ids:
        by_user.setdefault(user, []).append(course)
    expected = {user: min((key(user, c), c) for c in mine)[1] for user, mine in by_user.items() if len(mine) >= 2}
    held = rules.held_out_ratings(ratings, seed=11)
    assert dict(zip(held["user_id"], held["course_id"], strict=True)) == expected
    assert quality.hold_out_hash(np.array([u for u, _ in ids]), np.array([c for _, c in ids]), 11).tolist() == [
        key(u, c) for u, c in ids
    ]


COURSES = frame([(1, "python"), (2, "python"), (3, "python"), (4, "r"), (5, "r")], "course_id programming_language")
EVALUATED = frame(
    [
        (1, 1, 5.0, T1), (1, 2, 4.0, T2), (1, 3, 4.0, T3),  # holds out course 3, rated 4: relevant
        (2, 1, 3.0, T1), (2, 2, 5.0, T3), (2, 3, 2.0, T3),  # a tie at T3: holds out course 3, rated 2
        (3, 3, 5.0, T1),  # one rating: trained on only
        (4, 4, 4.0, T1), (4, 1, 5.0, T2),  # holds out course 1, rated 5
        (5, 4, 3.0, T1), (5, 5, 4.0, T2),  # holds out course 5, which nobody else rated
    ],
    "user_id course_id rating rated_at",
)  # fmt: skip


def test_the_rules_quality_figures_are_the_hand_computed_ones_and_als_has_its_row(rules: Rules) -> None:
    settings = {"per_user": 3, "rank": 2, "regularization": 0.1, "iterations": 5, "seed": 42, **SCALE}
    figures = rules.recommendation_quality(EVALUATED, EVALUATED[["user_id", "course_id"]], COURSES, **settings)
    assert figures.columns.tolist() == list(quality.QUALITY_TYPES)
    assert figures.dtypes.astype(str).tolist() == list(quality.QUALITY_TYPES.values())
    rule, als = (figures.iloc[i].to_dict() for i in range(2))
    # Training averages: 1 -> 4.0, 2 -> 4.5, 3 -> 5.0, 4 -> 3.5, 5 none. The rule's lists: user 1 and 2
    # [3]; user 3 [2, 1]; users 4 and 5 (r) none. Its predictions: 5.0 (for 4), 5.0 (for 2), 4.0 (for 5),
    # none for course 5. Relevant: users 1 (a hit at 1), 4 and 5 (misses).
    assert rule == {
        "method": "language_rule", "n_users": 4, "n_held_out": 4, "n_predicted": 3,
        "rmse": pytest.approx(math.sqrt(11 / 3)), "mae": pytest.approx(5 / 3), "n_relevant": 3,
        "hit_rate": pytest.approx(1 / 3), "ndcg": pytest.approx(1 / 3), "coverage": pytest.approx(3 / 5),
        "personal_share": 0.0, "n_fallback": 0,
    }  # fmt: skip
    assert als["method"] == "als"
    assert (als["n_users"], als["n_held_out"], als["n_predicted"], als["n_relevant"]) == (4, 4, 3, 3)
    assert (als["n_fallback"], als["personal_share"]) == (0, 1.0)
    for name in ("hit_rate", "ndcg", "coverage"):
        assert 0.0 <= als[name] <= 1.0
    assert 0.0 <= als["mae"] <= als["rmse"] <= 4.0


def test_the_metrics_of_one_method_from_its_held_out_ratings() -> None:
    held = frame(
        [(1, 1, 5.0, 4.0, 2.0), (2, 1, 4.0, np.nan, np.nan), (3, 2, 2.0, 3.0, 1.0), (4, 3, 4.0, 5.0, np.nan)],
        "user_id course_id rating predicted rank",
    )
    row = quality.method_quality(
        "als", held, n_recommended_courses=2, n_courses=8, n_personal=3, n_listed=4, n_fallback=1, relevant=4.0
    )
    assert row == {
        "method": "als", "n_users": 4, "n_held_out": 4, "n_predicted": 3, "rmse": pytest.approx(1.0),
        "mae": pytest.approx(1.0), "n_relevant": 3, "hit_rate": pytest.approx(1 / 3),
        "ndcg": pytest.approx((1 / math.log2(3)) / 3), "coverage": 0.25, "personal_share": 0.75, "n_fallback": 1,
    }  # fmt: skip
