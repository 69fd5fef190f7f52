"""Each engine's rules behind one pandas interface, so every rule test runs on both engines.

The Spark adapter turns the pandas inputs into Spark frames, runs the Spark rules and brings the
results back as pandas frames in the order the pandas rules give them (Spark keeps no row order):
rows that come from the inputs in input order, the others sorted as the pandas rules sort them.
"""

from __future__ import annotations

import functools
import math
import os
from collections import defaultdict
from decimal import Decimal
from types import ModuleType

import pandas as pd
import pyarrow as pa

from workflow.pipelines.courses import rules as pandas_rules
from workflow.pipelines.films import rules as pandas_film_rules

ENGINES = ("pandas", "spark")
# Arrow types of the columns the rules know; any other column is text, and a column of Decimals a decimal.
TYPES = {
    "user_id": pa.int64(),
    "course_id": pa.int64(),
    "rating": pa.float64(),
    "average_rating": pa.float64(),
    "n_ratings": pa.int64(),
    "n_rated": pa.int64(),
    "rank": pa.int64(),
    "rated_at": pa.timestamp("us", tz="UTC"),
    "customer_id": pa.int64(),
    "film_id": pa.int64(),
    "rental_id": pa.int64(),
    "inventory_id": pa.int64(),
    "rented_at": pa.timestamp("us", tz="UTC"),
    "rental_rate": pa.float64(),
    "avg_rating": pa.float64(),
    "rating_count": pa.int64(),
}


def require_spark() -> None:
    """Skip the test when Spark cannot run here, saying why; under CI (CI=true) fail instead."""
    import pytest  # noqa: PLC0415

    from workflow.devspark import unavailable_reason  # noqa: PLC0415

    reason = unavailable_reason()  # no pyspark, or no Java 17+
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the Spark tests: {reason}")
    pytest.skip(reason)


def _key(value: object) -> object:
    """Return a value comparable across engines: missing values (None, NaN, NaT, NA) are one key."""
    missing = value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))
    return None if missing else value


def _plain(value: object, kind: pa.DataType) -> object:
    """Return a pandas value as Arrow takes it for a column of that type; NaN stays NaN in a float column."""
    if kind == pa.float64() and isinstance(value, float):
        return value
    value = _key(value)
    if value is None:
        return None
    return int(value) if kind == pa.int64() else float(value) if kind == pa.float64() else value


def _arrow_type(name: str, values: pd.Series) -> pa.DataType:
    """Return a column's Arrow type: decimal(4, 2) for Decimals (as Pagila's rates), wider when a value needs it."""
    decimals = [value for value in values if isinstance(value, Decimal)]
    if not decimals:
        return TYPES.get(name, pa.string())
    scale = max(2, *(-value.as_tuple().exponent for value in decimals))
    digits = max(2, *(value.adjusted() + 1 for value in decimals))
    return pa.decimal128(digits + scale, scale)


def _places(output: pd.DataFrame, inputs: pd.DataFrame, taken: frozenset[int] = frozenset()) -> list[int]:
    """Return the input place of each output row: the first free copy of it (matched on the shared columns)."""
    columns = [name for name in output.columns if name in inputs.columns]
    places: dict[tuple, list[int]] = defaultdict(list)
    for place, row in enumerate(inputs[columns].itertuples(index=False)):
        if place not in taken:
            places[tuple(map(_key, row))].append(place)
    return [places[tuple(map(_key, row))].pop(0) for row in output[columns].itertuples(index=False)]


def _in_order(output: pd.DataFrame, places: list[int]) -> pd.DataFrame:
    return output.assign(_place=places).sort_values("_place").drop(columns="_place").reset_index(drop=True)


