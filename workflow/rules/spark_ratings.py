"""Ratings of items by users, validated and averaged on Spark: the rules of rules.ratings, in the DataFrame API."""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from workflow.rules.ratings import RATED_AT, RatingRoles

# Rows of a kept frame a join broadcasts: 1M pairs of keys take ~50 MB on the driver and on each executor.
SMALL_ROWS = 1_000_000


def first_failed(checks: list[tuple[str, Column]]) -> Column:
    """Return the name of the first check a row fails, or NULL when it passes them all (rules.quality's reason)."""
    reason = None
    for name, failed in checks:
        reason = F.when(failed, F.lit(name)) if reason is None else reason.when(failed, F.lit(name))
    return reason


def shuffled(frame: DataFrame, *columns: str) -> DataFrame:
    """Return the frame repartitioned by the columns into the session's shuffle partitions, named so that adaptive
    execution keeps them rather than merging them into a few large tasks that spill."""
    partitions = int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    return frame.repartition(partitions, *columns)


def validate_ratings(
    ratings: DataFrame,
    item_ids: DataFrame,
    min_rating: float,
    max_rating: float,
    roles: RatingRoles,
) -> tuple[DataFrame, DataFrame]:
    """Return the valid ratings (with their `rated_at` when the frame has it), and the others with the first rule
    they break as `reason` (rules.ratings' rules).

    `item_ids` is a one-column frame of the known items.
    """
    user, item, unknown_item, rated_at = roles.user, roles.item, roles.unknown_item, RATED_AT
    columns = [user, item, "rating"]
    stamped = rated_at in ratings.columns
    stamp = [rated_at] if stamped else []
    rows = ratings.select(*columns, *stamp)
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
    rows = rows.withColumn("reason", reason).drop("_known")
    # Copies of one (user, item) pair among the rows that pass: the strictly latest one is the rating,
    # older ones are superseded, and copies sharing the latest stamp (or any copies without stamps) are
    # duplicates. As in rules.ratings, the repeated pairs are found first (their keys, shuffled once and
    # counted by hash: no sort of the day's rows), and only their copies are judged by windows.
    passes = F.col("reason").isNull()
    pairs = shuffled(rows.where(passes).select(user, item), user, item).groupBy(user, item).count()
    repeated_pairs = pairs.where(F.col("count") > 1).select(user, item).persist(StorageLevel.DISK_ONLY)
    copies = rows.where(passes).join(broadcast_if_small(repeated_pairs), [user, item], "left_semi")
    pair = Window.partitionBy(user, item)
    keys = [user, item, *stamp]
    if stamped:
        copies = copies.withColumn("_latest", F.max(rated_at).over(pair))
        latest = F.col(rated_at) == F.col("_latest")
        copies = copies.withColumn("_n_latest", F.sum(F.when(latest, 1).otherwise(0)).over(pair))
        repeat = first_failed(
            [("superseded", F.col(rated_at) < F.col("_latest")), ("duplicate_pair", F.col("_n_latest") > 1)]
        )
    else:
        repeat = F.lit("duplicate_pair")
    judged = copies.select(*rows.columns, repeat.alias("_repeat")).where(F.col("_repeat").isNotNull())
    # The quarantine (few rows, as a rule) is kept on disk for the valid rows: the rows that pass but whose
    # (user, item[, stamp]) a repeated copy holds, found by a join with its keys instead of keeping the
    # whole day's rows.
    failed = rows.where(~passes).select(*columns, *stamp, "reason", F.lit(False).alias("_repeated"))
    repeats = judged.select(*columns, *stamp, F.col("_repeat").alias("reason"), F.lit(True).alias("_repeated"))
    quarantined = failed.unionByName(repeats)
    quarantined = quarantined.persist(StorageLevel.DISK_ONLY)
    repeated = broadcast_if_small(quarantined.where(F.col("_repeated")).select(*keys))
    valid = (  # with rated_at when stamped: the evaluation holds out each user's newest rating
        rows.where(passes)
        .join(repeated, keys, "left_anti")
        .select(F.col(user).cast("long"), F.col(item).cast("long"), rating.cast("double"), *stamp)
    )
    return valid, quarantined.drop("_repeated")


def broadcast_if_small(frame: DataFrame) -> DataFrame:
    """Return a kept frame hinted for broadcast when it holds at most SMALL_ROWS rows (counting it computes it)."""
    return F.broadcast(frame) if frame.count() <= SMALL_ROWS else frame


def average_ratings(ratings: DataFrame, roles: RatingRoles) -> DataFrame:
    """Return each rated item's mean rating and number of valid ratings, under the roles' names."""
    return ratings.groupBy(F.col(roles.item).cast("long").alias(roles.item)).agg(
        F.avg("rating").alias(roles.average), F.count(F.lit(1)).cast("long").alias(roles.count)
    )
