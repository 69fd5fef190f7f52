"""Whether the graph and the case study recommend the same courses, where the case study's tie order allows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from case_study import BASELINE_TABLE, baseline_clean_courses
from duckdb_peer import PEER_TABLE

from workflow import databases
from workflow.io import postgres
from workflow.pipelines.courses.tasks import ExtractedCourses, ExtractedRatings

AGREEMENT_LINE = "same recommendations where the case study's arbitrary tie order allows"


@dataclass(frozen=True)
class Agreement:
    """How many users get the same recommendation set from both approaches, overall and where comparable."""

    users: int
    same: int
    compared: int
    agree: int
    differ_language_tie: int
    differ_rating_tie: int
    differ_other: list[int]


def top_languages(ratings: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return each user's most-rated languages (user_id, language, n) with `tied` when there are several."""
    language_of = pd.Series(courses["programming_language"].to_numpy(), index=courses["course_id"].to_numpy())
    counts = (
        pd.DataFrame(
            {"user_id": ratings["user_id"].to_numpy(), "language": ratings["course_id"].map(language_of).to_numpy()}
        )
        .value_counts(sort=False)
        .rename("n")
        .reset_index()
    )
    counts = counts[counts["n"] == counts.groupby("user_id")["n"].transform("max")]
    return counts.assign(tied=counts.groupby("user_id")["n"].transform("size") > 1).reset_index(drop=True)


def best_unrated(ratings: pd.DataFrame, courses: pd.DataFrame, top: pd.DataFrame, k: int) -> pd.DataFrame:
    """Return each user's k best unrated courses (user_id, average) of their language, best first."""
    # Among a language's courses ranked by average, a user who rated n of them finds their k best
    # unrated ones within the first n + k, so only those are looked at.
    averages = ratings.groupby("course_id")["rating"].mean().rename("average").reset_index()
    ranking = courses[["course_id", "programming_language"]].merge(averages, on="course_id")
    ranking = ranking.sort_values(["programming_language", "average"], ascending=[True, False], kind="stable")
    segments = pd.Series(np.arange(len(ranking)), index=ranking["programming_language"].to_numpy())
    segments = segments.groupby(level=0).agg(["min", "size"])
    start = segments["min"].reindex(top["language"]).fillna(0).to_numpy(dtype=np.int64)
    size = segments["size"].reindex(top["language"]).fillna(0).to_numpy(dtype=np.int64)
    take = np.minimum(top["n"].to_numpy() + k, size)
    position = np.repeat(start, take) + np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)
    users = np.repeat(top["user_id"].to_numpy(), take)
    course_ids = ranking["course_id"].to_numpy()[position]
    width = int(max(ranking["course_id"].max(), ratings["course_id"].max())) + 1
    rated = ratings["user_id"].to_numpy() * width + ratings["course_id"].to_numpy()
    unrated = ~np.isin(users * width + course_ids, rated)
    candidates = pd.DataFrame({"user_id": users, "average": ranking["average"].to_numpy()[position]})[unrated]
    return candidates[candidates.groupby("user_id", sort=False).cumcount() < k]


def rating_tie_users(ratings: pd.DataFrame, courses: pd.DataFrame, top: pd.DataFrame, per_user: int) -> np.ndarray:
    """Return the users whose `per_user`-th and next best unrated courses have the same average."""
    best = best_unrated(ratings, courses, top, per_user + 1)
    rank = best.groupby("user_id", sort=False).cumcount()
    last = best[rank == per_user - 1].set_index("user_id")["average"]
    following = best[rank == per_user].set_index("user_id")["average"]
    return following.index[following.to_numpy() == last.reindex(following.index).to_numpy()].to_numpy()


def differing_users(ours: pd.DataFrame, theirs: pd.DataFrame) -> np.ndarray:
    """Return the users whose sets of recommended course_ids differ between the two tables."""
    keys = ["user_id", "course_id"]
    both = ours[keys].astype("int64").merge(theirs[keys].astype("int64"), on=keys, how="outer", indicator=True)
    return both.loc[both["_merge"] != "both", "user_id"].unique()


