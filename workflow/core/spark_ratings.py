"""Ratings of items by users, validated on Spark: the rules of core.ratings, in the DataFrame API."""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812


def first_failed(checks: list[tuple[str, Column]]) -> Column:
    """Return the name of the first check a row fails, or NULL when it passes them all (core.quality's reason)."""
    reason = None
    for name, failed in checks:
        reason = F.when(failed, F.lit(name)) if reason is None else reason.when(failed, F.lit(name))
    return reason


def validate_ratings(
    ratings: DataFrame,
    item_ids: DataFrame,
    min_rating: float,
    max_rating: float,
    *,
    user: str,
    item: str,
    unknown_item: str,
    rated_at: str = "rated_at",
) -> tuple[DataFrame, DataFrame]:
    """Return the valid ratings, and the others with the first rule they break as `reason` (core.ratings' rules).

    `item_ids` is a one-column frame of the known items.
    """
    columns = [user, item, "rating"]
    stamped = rated_at in ratings.columns
    rows = ratings.select(*columns, *([rated_at] if stamped else []))
    known = item_ids.select(F.col(item_ids.columns[0]).cast("long").alias("_known")).dropna().distinct()
    rows = rows.join(known, rows[item] == known["_known"], "left")
    rating = F.col("rating")
    reason = first_failed(
        [
            ("missing_value", F.col(user).isNull() | F.col(item).isNull() | rating.isNull() | F.isnan(rating)),
            ("missing_timestamp", F.col(rated_at).isNull() if stamped else F.lit(False)),
            (unknown_item, F.col("_known").isNull()),
            ("rating_out_of_range", (rating < F.lit(float(min_rating))) | (rating > F.lit(float(max_rating)))),
        ]
    )
    rows = rows.withColumn("reason", reason)
    # Copies of one (user, item) pair among the rows that pass: the strictly latest one is the rating,
    # older ones are superseded, and copies sharing the latest stamp (or any copies without stamps) are
    # duplicates. Repeated pairs are few: they are found by aggregating, and only their rows are ranked,
    # so the day's rows are never sorted.
    passed = rows.where(F.col("reason").isNull())
    repeated = passed.groupBy(user, item).count().where(F.col("count") > 1).select(user, item)
    if stamped:
        copies = passed.join(repeated, [user, item], "left_semi")
        pair = Window.partitionBy(user, item)
        latest = F.max(rated_at).over(pair)
        copies = copies.withColumn("_latest", latest).withColumn(
            "_n_latest", F.sum(F.when(F.col(rated_at) == F.col("_latest"), 1).otherwise(0)).over(pair)
        )
        checks = [("superseded", F.col(rated_at) < F.col("_latest")), ("duplicate_pair", F.col("_n_latest") > 1)]
        verdicts = copies.select(user, item, rated_at, first_failed(checks).alias("_repeat")).distinct()
        keys = [user, item, rated_at]
    else:
        verdicts, keys = repeated.withColumn("_repeat", F.lit("duplicate_pair")), [user, item]
    # Null keys never match: rows that failed a check (a missing id or stamp) keep their reason.
    rows = rows.join(verdicts, keys, "left").withColumn("reason", F.coalesce(F.col("reason"), F.col("_repeat")))
    rows = rows.persist(StorageLevel.DISK_ONLY)  # two outputs of one pass: the valid rows and the quarantine
    valid = rows.where(F.col("reason").isNull()).select(
        F.col(user).cast("long"), F.col(item).cast("long"), rating.cast("double")
    )
    quarantined = rows.where(F.col("reason").isNotNull()).select(*columns, *([rated_at] if stamped else []), "reason")
    return valid, quarantined
