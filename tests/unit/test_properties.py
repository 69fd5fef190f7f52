"""Property-based tests: the transforms against a plain-Python reference of the rules, on random small inputs.

The reference below reads the rules row by row with loops, dicts and Counters, independently of pandas;
the inputs hold missing values (None and NaN), out-of-range ratings, unknown courses, repeated pairs and
ids, re-rated pairs with their timestamps (or none), ties on averages and on languages, and ids from the
whole int64 range (negative, zero, up to 2**63 - 1, sparse or close together).
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from engines import ENGINES, Rules, rules_for
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import Row, expected_clean, expected_top, expected_validate, is_missing, plain, rated_pairs

RATING_COLUMNS = ["user_id", "course_id", "rating"]
STAMPED_COLUMNS = [*RATING_COLUMNS, "rated_at"]
COURSE_COLUMNS = ["course_id", "title", "description", "programming_language"]
TOP_COLUMNS = ["user_id", "course_id", "rating", "rank"]
# Examples per test and engine. pandas: the file in ~20 s (a pipeline run costs ~25 ms); Spark runs each
# rule as jobs of a shared local session (~0.3 s each), so it draws fewer.
PROPERTY = {"pandas": 150, "spark": 20}
ONE_RUN = {"pandas": 120, "spark": 10}  # tests that run the pipeline once an example
TWO_RUNS = {"pandas": 50, "spark": 4}  # tests that run the pipeline twice an example


def examples(engine: str, counts: dict[str, int]) -> settings:
    """Return the hypothesis settings of a property test on an engine."""
    return settings(max_examples=counts[engine], deadline=None)


# --- the transforms, as the workflow chains them ---------------------------------------------


def pipeline(  # noqa: PLR0917  (the rules, then the inputs and settings in the order the workflow takes them)
    rules: Rules, ratings: pd.DataFrame, courses: pd.DataFrame, fill: str, low: float, high: float, *, per_user: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the valid ratings and the top recommendations."""
    cleaned, _ = rules.clean_courses(courses, fill)
    valid, _ = rules.validate_ratings(ratings, cleaned["course_id"], low, high)
    averages = rules.average_course_ratings(valid)
    candidates = rules.courses_to_recommend(
        valid[["user_id", "course_id"]],
        cleaned[["course_id", "programming_language"]],
        averages,
        per_language=per_user,
        rated=ratings[["user_id", "course_id"]],
    )
    return valid, rules.top_recommendations(candidates, per_user=per_user)


def rows_of(frame: pd.DataFrame) -> list[Row]:
    return [tuple(plain(value) for value in row) for row in frame.itertuples(index=False)]


def to_frame(rows: list[Row], columns: list[str] | None, as_object: bool) -> pd.DataFrame:
    """Ids as the workflow reads them from parquet (nullable Int64), the rest inferred; object keeps None and NaN.

    Without columns, the ratings' columns, with rated_at when the rows hold a timestamp.
    """
    if columns is None:
        columns = STAMPED_COLUMNS if rows and len(rows[0]) == len(STAMPED_COLUMNS) else RATING_COLUMNS
    if as_object:
        return pd.DataFrame(rows, columns=columns, dtype=object)
    frame = pd.DataFrame(rows, columns=columns)
    for name in {"user_id", "course_id"} & set(columns):
        values = [row[columns.index(name)] for row in rows]
        # Not pd.array(values, dtype="Int64"): with a NaN among them, it goes through float64 and loses digits.
        missing = np.array([is_missing(value) for value in values], dtype=bool)
        ids = np.array([0 if is_missing(value) else value for value in values], dtype=np.int64)
        frame[name] = pd.arrays.IntegerArray(ids, missing)
    return frame


# --- strategies ------------------------------------------------------------------------------

