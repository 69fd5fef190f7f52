"""The benchmark's DuckDB peer computes what the project computes: the rule tests and the property test, on its SQL.

The inline cases of test_rules.py run here unchanged, with the `rules` fixture given the peer's views behind the
pandas interface; the peer's whole transform (the fused view it runs) is compared with the reference of the rules on
the property test's random inputs and with the pandas rules chained as the workflow chains them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import test_rules
from engines import _arrow_type, _plain
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import expected_validate
from test_properties import (
    BOUNDS,
    COURSE_COLUMNS,
    FILLS,
    PIPELINE_INPUTS,
    TOP_COLUMNS,
    course_rows,
    id_maps,
    pipeline,
    renamed,
    rows_of,
    to_frame,
    validate_inputs,
)

from workflow.pipelines.courses import rules as pandas_rules

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import duckdb_peer

ORDER = "row_"  # the input rows' places, carried through the views to give rows back in input order


def arrow(frame: pd.DataFrame | pd.Series, ordered: bool = False) -> pa.Table:
    """Return a pandas frame as Arrow in the rules' column types (with its rows' places when `ordered`)."""
    frame = frame.to_frame() if isinstance(frame, pd.Series) else frame
    schema = pa.schema([(name, _arrow_type(name, frame[name])) for name in frame.columns])
    table = pa.table({f.name: [_plain(value, f.type) for value in frame[f.name]] for f in schema}, schema=schema)
    return table.append_column(ORDER, pa.array(np.arange(len(frame)))) if ordered else table


def pandas(table: pa.Table) -> pd.DataFrame:
    """Return an Arrow table as pandas, integer columns with missing values as nullable Int64."""
    with_nulls = any(column.type == pa.int64() and column.null_count for column in table.columns)
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get if with_nulls else None)


class DuckRules:
    """The peer's SQL views, called with and returning pandas frames as the pandas rules do, in their row order."""

    def __init__(self) -> None:
        self.settings = duckdb_peer.Settings()

    def run(self, inputs: dict[str, pa.Table], views: list[str], query: str, **settings: object) -> pd.DataFrame:
        con = duckdb.connect()
        try:
            for name, table in inputs.items():
                con.register(name, table)
            stamped = "ratings_in" in inputs and "rated_at" in inputs["ratings_in"].column_names
            chosen = duckdb_peer.Settings(**{**self.settings.__dict__, **settings})
            duckdb_peer.define(con, views, chosen, stamped=stamped)
            return pandas(con.sql(query).to_arrow_table())
        finally:
            con.close()

    def clean_courses(self, courses: pd.DataFrame, language_fill: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        inputs, views = {"courses_in": arrow(courses, ordered=True)}, ["checked_courses", "cleaned_courses"]
        kept = self.run(inputs, views, "SELECT * EXCLUDE (row_) FROM cleaned_courses ORDER BY course_id",
                        language_fill=language_fill)  # fmt: skip
        query = "SELECT * EXCLUDE (row_) FROM checked_courses WHERE reason IS NOT NULL ORDER BY row_"
        return kept.astype({"course_id": "int64"}), self.run(inputs, views, query)

    def validate_ratings(
        self, ratings: pd.DataFrame, course_ids: pd.Series, min_rating: float, max_rating: float
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        inputs = {
            "ratings_in": arrow(ratings, ordered=True),
            "cleaned_courses": arrow(pd.Series(course_ids, name="course_id")),
        }
        views = ["first_rule", "repeated_pairs", "pair_verdicts", "checked_ratings"]
        bounds = {"min_rating": min_rating, "max_rating": max_rating}
        kept = "user_id, course_id, rating" + (", rated_at" if "rated_at" in ratings.columns else "")  # as pandas
        query = f"SELECT {kept} FROM checked_ratings WHERE reason IS NULL ORDER BY row_"
        valid = self.run(inputs, views, query, **bounds)
        query = "SELECT * EXCLUDE (row_) FROM checked_ratings WHERE reason IS NOT NULL ORDER BY row_"
        return valid.astype({"user_id": "int64", "course_id": "int64", "rating": "float64"}), self.run(
            inputs, views, query, **bounds
        )

    def average_course_ratings(self, ratings: pd.DataFrame) -> pd.DataFrame:
        query = "SELECT * FROM course_averages ORDER BY course_id"
        return self.run({"valid_ratings": arrow(ratings)}, ["course_averages"], query)

    def rated_rows(self, ratings: pd.DataFrame, rated: pd.DataFrame | None) -> pa.Table:
        """Return what the views read as checked_ratings: the valid rows, then the other rows that rate a course."""
        rows = ratings[["user_id", "course_id"]].assign(reason=None)
        if rated is not None:
            rows = pd.concat([rows, rated[["user_id", "course_id"]].assign(reason="rated")], ignore_index=True)
        return arrow(rows.astype({"reason": object}))

    def user_languages(self, ratings: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
        inputs = {"checked_ratings": self.rated_rows(ratings, None), "cleaned_courses": arrow(courses)}
        query = """SELECT l.user_id, c.programming_language, l.n_rated FROM user_languages l
            JOIN (SELECT DISTINCT language, programming_language FROM course_languages) c USING (language)
            ORDER BY l.user_id, c.programming_language"""
        return self.run(inputs, ["course_languages", "language_counts", "user_languages"], query)

    def courses_to_recommend(
        self,
        ratings: pd.DataFrame,
        courses: pd.DataFrame,
        averages: pd.DataFrame,
        per_language: int = 3,
        rated: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        inputs = {
            "checked_ratings": self.rated_rows(ratings, rated),
            "cleaned_courses": arrow(courses),
            "course_averages": arrow(averages),
        }
        views = ["course_languages", "language_counts", "user_languages", "ranking", "walk", "walked", "candidates"]
        query = "SELECT user_id, course_id, rating FROM candidates ORDER BY user_id, language, place"
        return self.run(inputs, views, query, per_user=per_language).astype({"user_id": "int64", "course_id": "int64"})

    def top_recommendations(self, candidates: pd.DataFrame, per_user: int = 3) -> pd.DataFrame:
        query = f"""SELECT user_id, course_id, rating, row_number() OVER (PARTITION BY user_id
            ORDER BY rating DESC, course_id) AS rank FROM candidates_in QUALIFY rank <= {int(per_user)}
            ORDER BY user_id, rank"""
        return self.run({"candidates_in": arrow(candidates)}, [], query).astype({"rank": "int64"})


def peer_top(
    ratings: pd.DataFrame, courses: pd.DataFrame, fill: str, bounds: tuple[float, float], per_user: int
) -> list:
    """Return the rows of the peer's whole transform (its fused view) on a day's extract and courses."""
    settings_ = duckdb_peer.Settings(language_fill=fill, min_rating=bounds[0], max_rating=bounds[1], per_user=per_user)
    top = pandas(duckdb_peer.transform(arrow(courses), arrow(ratings), settings_, threads=2))
    assert list(top.columns) == TOP_COLUMNS
    return rows_of(top)


@pytest.fixture
def rules() -> DuckRules:
    """The peer's SQL behind the pandas rules' interface, for the rule tests taken from test_rules.py."""
    return DuckRules()


# The inline cases of test_rules.py that take the rules, here with the fixture above.
test_language_is_trimmed_and_lower_cased_and_missing_or_blank_becomes_the_fill = (
    test_rules.test_language_is_trimmed_and_lower_cased_and_missing_or_blank_becomes_the_fill
)
test_language_fill_is_configurable = test_rules.test_language_fill_is_configurable
test_courses_with_a_missing_or_repeated_id_are_set_aside_every_copy = (
    test_rules.test_courses_with_a_missing_or_repeated_id_are_set_aside_every_copy
)
test_invalid_ratings_are_set_aside_with_the_first_rule_they_break = (
    test_rules.test_invalid_ratings_are_set_aside_with_the_first_rule_they_break
)
test_a_pair_rated_twice_is_set_aside_entirely_unless_the_other_copy_is_invalid = (
    test_rules.test_a_pair_rated_twice_is_set_aside_entirely_unless_the_other_copy_is_invalid
)
test_rating_bounds_are_configurable = test_rules.test_rating_bounds_are_configurable
test_empty_ratings_are_valid_and_nothing_is_set_aside = test_rules.test_empty_ratings_are_valid_and_nothing_is_set_aside
test_average_rating_is_the_mean_of_a_courses_ratings_and_unrated_courses_are_absent = (
    test_rules.test_average_rating_is_the_mean_of_a_courses_ratings_and_unrated_courses_are_absent
)
test_a_users_languages_are_all_languages_tied_for_most_ratings = (
    test_rules.test_a_users_languages_are_all_languages_tied_for_most_ratings
)
test_candidates_are_unrated_rated_courses_in_the_users_languages = (
    test_rules.test_candidates_are_unrated_rated_courses_in_the_users_languages
)
test_candidates_keep_only_the_best_few_per_user_and_language = (
    test_rules.test_candidates_keep_only_the_best_few_per_user_and_language
)
test_top_recommendations_rank_by_rating_then_course_id_and_keep_three = (
    test_rules.test_top_recommendations_rank_by_rating_then_course_id_and_keep_three
)
test_no_ratings_give_no_candidates_and_no_recommendations = (
    test_rules.test_no_ratings_give_no_candidates_and_no_recommendations
)
test_walking_the_rankings_matches_the_brute_force_cross_join = (
    test_rules.test_walking_the_rankings_matches_the_brute_force_cross_join
)
test_a_course_rated_in_any_row_of_the_extract_is_never_recommended_to_that_user = (
    test_rules.test_a_course_rated_in_any_row_of_the_extract_is_never_recommended_to_that_user
)
test_the_walk_looks_past_the_courses_a_user_rated_with_invalid_rows = (
    test_rules.test_the_walk_looks_past_the_courses_a_user_rated_with_invalid_rows
)
test_the_latest_copy_of_a_re_rated_pair_is_the_rating_and_older_copies_are_superseded = (
    test_rules.test_the_latest_copy_of_a_re_rated_pair_is_the_rating_and_older_copies_are_superseded
)
test_copies_sharing_the_latest_stamp_are_all_set_aside_and_older_ones_superseded = (
    test_rules.test_copies_sharing_the_latest_stamp_are_all_set_aside_and_older_ones_superseded
)
test_a_row_without_a_stamp_is_set_aside_as_missing_timestamp_and_still_counts_as_rated = (
    test_rules.test_a_row_without_a_stamp_is_set_aside_as_missing_timestamp_and_still_counts_as_rated
)
test_ids_anywhere_in_the_int64_range_give_exact_results = (
    test_rules.test_ids_anywhere_in_the_int64_range_give_exact_results
)


# --- the peer's whole transform, as the benchmark runs it ---------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(inputs=PIPELINE_INPUTS, bounds=BOUNDS, per_user=st.sampled_from([3, 3, 3, 1, 2, 4]))
def test_the_peers_transform_matches_the_pandas_rules(
    inputs: tuple[list, list, str, bool], bounds: tuple[float, float], per_user: int
) -> None:
    """On the property test's random inputs, the fused transform gives exactly the pandas rules' top rows."""
    rows, course_rows_, fill, as_object = inputs
    ratings, courses = to_frame(rows, None, as_object), to_frame(course_rows_, COURSE_COLUMNS, as_object)
    expected = rows_of(pipeline(pandas_rules, ratings, courses, fill, *bounds, per_user=per_user)[1])
    assert peer_top(ratings, courses, fill, bounds, per_user) == expected


@settings(max_examples=150, deadline=None)
@given(inputs=validate_inputs(), bounds=BOUNDS, as_object=st.booleans())
def test_the_peers_validity_rules_match_the_reference(
    inputs: tuple[list, set[int]], bounds: tuple[float, float], as_object: bool
) -> None:
    rows, course_ids = inputs
    valid, quarantined = DuckRules().validate_ratings(
        to_frame(rows, None, as_object), pd.Series(sorted(course_ids), dtype="int64"), *bounds
    )
    expected_valid, expected_quarantined = expected_validate(rows, course_ids, *bounds)
    assert rows_of(valid) == expected_valid
    assert rows_of(quarantined) == expected_quarantined


@settings(max_examples=150, deadline=None)
@given(rows=course_rows(mostly_clean=False), ids=id_maps(8), fill=FILLS, as_object=st.booleans())
def test_the_peers_course_cleaning_matches_the_pandas_rules(
    rows: list, ids: dict[int, int], fill: str, as_object: bool
) -> None:
    courses = to_frame(renamed(rows, {0: ids}), COURSE_COLUMNS, as_object)
    cleaned, quarantined = DuckRules().clean_courses(courses, fill)
    expected_cleaned, expected_quarantined = pandas_rules.clean_courses(courses, fill)
    assert rows_of(cleaned) == rows_of(expected_cleaned)
    assert rows_of(quarantined) == rows_of(expected_quarantined)
