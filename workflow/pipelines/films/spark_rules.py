"""The film pipeline's rules on Spark: the rules of `rules`, in the DataFrame API (frames in, frames out)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from workflow.pipelines.films.schemas import RATING_ROLES, RENTAL_COLUMNS, RENTED_AT
from workflow.rules import spark_ratings


def split_rental_rate(films: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Return the films with their rate's whole dollars and cents (int), and those set aside with a reason."""
    rate = F.col("rental_rate")
    # The rate to the cent, kept only when that is the rate exactly: a decimal as it is, a float through its
    # shortest repr (as Spark casts it, and as the pandas rule reads it), compared as a float. decimal(20, 2),
    # not (38, 2): comparing it with a decimal rate then widens both instead of rounding the rate to the cent.
    to_cent = rate.try_cast("decimal(20,2)")
    flagged = films.withColumn("_rate", F.when(to_cent == rate, to_cent)).withColumn(
        "reason",
        spark_ratings.first_failed(
            [
                ("missing_film_id", F.col("film_id").isNull()),
                ("duplicate_film_id", F.count(F.lit(1)).over(Window.partitionBy("film_id")) > 1),
                ("missing_rental_rate", F.col("_rate").isNull()),
                ("negative_rental_rate", F.col("_rate") < 0),
            ]
        ),
    )
    dollars = F.floor("_rate")
    kept = flagged.where(F.col("reason").isNull()).select(
        *films.columns,
        dollars.cast("int").alias("rental_rate_dollar"),
        ((F.col("_rate") - dollars) * 100).cast("int").alias("rental_rate_cents"),
    )
    return kept, flagged.where(F.col("reason").isNotNull()).select(*films.columns, "reason")


def validate_film_ratings(
    ratings: DataFrame, film_ids: DataFrame, min_rating: float, max_rating: float
) -> tuple[DataFrame, DataFrame]:
    """Return the valid film ratings, and the others with the first rule they break as `reason`."""
    return spark_ratings.validate_ratings(ratings, film_ids, min_rating, max_rating, RATING_ROLES)


def average_film_ratings(ratings: DataFrame) -> DataFrame:
    """Return each rated film's mean rating (`avg_rating`) and number of ratings (`rating_count`)."""
    return spark_ratings.average_ratings(ratings, RATING_ROLES)


def rented_films(rentals: DataFrame, inventory: DataFrame) -> DataFrame:
    """Return the customer_id, film_id (and rented_at, if any) of each rental of a known copy."""
    columns = RENTAL_COLUMNS if RENTED_AT in rentals.columns else RENTAL_COLUMNS[:2]
    return rentals.join(inventory.select("inventory_id", "film_id"), "inventory_id").select(*columns)


def co_rental_recommendations(
    rentals: DataFrame, film_ids: DataFrame, per_film: int = 3, pair_budget: int | None = None
) -> DataFrame:
    """Return every film of film_ids with its `per_film` co-rented films, best first (`rules`' ranking).

    The rentals are shuffled once by customer_id: their distinct (customer, film) pairs and the
    self-join into (film, other film) pairs reuse that partitioning, and Spark spills what memory
    does not hold, so `pair_budget` (the pandas rule's memory bound) is not needed.
    """
    known = film_ids.select(F.col(film_ids.columns[0]).cast("long").alias("film_id")).dropna().distinct()
    rented = (
        rentals.select(F.col("customer_id").cast("long"), F.col("film_id").cast("long"))
        .dropna()
        .join(F.broadcast(known), "film_id", "left_semi")
    )
    rented = spark_ratings.shuffled(rented, "customer_id").distinct()
    counts = (
        rented.join(rented.withColumnRenamed("film_id", "other"), "customer_id")
        .where(F.col("film_id") != F.col("other"))
        .groupBy("film_id", "other")
        .agg(F.count(F.lit(1)).alias("customers"))
    )
    best = Window.partitionBy("film_id").orderBy(F.desc("customers"), F.asc("other"))
    top = counts.withColumn("_rank", F.row_number().over(best)).where(F.col("_rank") <= per_film)
    lists = top.groupBy("film_id").agg(F.sort_array(F.collect_list(F.struct("_rank", "other"))).alias("_top"))
    recommended = F.transform("_top", lambda pick: pick["other"])
    return known.join(lists, "film_id", "left").select(
        "film_id", F.coalesce(recommended, F.array().cast("array<bigint>")).alias("recommended_film_ids")
    )