MISSING = st.sampled_from([None, math.nan])
LANGUAGES = ["python", "r", "sql", "Python", " python ", "R", " r", "SQL", "sql\t", "PyThOn", "", "   ", None, math.nan]
FILLS = st.sampled_from(["R", "python", "Sql", "Go"])
BOUNDS = st.sampled_from([(1, 5), (1, 5), (0.5, 5), (1, 4.5), (2, 3)])
ANY_RATING = st.sampled_from([1, 2, 3, 4, 5, 1.5, 4.5, 0, 0.5, -1, 5.5, 6, 7, math.inf, -math.inf])
# Per example, ratings from one of these: the narrow ones make ties on averages, down to the third place, common.
RATING_PALETTES = st.sampled_from([[1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 4.5, 0, 6], [4, 5, 4, 5, 6], [5, 5, 5, 3, 0], [2, 4]])
# Few distinct stamps, so that re-rated pairs often tie on their latest one.
STAMPS = st.sampled_from([pd.Timestamp(f"2026-11-2{day} 10:00", tz="UTC") for day in (1, 2, 3)])
INT64 = st.integers(-(2**63), 2**63 - 1)


def sometimes_missing(values: st.SearchStrategy, one_in: int) -> st.SearchStrategy:
    """A value, or None or NaN once in `one_in` draws (shrinking towards present values)."""
    return st.tuples(st.integers(0, one_in - 1), values, MISSING).map(lambda t: t[2] if t[0] == one_in - 1 else t[1])


@st.composite
def rating_rows(
    draw: st.DrawFn, n_courses: int, ratings: st.SearchStrategy, one_in: int, max_size: int, *, stamped: bool = False
) -> list[Row]:
    """Rows of (user_id, course_id, rating[, rated_at]) with users 1..6 and courses 1..n_courses (ids renamed later).

    Some pairs are repeated with another rating or the same, and another stamp or the same.
    """
    cell = st.tuples(
        sometimes_missing(st.integers(1, 6), one_in),
        sometimes_missing(st.integers(1, n_courses), one_in),
        sometimes_missing(ratings, one_in),
        *[sometimes_missing(STAMPS, one_in)] * stamped,
    )
    size = draw(st.integers(0, max_size))  # lists draw few rows on average: ask for up to max_size evenly
    rows = draw(st.lists(cell, min_size=size, max_size=size))
    if rows:
        for index in draw(st.lists(st.integers(0, len(rows) - 1), max_size=4)):
            user, course, rating, *stamp = rows[index]
            again = draw(st.one_of(st.just(rating), sometimes_missing(ratings, one_in)))
            stamp = [draw(st.one_of(st.just(stamp[0]), STAMPS))] if stamped else []
            rows.insert(draw(st.integers(0, len(rows))), (user, course, again, *stamp))
    return rows


@st.composite
def id_maps(draw: st.DrawFn, n: int) -> dict[int, int]:
    """Map 1..n to distinct int64 ids: themselves, or close together anywhere in the range, or spread over all of it."""
    close = st.integers(-(2**63), 2**63 - 1 - 3 * n).flatmap(
        lambda low: st.lists(st.integers(low, low + 3 * n), min_size=n, max_size=n, unique=True)
    )
    spread = st.lists(INT64, min_size=n, max_size=n, unique=True)
    return dict(enumerate(draw(st.one_of(st.just(list(range(1, n + 1))), close, spread)), start=1))


def renamed(rows: list[Row], maps: dict[int, dict[int, int]]) -> list[Row]:
    """Return the rows with the present values of the given columns (by index) renamed through their maps."""

    def rename(index: int, value: object) -> object:
        return value if index not in maps or is_missing(value) else maps[index][value]

    return [tuple(rename(index, value) for index, value in enumerate(row)) for row in rows]


@st.composite
def validate_inputs(draw: st.DrawFn) -> tuple[list[Row], set[int]]:
    """Rating rows, with timestamps or without, and the ids of the courses that exist."""
    rows = draw(rating_rows(n_courses=10, ratings=ANY_RATING, one_in=5, max_size=25, stamped=draw(st.booleans())))
    users, courses = draw(id_maps(6)), draw(id_maps(10))
    return renamed(rows, {0: users, 1: courses}), {courses[id_] for id_ in draw(st.sets(st.integers(1, 8)))}


