"""Alternating least squares on Spark (pyspark.ml's ALS) and the hold-out of the offline evaluation, in the DataFrame
API: the rules of `factorization` and `quality` (frames in, frames out)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from workflow.pipelines.courses.quality import COURSE_MULTIPLIER, PRIME, USER_MULTIPLIER
from workflow.rules.ratings import RATED_AT

RECOMMENDATION_SCHEMA = "user_id long, course_id long, rating double, rank long"


@dataclass(frozen=True)
class Fitted:
    """An ALS model over dense int codes, and the codes of the users and courses that have factors."""

    model: ALSModel | None  # None without ratings: pyspark's ALS refuses to fit on none
    users: DataFrame  # user_id, _user
    courses: DataFrame  # course_id, _course


def dense_codes(ids: DataFrame, column: str, code: str) -> DataFrame:
    """Return the distinct non-null ids of a column with their int code from 0 in the ids' order (ALS needs ints)."""
    distinct = ids.select(column).dropna().distinct()
    return distinct.select(column, (F.row_number().over(Window.orderBy(column)) - 1).cast("int").alias(code))


def fit(ratings: DataFrame, *, rank: int, regularization: float, iterations: int, seed: int) -> Fitted:
    """Return pyspark.ml's explicit-feedback ALS fitted on the ratings, with the codes it was fitted on."""
    users = dense_codes(ratings, "user_id", "_user").persist()
    courses = dense_codes(ratings, "course_id", "_course").persist()
    coded = ratings.select("user_id", "course_id", F.col("rating").cast("double")).join(users, "user_id")
    coded = coded.join(F.broadcast(courses), "course_id")
    # Spark's 10 blocks a side by default, fewer when the session shuffles into fewer partitions (tests: 2).
    blocks = min(10, int(ratings.sparkSession.conf.get("spark.sql.shuffle.partitions")))
    als = ALS(
        rank=rank,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        maxIter=iterations,
        regParam=regularization,
        seed=seed,
        implicitPrefs=False,
        coldStartStrategy="drop",
        userCol="_user",
        itemCol="_course",
        ratingCol="rating",
    )
    if coded.isEmpty():
        return Fitted(None, users, courses)
    return Fitted(als.fit(coded.select("_user", "_course", "rating")), users, courses)


def clipped(rating: Column, min_rating: float, max_rating: float) -> Column:
    """Return a predicted rating as a double clipped to [min_rating, max_rating]."""
    return F.least(F.greatest(rating.cast("double"), F.lit(float(min_rating))), F.lit(float(max_rating)))


def top_courses(fitted: Fitted, rated: DataFrame, *, per_user: int, min_rating: float, max_rating: float) -> DataFrame:
    """Return each user's `per_user` unrated courses with the highest predicted rating clipped to the scale, ties to
    the lower course_id, ranked from 1 (user_id, course_id, rating, rank).

    ALS gives each user its k best courses by raw prediction: k is per_user plus the user's rated courses
    (rounded up to a power of 2, so that users come in a few groups, each asked for at once), enough for
    per_user unrated ones. Ties made by clipping are broken among those k: when more than k courses clip
    to the top of the scale, the pandas rules, which score every course, may pick lower course_ids.
    """
    session = rated.sparkSession
    if fitted.model is None:
        return session.createDataFrame([], RECOMMENDATION_SCHEMA)
    n_courses = fitted.courses.count()
    pairs = (
        rated.select("user_id", "course_id")
        .dropna()
        .join(fitted.users, "user_id")
        .join(F.broadcast(fitted.courses), "course_id")
        .select("_user", "_course")
        .distinct()
    )
    n_rated = pairs.groupBy("_user").agg(F.count(F.lit(1)).alias("_n_rated"))
    wanted = F.least(F.lit(per_user) + _power_of_2_above(F.coalesce("_n_rated", F.lit(0))), F.lit(n_courses))
    needed = fitted.users.join(n_rated, "_user", "left").select("_user", wanted.alias("_k")).persist()
    groups = sorted(row["_k"] for row in needed.select("_k").distinct().collect())
    found = session.createDataFrame([], "_user int, _course int, _raw float")
    for k in groups:
        best = fitted.model.recommendForUserSubset(needed.where(F.col("_k") == k), int(k))
        exploded = best.select("_user", F.explode("recommendations").alias("_r"))
        found = found.unionByName(exploded.select("_user", "_r._course", F.col("_r.rating").alias("_raw")))
    found = found.join(pairs, ["_user", "_course"], "left_anti")
    found = found.join(fitted.users, "_user").join(F.broadcast(fitted.courses), "_course")
    found = found.select("user_id", "course_id", clipped(F.col("_raw"), min_rating, max_rating).alias("rating"))
    by_rating = Window.partitionBy("user_id").orderBy(F.desc("rating"), F.asc("course_id"))
    ranked = found.withColumn("rank", F.row_number().over(by_rating).cast("long"))
    return ranked.where(F.col("rank") <= per_user)


