"""The courses pipeline's rules on Spark: the rules of `rules`, in the DataFrame API (frames in, frames out)."""

from __future__ import annotations

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from workflow.pipelines.courses import quality, spark_factorization
from workflow.pipelines.courses.schemas import COURSE_COLUMNS, RATING_ROLES
from workflow.rules import spark_ratings
from workflow.rules.ratings import RATED_AT

# What Python's str.strip() removes (str.isspace): Spark's trim() strips spaces only.
WHITESPACE = r"[\t\n\x0B\f\r\x1C-\x20\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"


def strip(text: Column) -> Column:
    """Return the text without leading or trailing whitespace, as Python's str.strip() has it."""
    return F.regexp_replace(text, f"^{WHITESPACE}+|{WHITESPACE}+$", "")


def clean_courses(courses: DataFrame, language_fill: str) -> tuple[DataFrame, DataFrame]:
    """Return the courses with their language normalised, and those set aside for a missing or repeated course_id."""
    courses = courses.select(*COURSE_COLUMNS)
    copies = F.count(F.lit(1)).over(Window.partitionBy("course_id"))
    flagged = courses.withColumn(
        "reason",
        spark_ratings.first_failed(
            [("missing_course_id", F.col("course_id").isNull()), ("duplicate_course_id", copies > 1)]
        ),
    )
    language = strip(F.col("programming_language"))
    language = F.when(language.isNull() | (language == ""), F.lit(language_fill)).otherwise(language)
    cleaned = flagged.where(F.col("reason").isNull()).select(
        F.col("course_id").cast("long"), "title", "description", F.lower(strip(language)).alias("programming_language")
    )
    return cleaned, flagged.where(F.col("reason").isNotNull())


def validate_ratings(
    ratings: DataFrame, course_ids: DataFrame, min_rating: float, max_rating: float
) -> tuple[DataFrame, DataFrame]:
    """Return the valid course ratings, and the others with the first rule they break as `reason`."""
    return spark_ratings.validate_ratings(ratings, course_ids, min_rating, max_rating, RATING_ROLES)


def average_course_ratings(ratings: DataFrame) -> DataFrame:
    """Return each rated course's mean rating (`average_rating`) and number of ratings, by course_id."""
    return spark_ratings.average_ratings(ratings, RATING_ROLES)


def user_languages(ratings: DataFrame, courses: DataFrame) -> DataFrame:
    """Return each user's languages: every language tied for the most ratings by that user, with that count."""
    counted = (
        ratings.select("user_id", "course_id")
        .join(F.broadcast(courses.select("course_id", "programming_language")), "course_id")
        .groupBy("user_id", "programming_language")
        .agg(F.count(F.lit(1)).cast("long").alias("n_rated"))
    )
    counted = counted.withColumn("most", F.max("n_rated").over(Window.partitionBy("user_id")))
    return counted.where(F.col("n_rated") == F.col("most")).select("user_id", "programming_language", "n_rated")


def language_rankings(averages: DataFrame, courses: DataFrame) -> DataFrame:
    """Return the rated courses with their place (from 0) in their language's ranking: rating falling, then id."""
    by_rating = Window.partitionBy("programming_language").orderBy(F.desc("average_rating"), F.asc("course_id"))
    return (
        averages.select("course_id", "average_rating")
        .join(courses.select("course_id", "programming_language"), "course_id")
        .withColumn("place", F.row_number().over(by_rating) - 1)
    )


# A lane (one user's language) keeps which of its ranking's first LANE_BITS places the user rated as the bits of
# one long, its sign bit unused.
LANE_BITS = 63