def compare(date: dt.date, per_user: int) -> Agreement:
    """Compare our warehouse recommendations of the date with the baseline's table, user by user."""
    with postgres.connect(databases.warehouse_url()) as connection:
        query = "SELECT user_id, course_id FROM daily_recommendations WHERE recommendation_date = :d"
        ours = pd.read_sql(sa.text(query), connection, params={"d": date})
        theirs = pd.read_sql(sa.text(f"SELECT user_id, course_id FROM {BASELINE_TABLE}"), connection)
    ratings = pd.read_parquet(ExtractedRatings(date=date).output().path, columns=["user_id", "course_id", "rating"])
    courses = baseline_clean_courses(pd.read_parquet(ExtractedCourses(date=date).output().path))
    top = top_languages(ratings, courses)
    language_tie = np.unique(top.loc[top["tied"], "user_id"].to_numpy())
    rating_tie = np.setdiff1d(rating_tie_users(ratings, courses, top[~top["tied"]], per_user), language_tie)
    users = ratings["user_id"].unique()
    differ = differing_users(ours, theirs)
    comparable = np.setdiff1d(users, np.union1d(language_tie, rating_tie))
    return Agreement(
        users=len(users),
        same=len(np.setdiff1d(users, differ)),
        compared=len(comparable),
        agree=len(np.setdiff1d(comparable, differ)),
        differ_language_tie=len(np.intersect1d(differ, language_tie)),
        differ_rating_tie=len(np.intersect1d(differ, rating_tie)),
        differ_other=np.setdiff1d(differ, np.union1d(language_tie, rating_tie)).tolist(),
    )


def agreement_lines(agreement: Agreement | None) -> list[str]:
    """Return the lines that say whether both approaches recommend the same courses."""
    if agreement is None:
        return [f"{AGREEMENT_LINE}: not compared (baseline skipped)"]
    verdict = "yes" if agreement.agree == agreement.compared else "NO"
    n_differ = agreement.users - agreement.same
    return [
        f"{AGREEMENT_LINE}: {verdict}, {agreement.agree:,} of {agreement.compared:,} users compared agree "
        f"(left out: {agreement.users - agreement.compared:,} users with tied top languages or a tie at the "
        "last recommended place)",
        f"all {agreement.users:,} users: {agreement.same:,} get the same set; of the {n_differ:,} who differ, "
        f"{agreement.differ_language_tie:,} have tied top languages, {agreement.differ_rating_tie:,} a tie at the "
        f"last place, {len(agreement.differ_other):,} neither{' (e.g. users ' if agreement.differ_other else ''}"
        f"{', '.join(map(str, agreement.differ_other[:5]))}{')' if agreement.differ_other else ''}",
    ]


def peer_agreement_line(date: dt.date) -> str:
    """Return the line that says whether the DuckDB peer's rows are ours, row for row (user, course, rating, rank)."""
    with postgres.connect(databases.warehouse_url()) as connection:
        query = "SELECT user_id, course_id, rating, rank FROM daily_recommendations WHERE recommendation_date = :d"
        ours = pd.read_sql(sa.text(query), connection, params={"d": date})
        theirs = pd.read_sql(sa.text(f"SELECT user_id, course_id, rating, rank FROM {PEER_TABLE}"), connection)
    key = ["user_id", "rank"]
    ours = ours.astype({"rank": "int64"}).sort_values(key, ignore_index=True)
    theirs = theirs.astype({"rank": "int64"}).sort_values(key, ignore_index=True)
    same = len(ours) == len(theirs) and ours.equals(theirs)
    return f"DuckDB peer's rows identical to ours: {'yes' if same else 'NO'} ({len(theirs):,} rows, ours {len(ours):,})"