@st.composite
def course_rows(draw: st.DrawFn, mostly_clean: bool) -> list[Row]:
    """Rows of (course_id, title, description, programming_language); titles tell the rows apart."""
    if mostly_clean:  # most ids 1..10 once, and a few missing or repeated
        ids: list[object] = [id_ for id_ in range(1, 11) if draw(st.integers(0, 4)) > 0]
        ids += draw(st.lists(st.one_of(st.integers(1, 10), MISSING), max_size=2))
        ids = draw(st.permutations(ids))
    else:
        ids = draw(st.lists(sometimes_missing(st.integers(1, 8), 4), max_size=12))
    languages = draw(st.lists(st.sampled_from(LANGUAGES), min_size=len(ids), max_size=len(ids)))
    return [(id_, f"title {i}", f"about {i}", lang) for i, (id_, lang) in enumerate(zip(ids, languages, strict=True))]


@st.composite
def pipeline_inputs(draw: st.DrawFn) -> tuple[list[Row], list[Row], str, bool]:
    """Rating rows (with timestamps or without), course rows of the same ids, a language fill, and as_object."""
    palette = draw(RATING_PALETTES)
    ratings = draw(rating_rows(11, st.sampled_from(palette), one_in=15, max_size=40, stamped=draw(st.booleans())))
    users, courses = draw(id_maps(6)), draw(id_maps(11))  # course 11 is never in the catalogue
    course_rows_ = renamed(draw(course_rows(mostly_clean=True)), {0: courses})
    return renamed(ratings, {0: users, 1: courses}), course_rows_, draw(FILLS), draw(st.booleans())


PIPELINE_INPUTS = pipeline_inputs()

# --- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_validate_ratings_matches_the_rules(engine: str) -> None:
    rules = rules_for(engine)

    @examples(engine, PROPERTY)
    @given(inputs=validate_inputs(), bounds=BOUNDS, as_object=st.booleans())
    def check(inputs: tuple[list[Row], set[int]], bounds: tuple[float, float], as_object: bool) -> None:
        rows, course_ids = inputs
        low, high = bounds
        ratings = to_frame(rows, None, as_object)
        valid, quarantined = rules.validate_ratings(ratings, pd.Series(sorted(course_ids), dtype="int64"), low, high)
        expected_valid, expected_quarantined = expected_validate(rows, course_ids, low, high)
        assert list(valid.columns) == list(ratings.columns)  # with rated_at when the extract has it
        assert valid.dtypes.astype(str).tolist()[:3] == ["int64", "int64", "float64"]
        assert rows_of(valid) == expected_valid
        assert list(quarantined.columns) == [*ratings.columns, "reason"]
        assert rows_of(quarantined) == expected_quarantined

    check()


@pytest.mark.parametrize("engine", ENGINES)
def test_clean_courses_matches_the_rules(engine: str) -> None:
    rules = rules_for(engine)

    @examples(engine, PROPERTY)
    @given(rows=course_rows(mostly_clean=False), ids=id_maps(8), fill=FILLS, as_object=st.booleans())
    def check(rows: list[Row], ids: dict[int, int], fill: str, as_object: bool) -> None:
        rows = renamed(rows, {0: ids})
        cleaned, quarantined = rules.clean_courses(to_frame(rows, COURSE_COLUMNS, as_object), fill)
        expected_cleaned, expected_quarantined = expected_clean(rows, fill)
        assert list(cleaned.columns) == COURSE_COLUMNS
        assert str(cleaned["course_id"].dtype) == "int64"
        assert rows_of(cleaned) == expected_cleaned
        assert list(quarantined.columns) == [*COURSE_COLUMNS, "reason"]
        assert [(plain(row[0]), row[1], row[4]) for row in quarantined.itertuples(index=False)] == expected_quarantined

    check()