def courses_to_recommend(
    ratings: DataFrame,
    courses: DataFrame,
    averages: DataFrame,
    per_language: int = 3,
    rated: DataFrame | None = None,
) -> DataFrame:
    """Return each user's best `per_language` unrated courses of each of their languages, with their average rating.

    As in `rules`: a user whose rows hold k courses of a language finds their best unrated courses
    among that language's first k + per_language, so the candidates grow with the rows.

    The free places are found without walking the rankings or sorting the rows: one aggregation by
    (user, language) counts the valid ratings and ORs a bit per rated place, and a lane's first free
    places are the lowest bits its rated places left unset. Lanes that rated nearly all of the first
    LANE_BITS places (none, as a rule) are sorted instead (free_places_by_sorting). Every step is keyed
    by user_id: the two frames of rows are shuffled once each by user_id, the aggregation and window
    keyed by (user_id, ...) reuse that partitioning, and the small frames (courses, rankings) are broadcast.
    """
    ratings = spark_ratings.shuffled(ratings.select("user_id", "course_id"), "user_id")
    rated = ratings if rated is None else spark_ratings.shuffled(rated.select("user_id", "course_id"), "user_id")
    # Languages by number: the hash tables over millions of rows then compare ints, not names.
    number = F.dense_rank().over(Window.partitionBy(F.lit(0)).orderBy("programming_language"))
    languages = courses.select("course_id", number.alias("_lang"))
    ranked = language_rankings(averages, courses).join(languages, "course_id")
    rankings = F.broadcast(ranked.select("_lang", "place", "course_id", "average_rating"))
    # Each rated row's course: its language, and its place in that language's ranking (none when it has no average).
    places = F.broadcast(languages.join(rankings.select("course_id", "place"), "course_id", "left"))
    taken = rated.dropna().join(places, "course_id")
    bit = F.when(F.col("place") < LANE_BITS, F.call_function("shiftleft", F.lit(1).cast("long"), F.col("place")))
    lanes = (
        ratings.join(F.broadcast(languages), "course_id")
        .select("user_id", "_lang", F.lit(1).alias("_valid"), F.lit(0).cast("long").alias("_bit"))
        .unionByName(taken.select("user_id", "_lang", F.lit(0).alias("_valid"), bit.otherwise(0).alias("_bit")))
        .groupBy("user_id", "_lang")
        .agg(F.sum("_valid").alias("n_rated"), F.bit_or("_bit").alias("_rated"))
        .where(F.col("n_rated") > 0)  # the languages of the user's valid ratings, as user_languages counts them
    )
    lanes = lanes.withColumn("most", F.max("n_rated").over(Window.partitionBy("user_id")))
    unset = F.bitwise_not("_rated").bitwiseAND(F.lit((1 << LANE_BITS) - 1))
    lanes = lanes.where(F.col("n_rated") == F.col("most")).select("user_id", "_lang", unset.alias("_free"))
    lanes = lanes.persist(StorageLevel.MEMORY_AND_DISK)
    crowded = F.bit_count("_free") < per_language
    free = lowest_bits(lanes.where(~crowded), "_free", per_language)
    crowded_lanes = lanes.where(crowded).select("user_id", "_lang")
    if crowded_lanes.count():  # computes the lanes, kept for the free places
        free = free.unionByName(
            free_places_by_sorting(taken, spark_ratings.broadcast_if_small(crowded_lanes), per_language)
        )
    # Places past the end of the language's ranking find no course.
    return free.join(rankings, ["_lang", "place"]).select(
        "user_id", "course_id", F.col("average_rating").alias("rating")
    )


def lowest_bits(lanes: DataFrame, bits: str, count: int) -> DataFrame:
    """Return one row per lane and each of the positions of the `count` lowest set bits of its column `bits` (a
    positive long with at least that many), as `place`."""
    positions = []
    for j in range(count):
        lowest = F.col(bits).bitwiseAND(-F.col(bits))  # x & -x keeps x's lowest set bit: 2**p, and 2**p - 1 has p
        lanes = lanes.withColumn(f"_place_{j}", F.bit_count(lowest - 1)).withColumn(
            bits, F.col(bits).bitwiseAND(F.col(bits) - 1)
        )
        positions.append(F.col(f"_place_{j}"))
    return lanes.select("user_id", "_lang", F.explode(F.array(*positions)).alias("place"))


def free_places_by_sorting(taken: DataFrame, lanes: DataFrame, per_language: int) -> DataFrame:
    """Return the first `per_language` free places of the given lanes, from their rated rows' places sorted.

    If t_0 < t_1 < ... are the places a user rated in a language, place t_i has t_i - i free places
    before it, and the j-th free place (from 0) is j + #{i : t_i - i <= j}.
    """
    lane = Window.partitionBy("user_id", "_lang").orderBy(F.asc_nulls_last("place"))
    rows = taken.join(lanes, ["user_id", "_lang"], "left_semi").withColumn("_i", F.dense_rank().over(lane) - 1)
    free_before = F.col("place") - F.col("_i")  # none for a course without a place
    skipped = [F.coalesce(F.max(F.when(free_before <= j, F.col("_i") + 1)), F.lit(0)) + j for j in range(per_language)]
    counted = rows.groupBy("user_id", "_lang").agg(F.array(*skipped).alias("_places"))
    return counted.select("user_id", "_lang", F.explode("_places").alias("place"))


def top_recommendations(candidates: DataFrame, per_user: int = 3) -> DataFrame:
    """Return each user's `per_user` candidates with the highest rating, ties by course_id, ranked from 1."""
    by_rating = Window.partitionBy("user_id").orderBy(F.desc("rating"), F.asc("course_id"))
    rank = F.row_number().over(by_rating).cast("long")
    ranked = spark_ratings.shuffled(candidates, "user_id").withColumn("rank", rank)
    return ranked.where(F.col("rank") <= per_user).select("user_id", "course_id", "rating", "rank")


