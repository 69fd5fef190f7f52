"""Ratings of items by users, validated and averaged on Spark: the rules of rules.ratings, in the DataFrame API."""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from workflow.rules.ratings import RATED_AT, RatingRoles


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
    rows = rows.withColumn("reason", reason).drop("_known")
    # Copies of one (user, item) pair among the rows that pass: the strictly latest one is the rating,
    # older ones are superseded, and copies sharing the latest stamp (or any copies without stamps) are
    # duplicates. The rows are shuffled once by the pair, and windows over the pair judge every copy in
    # place: no aggregate joined back on.
    passes = F.col("reason").isNull()
    pair = Window.partitionBy(user, item)
    judged = shuffled(rows, user, item).withColumn("_copies", F.count(F.when(passes, 1)).over(pair))
    keys = [user, item, *([rated_at] if stamped else [])]
    if stamped:
        judged = judged.withColumn("_latest", F.max(F.when(passes, F.col(rated_at))).over(pair))
        latest = passes & (F.col(rated_at) == F.col("_latest"))
        judged = judged.withColumn("_n_latest", F.sum(F.when(latest, 1).otherwise(0)).over(pair))
        checks = [("superseded", F.col(rated_at) < F.col("_latest")), ("duplicate_pair", F.col("_n_latest") > 1)]
        repeat = first_failed(checks)
    else:
        repeat = F.lit("duplicate_pair")
    # Rows that failed a check (a missing id or stamp) keep their reason; only copies that pass are judged.
    repeat = F.when(passes & (F.col("_copies") > 1), repeat)
    judged = judged.select(*rows.columns, repeat.alias("_repeat"))
    # The quarantine (few rows, as a rule) is kept on disk for the valid rows: the rows that pass but whose
    # (user, item[, stamp]) a repeated copy holds, found by a join with its (broadcast) keys instead of
    # keeping the whole day's rows.
    quarantined = judged.where(F.col("reason").isNotNull() | F.col("_repeat").isNotNull()).select(
        *columns, *([rated_at] if stamped else []), F.coalesce(F.col("reason"), F.col("_repeat")).alias("reason"),
        F.col("_repeat").isNotNull().alias("_repeated"),
    )  # fmt: skip
    quarantined = quarantined.persist(StorageLevel.DISK_ONLY)
    repeated = quarantined.where(F.col("_repeated")).select(*keys)
    valid = (  # with rated_at (keys[2:]) when stamped: the evaluation holds out each user's newest rating
        rows.where(passes)
        .join(repeated, keys, "left_anti")
        .select(F.col(user).cast("long"), F.col(item).cast("long"), rating.cast("double"), *keys[2:])
    )
    return valid, quarantined.drop("_repeated")


def average_ratings(ratings: DataFrame, roles: RatingRoles) -> DataFrame:
    """Return each rated item's mean rating and number of valid ratings, under the roles' names."""
    return ratings.groupBy(F.col(roles.item).cast("long").alias(roles.item)).agg(
        F.avg("rating").alias(roles.average), F.count(F.lit(1)).cast("long").alias(roles.count)
    )