def _power_of_2_above(n: Column) -> Column:
    """Return the smallest power of 2 that is greater than n (n >= 0), minus 1: 0, 1, 3, 7, 15, ..."""
    return (F.pow(F.lit(2), F.ceil(F.log2(n + 1))) - 1).cast("long")


def predict(fitted: Fitted, pairs: DataFrame, min_rating: float, max_rating: float) -> DataFrame:
    """Return the pairs (user_id, course_id, ...) with `predicted`: the clipped u.v, null when either has no factors."""
    if fitted.model is None:
        return pairs.withColumn("predicted", F.lit(None).cast("double"))
    coded = pairs.join(fitted.users, "user_id", "left").join(F.broadcast(fitted.courses), "course_id", "left")
    known = coded.where(F.col("_user").isNotNull() & F.col("_course").isNotNull())
    scored = fitted.model.transform(known.select("user_id", "course_id", "_user", "_course"))  # drops cold starts
    scored = scored.select(
        "user_id", "course_id", clipped(F.col("prediction"), min_rating, max_rating).alias("predicted")
    )
    return pairs.join(scored, ["user_id", "course_id"], "left")


def with_fallback(recommendations: DataFrame, fitted: Fitted, fallback: DataFrame) -> tuple[DataFrame, int]:
    """Return the recommendations with the fallback's rows of the users that have no factors, and their number."""
    kept = fallback.select("user_id", "course_id", "rating", "rank").join(fitted.users, "user_id", "left_anti")
    kept = kept.select(F.col("user_id").cast("long"), F.col("course_id").cast("long"), F.col("rating").cast("double"),
                       F.col("rank").cast("long"))  # fmt: skip
    n_fallback = kept.select("user_id").distinct().count()
    return recommendations.unionByName(kept), n_fallback


def with_held_out(ratings: DataFrame, seed: int) -> DataFrame:
    """Return the ratings with `_held`: whether the rating is its user's held-out one (quality.held_out_mask's rule)."""
    user = Window.partitionBy("user_id")
    stamped = RATED_AT in ratings.columns
    marked = ratings.withColumn("_n", F.count(F.lit(1)).over(user)).withColumn(
        "_stamped", F.max(F.col(RATED_AT).isNotNull()).over(user) if stamped else F.lit(False)
    )
    by_stamp = F.col("_stamped")
    hashed = F.pmod(
        F.pmod("user_id", F.lit(PRIME)) * USER_MULTIPLIER + F.pmod("course_id", F.lit(PRIME)) * COURSE_MULTIPLIER
        + F.lit(seed), F.lit(PRIME)
    )  # fmt: skip
    order = Window.partitionBy("user_id").orderBy(
        F.when(by_stamp, F.col(RATED_AT) if stamped else F.lit(None)).desc_nulls_last(),
        F.when(~by_stamp, hashed).asc_nulls_last(),
        F.when(by_stamp, F.col("course_id")).desc_nulls_last(),
        F.when(~by_stamp, F.col("course_id")).asc_nulls_last(),
    )
    held = (F.row_number().over(order) == 1) & (F.col("_n") >= 2)
    return marked.withColumn("_held", held).drop("_n", "_stamped")