def als_recommendations(
    ratings: DataFrame,
    rated: DataFrame,
    fallback: DataFrame,
    *,
    per_user: int,
    rank: int,
    regularization: float,
    iterations: int,
    seed: int,
    min_rating: float,
    max_rating: float,
) -> tuple[DataFrame, int]:
    """Return each user's top `per_user` unrated courses by predicted rating, and how many users fell back to the
    case study's rule.

    As in `rules`, with pyspark.ml's ALS: ranked by the predicted rating clipped to the scale, ties to the
    lower course_id, among each user's best few by raw prediction (spark_factorization.top_courses).
    """
    fitted = spark_factorization.fit(
        ratings, rank=rank, regularization=regularization, iterations=iterations, seed=seed
    )
    top = spark_factorization.top_courses(
        fitted, rated, per_user=per_user, min_rating=min_rating, max_rating=max_rating
    )
    # The rule recommends only to users with valid ratings: with the daily data no user falls back.
    return spark_factorization.with_fallback(top, fitted, fallback)


def held_out_ratings(ratings: DataFrame, seed: int) -> DataFrame:
    """Return the rating each user with at least 2 valid ratings holds out for the evaluation (as in `rules`)."""
    marked = spark_factorization.with_held_out(ratings, seed)
    return marked.where(F.col("_held")).select("user_id", "course_id", "rating")


def recommendation_quality(
    ratings: DataFrame,
    rated: DataFrame,
    courses: DataFrame,
    *,
    per_user: int,
    rank: int,
    regularization: float,
    iterations: int,
    seed: int,
    min_rating: float,
    max_rating: float,
    relevant: float = 4.0,
) -> pd.DataFrame:
    """Return the offline quality of the case study's rule and of ALS, one row per method, as a pandas frame (as in
    `rules`; the held-out ratings with their predictions and ranks are computed on Spark, then collected)."""
    columns = ["user_id", "course_id", "rating", *([RATED_AT] if RATED_AT in ratings.columns else [])]
    marked = spark_factorization.with_held_out(ratings.select(*columns), seed).persist(StorageLevel.MEMORY_AND_DISK)
    held = marked.where(F.col("_held")).select("user_id", "course_id", "rating")
    train = marked.where(~F.col("_held")).select("user_id", "course_id", "rating")
    rated_eval = rated.select("user_id", "course_id").join(
        held.select("user_id", "course_id"), ["user_id", "course_id"], "left_anti"
    )
    averages = average_course_ratings(train).persist()
    candidates = courses_to_recommend(
        train.select("user_id", "course_id"), courses, averages, per_language=per_user, rated=rated_eval
    )
    rule_top = top_recommendations(candidates, per_user).persist()
    fitted = spark_factorization.fit(train, rank=rank, regularization=regularization, iterations=iterations, seed=seed)
    als_top = spark_factorization.top_courses(
        fitted, rated_eval, per_user=per_user, min_rating=min_rating, max_rating=max_rating
    )
    als_top, n_fallback = spark_factorization.with_fallback(als_top, fitted, rule_top)
    als_top = als_top.persist()
    pair = ["user_id", "course_id"]
    scored = (
        spark_factorization.predict(fitted, held, min_rating, max_rating)
        .join(averages.select("course_id", F.col("average_rating").alias("rule")), "course_id", "left")
        .join(rule_top.select(*pair, F.col("rank").alias("rule_rank")), pair, "left")
        .join(als_top.select(*pair, F.col("rank").alias("als_rank")), pair, "left")
        .select(*pair, "rating", "rule", F.coalesce("predicted", "rule").alias("als"), "rule_rank", "als_rank")
    )
    held_out = scored.toPandas()
    rule_counts, als_counts = (
        frame.agg(F.countDistinct("course_id").alias("courses"), F.countDistinct("user_id").alias("users")).first()
        for frame in (rule_top, als_top)
    )
    n_courses = courses.count()
    for frame in (marked, averages, rule_top, als_top):
        frame.unpersist()
    return quality.quality_frame(
        [
            quality.method_quality(
                "language_rule",
                held_out.assign(predicted=held_out["rule"], rank=held_out["rule_rank"]),
                n_recommended_courses=rule_counts["courses"],
                n_courses=n_courses,
                n_personal=0,
                n_listed=rule_counts["users"],
                n_fallback=0,
                relevant=relevant,
            ),
            quality.method_quality(
                "als",
                held_out.assign(predicted=held_out["als"], rank=held_out["als_rank"]),
                n_recommended_courses=als_counts["courses"],
                n_courses=n_courses,
                n_personal=als_counts["users"] - n_fallback,
                n_listed=als_counts["users"],
                n_fallback=n_fallback,
                relevant=relevant,
            ),
        ]
    )
