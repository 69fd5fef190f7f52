"""Each business rule on tiny inline frames with exact expected output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import frame
from engines import Rules
from reference import brute_force_recommendations

from workflow.errors import InvalidSourceDataError
from workflow.pipelines.courses import schemas
from workflow.rules import quality
from workflow.rules.ratings import UNCOUNTED_REASONS


def assert_rows(actual: pd.DataFrame, expected: list[tuple], columns: str) -> None:
    """Assert the frame holds exactly these rows, in this order, under these columns."""
    assert list(actual.columns) == columns.split()
    assert [tuple(row) for row in actual.itertuples(index=False)] == expected


# --- courses ---------------------------------------------------------------------------------


def test_language_is_trimmed_and_lower_cased_and_missing_or_blank_becomes_the_fill(rules: Rules) -> None:
    courses = frame(
        [(3, "C", "d", " Python "), (1, "A", "d", None), (2, "B", "d", "   "), (4, "D", "d", "SQL")],
        "course_id title description programming_language",
    )
    cleaned, quarantined = rules.clean_courses(courses, language_fill="R")
    assert_rows(
        cleaned,
        [(1, "A", "d", "r"), (2, "B", "d", "r"), (3, "C", "d", "python"), (4, "D", "d", "sql")],
        "course_id title description programming_language",
    )
    assert quarantined.empty


def test_language_fill_is_configurable(rules: Rules) -> None:
    courses = frame([(1, "A", "d", None)], "course_id title description programming_language")
    cleaned, _ = rules.clean_courses(courses, language_fill="Python")
    assert cleaned["programming_language"].tolist() == ["python"]


def test_courses_with_a_missing_or_repeated_id_are_set_aside_every_copy(rules: Rules) -> None:
    courses = frame(
        [(1, "A", "d", "r"), (None, "B", "d", "r"), (2, "C", "d", "r"), (2, "C2", "d", "sql"), (3, "D", "d", "r")],
        "course_id title description programming_language",
    )
    cleaned, quarantined = rules.clean_courses(courses, language_fill="R")
    assert cleaned["course_id"].tolist() == [1, 3]
    assert [(title, reason) for title, reason in zip(quarantined["title"], quarantined["reason"], strict=True)] == [
        ("B", "missing_course_id"),
        ("C", "duplicate_course_id"),
        ("C2", "duplicate_course_id"),
    ]


# --- rating validity -------------------------------------------------------------------------


def test_invalid_ratings_are_set_aside_with_the_first_rule_they_break(rules: Rules) -> None:
    ratings = frame(
        [
            (1, 10, 5.0),  # valid
            (None, 10, 4.0),  # missing user
            (2, None, 4.0),  # missing course
            (3, 10, None),  # missing rating
            (4, 99, 4.0),  # unknown course
            (5, 10, 0.0),  # below range
            (6, 10, 5.5),  # above range
            (7, 99, 9.0),  # unknown course and out of range: counted once, as unknown course
            (8, 11, 1.0),  # valid: bounds are inclusive
            (9, 10, float("nan")),  # NaN is missing
        ],
        "user_id course_id rating",
    )
    valid, quarantined = rules.validate_ratings(ratings, pd.Series([10, 11]), min_rating=1, max_rating=5)
    assert_rows(valid, [(1, 10, 5.0), (8, 11, 1.0)], "user_id course_id rating")
    assert quarantined["reason"].tolist() == [
        "missing_value", "missing_value", "missing_value", "unknown_course", "rating_out_of_range",
        "rating_out_of_range", "unknown_course", "missing_value",
    ]  # fmt: skip
    assert quarantined["user_id"].tolist()[3:7] == [4, 5, 6, 7]
    assert quality.reason_counts(quarantined, schemas.RATING_ROLES.reasons) == {
        "missing_value": 4, "unknown_course": 2, "rating_out_of_range": 2, "duplicate_pair": 0,
        "missing_timestamp": 0, "superseded": 0,
    }  # fmt: skip


def test_a_pair_rated_twice_is_set_aside_entirely_unless_the_other_copy_is_invalid(rules: Rules) -> None:
    ratings = frame(
        [(1, 10, 5.0), (1, 10, 3.0), (2, 10, 4.0), (2, 10, 9.0), (3, 11, 2.0)],
        "user_id course_id rating",
    )
    valid, quarantined = rules.validate_ratings(ratings, pd.Series([10, 11]), min_rating=1, max_rating=5)
    assert_rows(valid, [(2, 10, 4.0), (3, 11, 2.0)], "user_id course_id rating")
    assert_rows(
        quarantined,
        [(1, 10, 5.0, "duplicate_pair"), (1, 10, 3.0, "duplicate_pair"), (2, 10, 9.0, "rating_out_of_range")],
        "user_id course_id rating reason",
    )


def test_rating_bounds_are_configurable(rules: Rules) -> None:
    ratings = frame([(1, 10, 0.5), (2, 10, 10.0), (3, 10, 11.0)], "user_id course_id rating")
    valid, quarantined = rules.validate_ratings(ratings, pd.Series([10]), min_rating=0.5, max_rating=10)
    assert valid["user_id"].tolist() == [1, 2]
    assert quarantined["user_id"].tolist() == [3]


def test_empty_ratings_are_valid_and_nothing_is_set_aside(rules: Rules) -> None:
    valid, quarantined = rules.validate_ratings(
        frame([], "user_id course_id rating"), pd.Series([1]), min_rating=1, max_rating=5
    )
    assert valid.empty and list(valid.columns) == ["user_id", "course_id", "rating"]
    assert quarantined.empty and list(quarantined.columns) == ["user_id", "course_id", "rating", "reason"]


def test_too_many_invalid_rows_fail_with_the_table_the_counts_and_examples() -> None:
    quarantined = frame(
        [(1, 99, 4.0, "unknown_course"), (2, 10, 7.0, "rating_out_of_range")], "user_id course_id rating reason"
    )
    quality.check_invalid_share("rating", 200, quarantined, max_share=0.01)  # exactly 1%: allowed
    with pytest.raises(InvalidSourceDataError) as failure:
        quality.check_invalid_share("rating", 199, quarantined, max_share=0.01)
    message = str(failure.value)
    assert message.startswith("rating: 2 of 199 rows (1.01%) break the rules, more than the 1.00% allowed")
    assert "1 unknown_course" in message and "1 rating_out_of_range" in message
    assert "'user_id': 1, 'course_id': 99, 'rating': 4.0, 'reason': 'unknown_course'" in message


# --- averages --------------------------------------------------------------------------------


def test_average_rating_is_the_mean_of_a_courses_ratings_and_unrated_courses_are_absent(rules: Rules) -> None:
    ratings = frame([(1, 20, 4.0), (2, 20, 5.0), (3, 10, 3.0)], "user_id course_id rating")
    assert_rows(
        rules.average_course_ratings(ratings),
        [(10, 3.0, 1), (20, 4.5, 2)],
        "course_id average_rating n_ratings",
    )


# --- user languages --------------------------------------------------------------------------

COURSES = frame(
    [(1, "python"), (2, "python"), (3, "python"), (4, "r"), (5, "r"), (6, "sql"), (7, "python"), (8, "python")],
    "course_id programming_language",
)


def test_a_users_languages_are_all_languages_tied_for_most_ratings(rules: Rules) -> None:
    ratings = frame([(1, 1, 5), (1, 4, 4), (2, 1, 3), (2, 2, 3), (2, 6, 1)], "user_id course_id rating")
    assert_rows(
        rules.user_languages(ratings, COURSES),
        [(1, "python", 1), (1, "r", 1), (2, "python", 2)],
        "user_id programming_language n_rated",
    )


# --- candidates and top recommendations -------------------------------------------------------

AVERAGES = frame(
    [(1, 4.0, 2), (2, 4.5, 2), (3, 5.0, 1), (4, 4.5, 2), (5, 3.0, 1), (6, 2.0, 1), (8, 4.5, 2)],
    "course_id average_rating n_ratings",
)  # course 7 has no ratings


def test_candidates_are_unrated_rated_courses_in_the_users_languages(rules: Rules) -> None:
    ratings = frame(
        [(1, 1, 5), (1, 4, 4), (2, 1, 3), (2, 2, 3), (2, 3, 3), (3, 4, 5), (3, 5, 5)], "user_id course_id rating"
    )
    candidates = rules.courses_to_recommend(ratings, COURSES, AVERAGES, per_language=3)
    # user 1: python and r tie, so courses of both; course 7 has no average; user 2 and 3 rated all of theirs
    # except course 8 (python); user 3 rated every rated r course.
    assert_rows(
        candidates.sort_values(["user_id", "course_id"]).reset_index(drop=True),
        [(1, 2, 4.5), (1, 3, 5.0), (1, 5, 3.0), (1, 8, 4.5), (2, 8, 4.5)],
        "user_id course_id rating",
    )


def test_candidates_keep_only_the_best_few_per_user_and_language(rules: Rules) -> None:
    ratings = frame([(1, 3, 5)], "user_id course_id rating")
    candidates = rules.courses_to_recommend(ratings, COURSES, AVERAGES, per_language=2)
    assert candidates["course_id"].tolist() == [2, 8]  # 4.5 and 4.5 beat course 1's 4.0; 3 is rated


def test_top_recommendations_rank_by_rating_then_course_id_and_keep_three(rules: Rules) -> None:
    candidates = frame(
        [(1, 8, 4.5), (1, 3, 5.0), (1, 5, 3.0), (1, 2, 4.5), (2, 9, 1.0)],
        "user_id course_id rating",
    )
    assert_rows(
        rules.top_recommendations(candidates, per_user=3),
        [(1, 3, 5.0, 1), (1, 2, 4.5, 2), (1, 8, 4.5, 3), (2, 9, 1.0, 1)],
        "user_id course_id rating rank",
    )


def test_no_ratings_give_no_candidates_and_no_recommendations(rules: Rules) -> None:
    ratings = frame([], "user_id course_id rating").astype("int64")
    averages = rules.average_course_ratings(ratings)
    candidates = rules.courses_to_recommend(ratings, COURSES, averages)
    assert candidates.empty and list(candidates.columns) == ["user_id", "course_id", "rating"]
    assert rules.top_recommendations(candidates).empty


@pytest.mark.parametrize("seed", range(20))
def test_walking_the_rankings_matches_the_brute_force_cross_join(rules: Rules, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_courses = int(rng.integers(1, 15))
    courses = pd.DataFrame(
        {
            "course_id": np.arange(1, n_courses + 1),
            "programming_language": rng.choice(["python", "r", "sql"], n_courses),
        }
    )
    n = int(rng.integers(0, 60))
    ratings = (
        pd.DataFrame(
            {
                "user_id": rng.integers(1, 8, n),
                "course_id": rng.integers(1, n_courses + 1, n),
                "rating": rng.integers(1, 6, n).astype(float),
            }
        )
        .drop_duplicates(["user_id", "course_id"])
        .reset_index(drop=True)
    )
    averages = rules.average_course_ratings(ratings)
    candidates = rules.courses_to_recommend(ratings, courses, averages, per_language=3)
    ours = rules.top_recommendations(candidates, per_user=3)
    expected = brute_force_recommendations(ratings, courses, per_user=3)
    pd.testing.assert_frame_equal(ours, expected, check_dtype=False)


# --- what counts as rated, re-rated pairs, and ids of any size -----------------------------------------

T1, T2, T3 = (pd.Timestamp(f"2026-11-2{day} 10:00", tz="UTC") for day in (1, 2, 3))


def recommend(rules: Rules, extract: pd.DataFrame, courses: pd.DataFrame, per_user: int = 3) -> pd.DataFrame:
    """Return the top recommendations of a day's extract, chained as the workflow's tasks chain the rules."""
    valid, _ = rules.validate_ratings(extract, courses["course_id"], min_rating=1, max_rating=5)
    averages = rules.average_course_ratings(valid)
    candidates = rules.courses_to_recommend(
        valid[["user_id", "course_id"]], courses, averages, per_language=per_user, rated=extract
    )
    return rules.top_recommendations(candidates, per_user=per_user)


def test_a_course_rated_in_any_row_of_the_extract_is_never_recommended_to_that_user(rules: Rules) -> None:
    extract = frame(
        [
            (1, 1, 4.0),  # user 1's only valid rating: python
            (1, 3, 9.0),  # out of range: course 3 is rated all the same
            (1, 2, None),  # no rating: course 2 too
            (1, 8, 2.0), (1, 8, 3.0),  # a repeated pair: course 8 too
            (1, 4, 0.0),  # out of range, of another language: r does not become one of user 1's languages
            (1, None, 5.0),  # no course: nothing is rated
            (2, 2, 4.5), (2, 3, 5.0), (2, 8, 4.5), (2, 4, 5.0), (3, 5, 3.0),
        ],
        "user_id course_id rating",
    )  # fmt: skip
    # Averages come from valid rows only: 1 -> 4.0, 2 -> 4.5, 3 -> 5.0, 4 -> 5.0, 5 -> 3.0, 8 -> 4.5.
    assert_rows(
        recommend(rules, extract, COURSES),
        [(2, 1, 4.0, 1), (3, 4, 5.0, 1)],  # user 1 rated every python course with an average
        "user_id course_id rating rank",
    )


def test_the_walk_looks_past_the_courses_a_user_rated_with_invalid_rows(rules: Rules) -> None:
    courses = frame([(i, "python") for i in range(1, 8)], "course_id programming_language")
    others = [(100 + i, i, 5.0 - i / 2) for i in range(1, 8)]  # course i's average is 5.0 - i / 2
    # User 9's one valid rating is of course 7; their invalid rows rate the three best: 1, 2 and 3.
    extract = frame([*others, (9, 7, 1.0), (9, 1, 7.0), (9, 2, None), (9, 3, 0.0)], "user_id course_id rating").astype(
        {"rating": "float64"}
    )
    top = recommend(rules, extract, courses, per_user=2)
    assert_rows(top[top["user_id"] == 9], [(9, 4, 3.0, 1), (9, 5, 2.5, 2)], "user_id course_id rating rank")


def test_users_who_rated_nearly_all_of_a_long_ranking_get_the_few_courses_left(rules: Rules) -> None:
    # 70 python courses; course i is at place i - 1 of the ranking (average 100 - i).
    courses = frame([(i, "python") for i in range(1, 71)], "course_id programming_language")
    averages = frame([(i, 100.0 - i, 1) for i in range(1, 71)], "course_id average_rating n_ratings")
    # User 7 rated 63 of the first 65 courses: all but 11 and 63, so among the first 66 those two and 66 are left.
    # User 8 rated 62 of the first 62: 63, 64 and 65 are left. User 9 rated course 2 only.
    ratings = frame(
        [*((7, i, 3.0) for i in range(1, 66) if i not in (11, 63)), *((8, i, 3.0) for i in range(1, 63)), (9, 2, 3.0)],
        "user_id course_id rating",
    )
    candidates = rules.courses_to_recommend(ratings, courses, averages, per_language=3)
    assert_rows(
        candidates.sort_values(["user_id", "course_id"]).reset_index(drop=True),
        [(7, 11, 89.0), (7, 63, 37.0), (7, 66, 34.0), (8, 63, 37.0), (8, 64, 36.0), (8, 65, 35.0),
         (9, 1, 99.0), (9, 3, 97.0), (9, 4, 96.0)],
        "user_id course_id rating",
    )  # fmt: skip


def test_the_latest_copy_of_a_re_rated_pair_is_the_rating_and_older_copies_are_superseded(rules: Rules) -> None:
    ratings = frame(
        [
            (1, 10, 2.0, T1), (1, 10, 4.0, T3), (1, 10, 5.0, T2),  # the latest, 4.0, is user 1's rating
            (2, 10, 3.0, T1), (2, 10, 9.0, T3),  # the later copy breaks a rule: it supersedes nothing
            (3, 11, 1.0, T2),
        ],
        "user_id course_id rating rated_at",
    )  # fmt: skip
    valid, quarantined = rules.validate_ratings(ratings, pd.Series([10, 11]), min_rating=1, max_rating=5)
    assert_rows(valid, [(1, 10, 4.0, T3), (2, 10, 3.0, T1), (3, 11, 1.0, T2)], "user_id course_id rating rated_at")
    assert_rows(
        quarantined,
        [(1, 10, 2.0, T1, "superseded"), (1, 10, 5.0, T2, "superseded"), (2, 10, 9.0, T3, "rating_out_of_range")],
        "user_id course_id rating rated_at reason",
    )


def test_copies_sharing_the_latest_stamp_are_all_set_aside_and_older_ones_superseded(rules: Rules) -> None:
    ratings = frame(
        [(1, 10, 2.0, T1), (1, 10, 4.0, T2), (1, 10, 5.0, T2), (2, 10, 3.0, T1), (2, 10, 3.0, T1)],
        "user_id course_id rating rated_at",
    )
    valid, quarantined = rules.validate_ratings(ratings, pd.Series([10]), min_rating=1, max_rating=5)
    assert valid.empty
    assert quarantined["reason"].tolist() == [
        "superseded", "duplicate_pair", "duplicate_pair", "duplicate_pair", "duplicate_pair",
    ]  # fmt: skip


def test_a_row_without_a_stamp_is_set_aside_as_missing_timestamp_and_still_counts_as_rated(rules: Rules) -> None:
    extract = frame(
        [
            (1, 1, 4.0, T1), (1, 2, 4.0, T1), (1, 3, 4.0, None),  # course 3: no stamp, still rated by user 1
            (None, 3, 4.0, None),  # missing_value comes first
            (2, 99, 4.0, None),  # missing_timestamp comes before unknown_course
            (2, 3, 5.0, T2), (2, 8, 4.5, T2),
        ],
        "user_id course_id rating rated_at",
    )  # fmt: skip
    valid, quarantined = rules.validate_ratings(extract, COURSES["course_id"], min_rating=1, max_rating=5)
    assert_rows(
        valid, [(1, 1, 4.0, T1), (1, 2, 4.0, T1), (2, 3, 5.0, T2), (2, 8, 4.5, T2)], "user_id course_id rating rated_at"
    )
    assert quarantined["reason"].tolist() == ["missing_timestamp", "missing_value", "missing_timestamp"]
    assert_rows(
        recommend(rules, extract, COURSES),
        [(1, 8, 4.5, 1), (2, 1, 4.0, 1), (2, 2, 4.0, 2)],  # not course 3 (5.0) for user 1
        "user_id course_id rating rank",
    )


def test_superseded_rows_do_not_count_toward_the_invalid_share() -> None:
    quarantined = frame(
        [(1, 10, 2.0, "superseded")] * 5 + [(2, 99, 4.0, "unknown_course")], "user_id course_id rating reason"
    )
    quality.check_invalid_share("rating", 100, quarantined, 0.01, UNCOUNTED_REASONS)  # 1 in 100: allowed
    out_of_range = frame([(3, 10, 9.0, "rating_out_of_range")], "user_id course_id rating reason")
    quarantined = pd.concat([quarantined, out_of_range], ignore_index=True)
    with pytest.raises(InvalidSourceDataError) as failure:
        quality.check_invalid_share("rating", 100, quarantined, 0.01, UNCOUNTED_REASONS)
    message = str(failure.value)
    assert message.startswith("rating: 2 of 100 rows (2.00%) break the rules, more than the 1.00% allowed")
    assert "1 unknown_course, 1 rating_out_of_range (and 5 superseded, not counted)" in message
    assert "'superseded'" not in message


LOW, HIGH = -(2**63), 2**63 - 1


def test_ids_anywhere_in_the_int64_range_give_exact_results(rules: Rules) -> None:
    courses = frame(
        [(LOW, "python"), (0, "python"), (HIGH, "python"), (3_000_000_007, "python"), (-5, "r"), (HIGH - 1, "r")],
        "course_id programming_language",
    )
    extract = frame(
        [
            (HIGH, LOW, 5.0), (HIGH, 3_000_000_007, 3.0), (HIGH, HIGH - 1, 9.0),  # the last is invalid, yet rated
            (LOW, 0, 4.0), (LOW, HIGH, 2.0), (LOW, -5, 4.0), (LOW, HIGH - 1, 3.0),
            (0, -5, 1.0), (0, 0, 2.0), (0, 0, 3.0),  # a repeated pair
            (-1, HIGH - 1, 5.0), (-1, LOW, 1.0), (-1, 0, 2.0),
        ],
        "user_id course_id rating",
    )  # fmt: skip
    valid, quarantined = rules.validate_ratings(extract, courses["course_id"], min_rating=1, max_rating=5)
    assert quarantined["reason"].tolist() == ["rating_out_of_range", "duplicate_pair", "duplicate_pair"]
    assert len(valid) == 10 and valid["user_id"].tolist()[:2] == [HIGH, HIGH]
    assert_rows(
        rules.user_languages(valid, courses),
        [(LOW, "python", 2), (LOW, "r", 2), (-1, "python", 2), (0, "r", 1), (HIGH, "python", 2)],
        "user_id programming_language n_rated",
    )
    # averages: LOW -> 3.0, 0 -> 3.0, HIGH -> 2.0, 3000000007 -> 3.0, -5 -> 2.5, HIGH - 1 -> 4.0
    assert_rows(
        recommend(rules, extract, courses),
        [
            (LOW, LOW, 3.0, 1), (LOW, 3_000_000_007, 3.0, 2),
            (-1, 3_000_000_007, 3.0, 1), (-1, HIGH, 2.0, 2),
            (0, HIGH - 1, 4.0, 1),
            (HIGH, 0, 3.0, 1), (HIGH, HIGH, 2.0, 2),
        ],
        "user_id course_id rating rank",
    )  # fmt: skip