@pytest.mark.parametrize("engine", ENGINES)
def test_top_recommendations_match_the_rules(engine: str) -> None:
    rules = rules_for(engine)

    @examples(engine, ONE_RUN)
    @given(inputs=PIPELINE_INPUTS, bounds=BOUNDS, per_user=st.sampled_from([3, 3, 3, 1, 2, 4]))
    def check(inputs: tuple[list[Row], list[Row], str, bool], bounds: tuple[float, float], per_user: int) -> None:
        ratings, courses, fill, as_object = inputs
        _, top = pipeline(
            rules,
            to_frame(ratings, None, as_object),
            to_frame(courses, COURSE_COLUMNS, as_object),
            fill,
            *bounds,
            per_user=per_user,
        )
        assert list(top.columns) == TOP_COLUMNS
        assert rows_of(top) == expected_top(ratings, courses, fill, *bounds, per_user=per_user)

    check()


@pytest.mark.parametrize("engine", ENGINES)
def test_recommendations_are_unrated_ranked_from_one_by_falling_rating_and_deterministic(engine: str) -> None:
    rules = rules_for(engine)

    @examples(engine, TWO_RUNS)
    @given(inputs=PIPELINE_INPUTS)
    def check(inputs: tuple[list[Row], list[Row], str, bool]) -> None:
        rows, course_rows_, fill, as_object = inputs
        ratings, courses = to_frame(rows, None, as_object), to_frame(course_rows_, COURSE_COLUMNS, as_object)
        ratings_before, courses_before = ratings.copy(), courses.copy()
        _, top = pipeline(rules, ratings, courses, fill, 1, 5)

        rated = rated_pairs(rows)  # by any row, valid or not
        recommended = rows_of(top)
        assert not any((user, course) in rated for user, course, _, _ in recommended)
        assert [row[0] for row in recommended] == sorted(row[0] for row in recommended)
        by_user: dict[int, list[Row]] = defaultdict(list)
        for row in recommended:
            by_user[row[0]].append(row)
        for mine in by_user.values():
            assert [rank for *_, rank in mine] == list(range(1, len(mine) + 1))  # so no course twice either
            assert len(mine) <= 3
            assert len({course for _, course, _, _ in mine}) == len(mine)
            assert all(earlier[2] >= later[2] for earlier, later in pairwise(mine))

        _, again = pipeline(rules, ratings, courses, fill, 1, 5)
        pd.testing.assert_frame_equal(again, top)
        pd.testing.assert_frame_equal(ratings, ratings_before)  # the inputs are left as they were
        pd.testing.assert_frame_equal(courses, courses_before)

    check()


@pytest.mark.parametrize("engine", ENGINES)
def test_recommendations_do_not_depend_on_the_order_of_the_input_rows(engine: str) -> None:
    """Shuffle the rating rows (and maybe the course rows), keeping or renumbering the index: same top-3."""
    rules = rules_for(engine)

    @examples(engine, TWO_RUNS)
    @given(inputs=PIPELINE_INPUTS, data=st.data())
    def check(inputs: tuple[list[Row], list[Row], str, bool], data: st.DataObject) -> None:
        rows, course_rows_, fill, as_object = inputs
        ratings, courses = to_frame(rows, None, as_object), to_frame(course_rows_, COURSE_COLUMNS, as_object)
        shuffled_ratings = ratings.iloc[data.draw(st.permutations(range(len(ratings))), label="rating order")]
        shuffled_courses = courses
        if data.draw(st.booleans(), label="shuffle courses too"):
            shuffled_courses = courses.iloc[data.draw(st.permutations(range(len(courses))), label="course order")]
        if data.draw(st.booleans(), label="renumber rows"):
            shuffled_ratings = shuffled_ratings.reset_index(drop=True)
            shuffled_courses = shuffled_courses.reset_index(drop=True)
        _, top = pipeline(rules, ratings, courses, fill, 1, 5)
        _, shuffled_top = pipeline(rules, shuffled_ratings, shuffled_courses, fill, 1, 5)
        pd.testing.assert_frame_equal(
            shuffled_top.sort_values(["user_id", "rank"]).reset_index(drop=True),
            top.sort_values(["user_id", "rank"]).reset_index(drop=True),
        )

    check()


