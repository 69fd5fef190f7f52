"""The film pipeline's rules on tiny inline frames, with exact expected outputs, on each engine."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from conftest import frame
from engines import FilmRules, film_rules_for


def test_the_rental_rate_splits_exactly_into_dollars_and_cents(film_rules: FilmRules) -> None:
    films = frame(
        [(1, Decimal("4.99")), (2, Decimal("0.99")), (3, Decimal("10.00")), (4, Decimal("0.5")), (5, Decimal("0"))],
        "film_id rental_rate",
    )
    kept, quarantined = film_rules.split_rental_rate(films)
    assert kept[["film_id", "rental_rate_dollar", "rental_rate_cents"]].values.tolist() == [
        [1, 4, 99], [2, 0, 99], [3, 10, 0], [4, 0, 50], [5, 0, 0],
    ]  # fmt: skip
    assert kept["rental_rate"].tolist() == films["rental_rate"].tolist()  # the decimal itself is kept as it was
    assert quarantined.empty


def test_missing_negative_and_fractional_rates_and_bad_ids_are_set_aside_with_their_reason(
    film_rules: FilmRules,
) -> None:
    films = frame(
        [(1, None), (2, Decimal("-1.00")), (3, Decimal("0.999")), (None, Decimal("1.00")), (4, Decimal("1.00")),
         (4, Decimal("2.00")), (5, Decimal("2.99"))],
        "film_id rental_rate",
    )  # fmt: skip
    kept, quarantined = film_rules.split_rental_rate(films)
    assert kept[["film_id", "rental_rate_dollar", "rental_rate_cents"]].values.tolist() == [[5, 2, 99]]
    assert quarantined["reason"].tolist() == [
        "missing_rental_rate", "negative_rental_rate", "missing_rental_rate", "missing_film_id",
        "duplicate_film_id", "duplicate_film_id",
    ]  # fmt: skip
    assert list(quarantined.columns) == ["film_id", "rental_rate", "reason"]


def test_a_float_rate_is_read_through_its_decimal_repr(film_rules: FilmRules) -> None:
    kept, quarantined = film_rules.split_rental_rate(
        frame([(1, 0.29), (2, 2.99), (3, 0.1 + 0.2), (4, float("nan"))], "film_id rental_rate")
    )
    assert kept[["rental_rate_dollar", "rental_rate_cents"]].values.tolist() == [[0, 29], [2, 99]]
    assert quarantined[["film_id", "reason"]].values.tolist() == [
        [3, "missing_rental_rate"],
        [4, "missing_rental_rate"],
    ]


def test_spark_reads_pagilas_decimal_4_2_exactly_and_gives_int32_parts() -> None:
    from pyspark.sql import types as T  # noqa: N812, PLC0415

    spark = film_rules_for("spark")
    schema = T.StructType(
        [
            T.StructField("film_id", T.IntegerType()),
            T.StructField("title", T.StringType()),
            T.StructField("rental_rate", T.DecimalType(4, 2)),
            T.StructField("special_features", T.ArrayType(T.StringType())),
        ]
    )
    rates = ["0.5", "10.00", "0.00", "99.99", "4.99", "0.01", "-0.01", None]
    rows = [(i, f"film {i}", None if rate is None else Decimal(rate), ["Trailers"]) for i, rate in enumerate(rates)]
    kept, quarantined = spark.rules.split_rental_rate(spark.session.createDataFrame(rows, schema))
    assert kept.schema == T.StructType(
        [
            *schema.fields,
            T.StructField("rental_rate_dollar", T.IntegerType()),
            T.StructField("rental_rate_cents", T.IntegerType()),
        ]
    )
    parts = kept.select("film_id", "rental_rate", "rental_rate_dollar", "rental_rate_cents").collect()
    assert sorted(tuple(row) for row in parts) == [
        (0, Decimal("0.50"), 0, 50), (1, Decimal("10.00"), 10, 0), (2, Decimal("0.00"), 0, 0),
        (3, Decimal("99.99"), 99, 99), (4, Decimal("4.99"), 4, 99), (5, Decimal("0.01"), 0, 1),
    ]  # fmt: skip
    assert quarantined.schema == T.StructType([*schema.fields, T.StructField("reason", T.StringType())])
    assert sorted((row.film_id, row.reason) for row in quarantined.collect()) == [
        (6, "negative_rental_rate"), (7, "missing_rental_rate"),
    ]  # fmt: skip


STAMP = pd.Timestamp("2022-07-01 10:00", tz="UTC")
RENTALS_OF_COPIES = frame(
    [
        (5, 30, 1, STAMP + pd.Timedelta(hours=5)),
        (2, 10, 2, STAMP + pd.Timedelta(hours=2)),
        (4, 99, 1, STAMP + pd.Timedelta(hours=4)),  # a copy the inventory does not hold
        (3, None, 3, STAMP + pd.Timedelta(hours=3)),  # no copy
        (1, 20, 1, STAMP),
        (6, 10, 4, STAMP + pd.Timedelta(hours=6)),
    ],
    "rental_id inventory_id customer_id rented_at",
)
INVENTORY = frame([(10, 100), (20, 200), (30, 100), (40, 400)], "inventory_id film_id")


def test_rented_films_are_the_rentals_of_known_copies_by_rental_id(film_rules: FilmRules) -> None:
    rows = film_rules.rented_films(RENTALS_OF_COPIES, INVENTORY)
    assert list(rows.columns) == ["customer_id", "film_id", "rented_at"]
    assert rows.values.tolist() == [
        [1, 200, STAMP], [2, 100, STAMP + pd.Timedelta(hours=2)], [1, 100, STAMP + pd.Timedelta(hours=5)],
        [4, 100, STAMP + pd.Timedelta(hours=6)],
    ]  # fmt: skip


def test_rented_films_without_a_rental_time_are_customer_and_film_only(film_rules: FilmRules) -> None:
    rows = film_rules.rented_films(RENTALS_OF_COPIES.drop(columns="rented_at"), INVENTORY)
    assert list(rows.columns) == ["customer_id", "film_id"]
    assert rows.values.tolist() == [[1, 200], [2, 100], [1, 100], [4, 100]]
    assert film_rules.rented_films(RENTALS_OF_COPIES.iloc[:0], INVENTORY).empty


def recommendations(film_rules: FilmRules, rentals: list[tuple], films: list[int], **options: int) -> dict:
    found = film_rules.co_rental_recommendations(frame(rentals, "customer_id film_id"), pd.Series(films), **options)
    assert list(found.columns) == ["film_id", "recommended_film_ids"]
    assert found["film_id"].tolist() == sorted(set(films))
    return dict(zip(found["film_id"], found["recommended_film_ids"], strict=True))


RENTALS = [
    (1, 10), (1, 20), (1, 30), (1, 10),  # a customer renting a film twice counts once
    (2, 10), (2, 20), (2, 40),
    (3, 10), (3, 30), (3, 40), (3, 50),
    (4, 20), (4, 50),
    (5, 60),  # rented nothing else
    (6, 999),  # an unknown film is ignored
]  # fmt: skip
EXPECTED = {
    10: [20, 30, 40],  # 20, 30, 40 by 2 customers each; 50 by 1
    20: [10, 30, 40],  # 10 by 2; 30, 40, 50 by 1: ties by film_id
    30: [10, 20, 40],
    40: [10, 20, 30],
    50: [10, 20, 30],  # 10, 20, 30, 40 by 1 each
    60: [],
    70: [],  # never rented
}


def test_co_rentals_count_distinct_customers_and_break_ties_by_film_id(film_rules: FilmRules) -> None:
    assert recommendations(film_rules, RENTALS, [10, 20, 30, 40, 50, 60, 70]) == EXPECTED


@pytest.mark.parametrize("budget", [1, 3, 10, 1000])
def test_co_rentals_are_the_same_whatever_the_chunk_size(film_rules: FilmRules, budget: int) -> None:
    assert recommendations(film_rules, RENTALS, [10, 20, 30, 40, 50, 60, 70], pair_budget=budget) == EXPECTED


def test_fewer_recommendations_per_film_and_sparse_ids(film_rules: FilmRules) -> None:
    rentals = [(c, f * 10**12) for c, f in RENTALS if f != 999]
    result = recommendations(film_rules, rentals, [f * 10**12 for f in (10, 20, 30, 40, 50, 60, 70)], per_film=1)
    assert result == {key * 10**12: [v * 10**12 for v in value[:1]] for key, value in EXPECTED.items()}


def test_an_empty_rental_history_gives_every_film_an_empty_list(film_rules: FilmRules) -> None:
    assert recommendations(film_rules, [], [3, 1, 2]) == {1: [], 2: [], 3: []}


def test_rentals_missing_an_id_are_ignored(film_rules: FilmRules) -> None:
    rentals = frame([(1, 1), (1, 2), (None, 3), (2, None)], "customer_id film_id").astype("Int64")
    result = film_rules.co_rental_recommendations(rentals, pd.Series([1, 2, 3]))
    assert result["recommended_film_ids"].tolist() == [[2], [1], []]


def test_film_ratings_follow_the_course_rating_rules(film_rules: FilmRules) -> None:
    stamp = pd.Timestamp("2022-07-01", tz="UTC")
    ratings = frame(
        [
            (1, 10, 5.0, stamp), (1, 10, 3.0, stamp - pd.Timedelta(days=1)),  # re-rated: 5 is the rating
            (2, 10, 4.0, stamp), (2, 10, 2.0, stamp),  # two copies share the latest stamp
            (3, 10, 9.0, stamp), (3, 99, 4.0, stamp), (None, 10, 4.0, stamp), (4, 20, 1.0, None),
            (5, 20, 2.0, stamp),
        ],
        "customer_id film_id rating rated_at",
    )  # fmt: skip
    valid, quarantined = film_rules.validate_film_ratings(ratings, pd.Series([10, 20]), 1, 5)
    assert valid.values.tolist() == [[1, 10, 5.0, stamp], [5, 20, 2.0, stamp]]
    assert quarantined["reason"].tolist() == [
        "superseded", "duplicate_pair", "duplicate_pair", "rating_out_of_range", "unknown_film", "missing_value",
        "missing_timestamp",
    ]  # fmt: skip
    averages = film_rules.average_film_ratings(pd.concat([valid, frame([(6, 10, 4.0)], "customer_id film_id rating")]))
    assert list(averages.columns) == ["film_id", "avg_rating", "rating_count"]
    assert averages.dtypes.astype(str).tolist() == ["int64", "float64", "int64"]
    assert averages.values.tolist() == [[10, 4.5, 2], [20, 2.0, 1]]


def test_without_stamps_every_copy_of_a_repeated_pair_is_a_duplicate(film_rules: FilmRules) -> None:
    ratings = frame([(1, 10, 5.0), (1, 10, 3.0), (2, 10, 4.0)], "customer_id film_id rating")
    valid, quarantined = film_rules.validate_film_ratings(ratings, pd.Series([10]), 1, 5)
    assert valid.values.tolist() == [[2, 10, 4.0]]
    assert quarantined["reason"].tolist() == ["duplicate_pair", "duplicate_pair"]
