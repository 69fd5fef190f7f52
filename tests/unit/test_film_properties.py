"""Property-based tests: the film rules on each engine against the plain-Python reference, on random small inputs.

The inputs are drawn as in test_properties (missing values, unknown films, repeated rows, ids from
the whole int64 range), the ratings under the film pipeline's column names.
"""

from __future__ import annotations

import pandas as pd
import pytest
from engines import ENGINES, film_rules_for
from hypothesis import given
from hypothesis import strategies as st
from reference import Row, expected_averages, expected_co_rentals, expected_validate
from test_properties import BOUNDS, examples, id_maps, renamed, rows_of, sometimes_missing, to_frame, validate_inputs

# The film pipeline's names of the columns test_properties draws as user_id and course_id.
FILM_NAMES = {"user_id": "customer_id", "course_id": "film_id"}
# Examples per test and engine: a Spark example runs several jobs on the shared local session (about a second).
PROPERTY = {"pandas": 150, "spark": 12}


@st.composite
def co_rental_inputs(draw: st.DrawFn) -> tuple[list[Row], set[int]]:
    """Rental rows (customer_id, film_id) of customers 1..6 and films 1..12, and the known films, a subset of 1..10."""
    cell = st.tuples(sometimes_missing(st.integers(1, 6), 8), sometimes_missing(st.integers(1, 12), 8))
    size = draw(st.integers(0, 30))  # lists draw few rows on average: ask for up to 30 evenly
    rows = draw(st.lists(cell, min_size=size, max_size=size))
    customers, films = draw(id_maps(6)), draw(id_maps(12))
    return renamed(rows, {0: customers, 1: films}), {films[id_] for id_ in draw(st.sets(st.integers(1, 10)))}


@pytest.mark.parametrize("engine", ENGINES)
def test_co_rental_recommendations_match_the_reference(engine: str) -> None:
    rules = film_rules_for(engine)

    @examples(engine, PROPERTY)
    @given(
        inputs=co_rental_inputs(),
        per_film=st.sampled_from([3, 3, 1, 2, 5]),
        budget=st.sampled_from([None, None, 1, 2, 7]),
        as_object=st.booleans(),
    )
    def check(inputs: tuple[list[Row], set[int]], per_film: int, budget: int | None, as_object: bool) -> None:
        rows, film_ids = inputs
        rentals = to_frame(rows, ["user_id", "course_id"], as_object).rename(columns=FILM_NAMES)
        found = rules.co_rental_recommendations(
            rentals, pd.Series(sorted(film_ids), dtype="int64"), per_film, pair_budget=budget
        )
        assert list(found.columns) == ["film_id", "recommended_film_ids"]
        assert found["film_id"].tolist() == sorted(film_ids)
        recommended = dict(zip(found["film_id"].tolist(), map(list, found["recommended_film_ids"]), strict=True))
        assert recommended == expected_co_rentals(rows, film_ids, per_film)

    check()


@pytest.mark.parametrize("engine", ENGINES)
def test_film_ratings_and_their_averages_match_the_reference(engine: str) -> None:
    rules = film_rules_for(engine)

    @examples(engine, PROPERTY)
    @given(inputs=validate_inputs(), bounds=BOUNDS, as_object=st.booleans())
    def check(inputs: tuple[list[Row], set[int]], bounds: tuple[float, float], as_object: bool) -> None:
        rows, film_ids = inputs
        ratings = to_frame(rows, None, as_object).rename(columns=FILM_NAMES)
        valid, quarantined = rules.validate_film_ratings(ratings, pd.Series(sorted(film_ids), dtype="int64"), *bounds)
        expected_valid, expected_quarantined = expected_validate(rows, film_ids, *bounds, unknown="unknown_film")
        assert list(valid.columns) == list(ratings.columns)  # with rated_at when the extract has it
        assert rows_of(valid) == expected_valid
        assert list(quarantined.columns) == [*ratings.columns, "reason"]
        assert rows_of(quarantined) == expected_quarantined
        averages = rules.average_film_ratings(valid)
        assert list(averages.columns) == ["film_id", "avg_rating", "rating_count"]
        assert averages.dtypes.astype(str).tolist() == ["int64", "float64", "int64"]
        assert rows_of(averages) == expected_averages(expected_valid)

    check()