# --- empty inputs ----------------------------------------------------------------------------

SOME_COURSES = [(1, "A", "a", "Python"), (2, "B", "b", "R"), (3, "C", "c", None)]
SOME_RATINGS = [(1, 1, 5.0), (1, 2, 4.0), (2, 3, 3.0), (2, 1, 1.0)]


def assert_empty(frame: pd.DataFrame, columns: list[str]) -> None:
    assert frame.empty and list(frame.columns) == columns


def test_no_ratings_give_empty_outputs_with_their_columns(rules: Rules) -> None:
    for ratings in (
        pd.DataFrame(columns=RATING_COLUMNS),
        pd.DataFrame({"user_id": [], "course_id": [], "rating": []}, dtype="float64"),
        pd.DataFrame({"user_id": [], "course_id": [], "rating": []}, dtype="int64"),
    ):
        cleaned, _ = rules.clean_courses(to_frame(SOME_COURSES, COURSE_COLUMNS, False), "R")
        valid, quarantined = rules.validate_ratings(ratings, cleaned["course_id"], 1, 5)
        assert_empty(valid, RATING_COLUMNS)
        assert_empty(quarantined, [*RATING_COLUMNS, "reason"])
        averages = rules.average_course_ratings(valid)
        assert_empty(averages, ["course_id", "average_rating", "n_ratings"])
        candidates = rules.courses_to_recommend(
            valid[["user_id", "course_id"]], cleaned[["course_id", "programming_language"]], averages
        )
        assert_empty(candidates, ["user_id", "course_id", "rating"])
        assert_empty(rules.top_recommendations(candidates), TOP_COLUMNS)


def test_no_courses_give_empty_outputs_with_their_columns_and_every_rating_an_unknown_course(rules: Rules) -> None:
    cleaned, quarantined = rules.clean_courses(pd.DataFrame(columns=COURSE_COLUMNS), "R")
    assert_empty(cleaned, COURSE_COLUMNS)
    assert_empty(quarantined, [*COURSE_COLUMNS, "reason"])
    ratings = to_frame(SOME_RATINGS, RATING_COLUMNS, False)
    valid, quarantined = rules.validate_ratings(ratings, cleaned["course_id"], 1, 5)
    assert_empty(valid, RATING_COLUMNS)
    assert quarantined["reason"].tolist() == ["unknown_course"] * len(SOME_RATINGS)
    _, top = pipeline(rules, ratings, pd.DataFrame(columns=COURSE_COLUMNS), "R", 1, 5)
    assert_empty(top, TOP_COLUMNS)


def test_only_invalid_ratings_give_no_recommendations(rules: Rules) -> None:
    ratings = to_frame([(1, 1, 9.0), (None, 2, 4.0), (2, 7, 3.0), (3, 1, 2.0), (3, 1, 2.0)], RATING_COLUMNS, False)
    valid, top = pipeline(rules, ratings, to_frame(SOME_COURSES, COURSE_COLUMNS, False), "R", 1, 5)
    assert_empty(valid, RATING_COLUMNS)
    assert_empty(top, TOP_COLUMNS)


def test_empty_frames_with_nothing_else_give_empty_recommendations(rules: Rules) -> None:
    _, top = pipeline(rules, pd.DataFrame(columns=RATING_COLUMNS), pd.DataFrame(columns=COURSE_COLUMNS), "R", 1, 5)
    assert_empty(top, TOP_COLUMNS)