def _in_input_order(output: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """Return the output's rows in the order their copies hold in the input (matched on the shared columns)."""
    return _in_order(output, _places(output, inputs))


def _split_in_input_order(
    valid: pd.DataFrame, quarantined: pd.DataFrame, inputs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a validation's kept and set-aside rows in input order. The set-aside rows carry every input column, so
    they take their own copies' places first: a kept rating then takes the place of the copy that was kept, not that
    of an earlier copy it superseded (the kept rows lack the stamp that tells the copies apart)."""
    set_aside = _places(quarantined, inputs)
    return _in_order(valid, _places(valid, inputs, frozenset(set_aside))), _in_order(quarantined, set_aside)


class SparkFrames:
    """Pandas frames as Spark frames with the rules' column types, and back."""

    def __init__(self, session: object) -> None:
        self.session = session

    def spark(self, frame: pd.DataFrame | pd.Series) -> object:
        """Return a pandas frame (or series) as a Spark frame with the rules' column types."""
        frame = frame.to_frame() if isinstance(frame, pd.Series) else frame
        schema = pa.schema([(name, _arrow_type(name, frame[name])) for name in frame.columns])
        columns = {field.name: [_plain(value, field.type) for value in frame[field.name]] for field in schema}
        return self.session.createDataFrame(pa.table(columns, schema=schema))

    @staticmethod
    def pandas(frame: object) -> pd.DataFrame:
        """Return a Spark frame as pandas, integer columns without missing values as int64."""
        table = frame.toArrow()
        with_nulls = any(column.type == pa.int64() and column.null_count for column in table.columns)
        return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get if with_nulls else None)


class SparkRules(SparkFrames):
    """The courses pipeline's Spark rules, called with and returning pandas frames."""

    def __init__(self, session: object) -> None:
        from workflow.pipelines.courses import spark_rules  # noqa: PLC0415

        super().__init__(session)
        self.rules = spark_rules

    def clean_courses(self, courses: pd.DataFrame, language_fill: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        cleaned, quarantined = self.rules.clean_courses(self.spark(courses), language_fill)
        cleaned = self.pandas(cleaned).sort_values("course_id", kind="stable").reset_index(drop=True)
        return cleaned, _in_input_order(self.pandas(quarantined), courses)

    def validate_ratings(
        self, ratings: pd.DataFrame, course_ids: pd.Series, min_rating: float, max_rating: float
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        valid, quarantined = self.rules.validate_ratings(
            self.spark(ratings), self.spark(pd.Series(course_ids, name="course_id")), min_rating, max_rating
        )
        return _split_in_input_order(self.pandas(valid), self.pandas(quarantined), ratings)

    def average_course_ratings(self, ratings: pd.DataFrame) -> pd.DataFrame:
        averages = self.pandas(self.rules.average_course_ratings(self.spark(ratings)))
        return averages.sort_values("course_id").reset_index(drop=True)

    def user_languages(self, ratings: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
        languages = self.pandas(self.rules.user_languages(self.spark(ratings), self.spark(courses)))
        return languages.sort_values(["user_id", "programming_language"]).reset_index(drop=True)

    def courses_to_recommend(
        self,
        ratings: pd.DataFrame,
        courses: pd.DataFrame,
        averages: pd.DataFrame,
        per_language: int = 3,
        rated: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        candidates = self.pandas(
            self.rules.courses_to_recommend(
                self.spark(ratings),
                self.spark(courses),
                self.spark(averages),
                per_language=per_language,
                rated=None if rated is None else self.spark(rated),
            )
        )
        # As the pandas rule orders them: by user, language, then the language's ranking.
        language = dict(zip(courses["course_id"], courses["programming_language"], strict=True))
        ordered = candidates.assign(_language=candidates["course_id"].map(language))
        ordered = ordered.sort_values(["user_id", "_language", "rating", "course_id"], ascending=[1, 1, 0, 1])
        return ordered.drop(columns="_language").reset_index(drop=True)

    def top_recommendations(self, candidates: pd.DataFrame, per_user: int = 3) -> pd.DataFrame:
        top = self.pandas(self.rules.top_recommendations(self.spark(candidates), per_user))
        return top.sort_values(["user_id", "rank"]).reset_index(drop=True)

    def als_recommendations(
        self, ratings: pd.DataFrame, rated: pd.DataFrame, fallback: pd.DataFrame, **settings: object
    ) -> tuple[pd.DataFrame, int]:
        top, n_fallback = self.rules.als_recommendations(
            self.spark(ratings), self.spark(rated), self.spark(fallback), **settings
        )
        return self.pandas(top).sort_values(["user_id", "rank"]).reset_index(drop=True), n_fallback

    def held_out_ratings(self, ratings: pd.DataFrame, seed: int) -> pd.DataFrame:
        held = self.pandas(self.rules.held_out_ratings(self.spark(ratings), seed))
        return held.sort_values("user_id").reset_index(drop=True)

    def recommendation_quality(
        self, ratings: pd.DataFrame, rated: pd.DataFrame, courses: pd.DataFrame, **settings: object
    ) -> pd.DataFrame:
        return self.rules.recommendation_quality(  # a pandas frame already
            self.spark(ratings), self.spark(rated), self.spark(courses), **settings
        )


class SparkFilmRules(SparkFrames):
    """The film pipeline's Spark rules, called with and returning pandas frames."""

    def __init__(self, session: object) -> None:
        from workflow.pipelines.films import spark_rules  # noqa: PLC0415

        super().__init__(session)
        self.rules = spark_rules

    def split_rental_rate(self, films: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        kept, quarantined = self.rules.split_rental_rate(self.spark(films))
        kept = self.pandas(kept).sort_values("film_id", kind="stable").reset_index(drop=True)
        return kept, _in_input_order(self.pandas(quarantined), films)

    def validate_film_ratings(
        self, ratings: pd.DataFrame, film_ids: pd.Series, min_rating: float, max_rating: float
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        valid, quarantined = self.rules.validate_film_ratings(
            self.spark(ratings), self.spark(pd.Series(film_ids, name="film_id")), min_rating, max_rating
        )
        return _split_in_input_order(self.pandas(valid), self.pandas(quarantined), ratings)

    def average_film_ratings(self, ratings: pd.DataFrame) -> pd.DataFrame:
        averages = self.pandas(self.rules.average_film_ratings(self.spark(ratings)))
        return averages.sort_values("film_id").reset_index(drop=True)

    def rented_films(self, rentals: pd.DataFrame, inventory: pd.DataFrame) -> pd.DataFrame:
        rows = self.pandas(self.rules.rented_films(self.spark(rentals), self.spark(inventory)))
        # The pandas rule's order: by rental_id, and a rental's films (a copy listed twice) in inventory order.
        films: dict[object, list] = defaultdict(list)
        for copy, film in zip(inventory["inventory_id"], inventory["film_id"], strict=True):
            films[_key(copy)].append(film)
        ordered = rentals.sort_values("rental_id", kind="stable")
        order = [
            {**row, "film_id": film}
            for row in ordered.to_dict("records")
            if _key(row["inventory_id"]) is not None
            for film in films[_key(row["inventory_id"])]
        ]
        return _in_input_order(rows, pd.DataFrame(order, columns=[*rentals.columns, "film_id"]))

    def co_rental_recommendations(
        self, rentals: pd.DataFrame, film_ids: pd.Series, per_film: int = 3, pair_budget: int | None = None
    ) -> pd.DataFrame:
        found = self.rules.co_rental_recommendations(
            self.spark(rentals), self.spark(pd.Series(film_ids, name="film_id")), per_film, pair_budget
        )
        found = self.pandas(found).sort_values("film_id").reset_index(drop=True)
        return found.assign(recommended_film_ids=[list(map(int, ids)) for ids in found["recommended_film_ids"]])


_adapters: dict[type, SparkFrames] = {}  # each kind of Spark rules, over one session for the whole test run
# What a rule test is given: the pandas rules module, or Spark's behind the same interface.
Rules = ModuleType | SparkRules
FilmRules = ModuleType | SparkFilmRules


def rules_for(engine: str) -> Rules:
    """Return an engine's courses rules behind the pandas interface (one Spark session for the whole test run)."""
    return pandas_rules if engine == "pandas" else _spark(SparkRules)


def film_rules_for(engine: str) -> FilmRules:
    """Return an engine's film rules behind the pandas interface (one Spark session for the whole test run)."""
    return pandas_film_rules if engine == "pandas" else _spark(SparkFilmRules)


def _spark(kind: type[SparkFrames]) -> SparkFrames:
    """Return the Spark rules of a kind over the test run's session, or skip the test when Spark cannot run."""
    require_spark()
    if kind not in _adapters:
        _adapters[kind] = kind(_session())
    return _adapters[kind]


@functools.cache
def _session() -> object:
    """Return the test run's one SparkSession: local, two threads, two shuffle partitions, UTC."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    session = (
        SparkSession.builder.master("local[2]")
        .appName("rule-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session
