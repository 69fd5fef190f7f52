"""The case study's own pipeline, re-implemented faithfully: the baseline the benchmark measures the graph against."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

BASELINE_TABLE = "recommendations_baseline"


def baseline_extract(url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the source courses and ratings as the case study reads them."""
    engine = sa.create_engine(url)
    try:
        return pd.read_sql("SELECT * FROM courses", engine), pd.read_sql("SELECT * FROM rating", engine)
    finally:
        engine.dispose()


def baseline_clean_courses(courses: pd.DataFrame) -> pd.DataFrame:
    """Return the courses with missing languages filled with 'R', then lower-cased."""
    cleaned = courses.fillna({"programming_language": "R"})
    cleaned["programming_language"] = cleaned["programming_language"].str.lower()
    return cleaned


def baseline_average_ratings(rating: pd.DataFrame) -> pd.DataFrame:
    """Return each course's mean rating as columns course_id, rating."""
    return rating.groupby("course_id")["rating"].mean().reset_index()


def baseline_courses_to_recommend(rating: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return every (user, course) pair of the user's most-rated language that the user has not rated."""
    rated = rating.merge(courses[["course_id", "programming_language"]], on="course_id")
    # idxmax of each user's value_counts (vectorised): one language per user, ties picked arbitrarily.
    counts = rated.groupby("user_id")["programming_language"].value_counts()
    user_language = pd.DataFrame(
        counts.groupby(level="user_id").idxmax().tolist(), columns=["user_id", "programming_language"]
    )
    pairs = user_language.merge(courses[["course_id", "programming_language"]], on="programming_language")
    marked = pairs[["user_id", "course_id"]].merge(
        rating[["user_id", "course_id"]], on=["user_id", "course_id"], how="left", indicator=True
    )
    return marked.loc[marked["_merge"] == "left_only", ["user_id", "course_id"]]


def transform_recommendations(avg_course_ratings: pd.DataFrame, courses_to_recommend: pd.DataFrame) -> pd.DataFrame:
    """Return each user's three candidates with the highest average rating, as the case study writes it."""
    recommendations = courses_to_recommend
    return (
        recommendations.merge(avg_course_ratings, on="course_id")
        .sort_values("rating", ascending=False)
        .groupby("user_id")
        .head(3)
    )


def baseline_transform(courses: pd.DataFrame, rating: pd.DataFrame) -> pd.DataFrame:
    """Return the case study's recommendations from the extracted tables."""
    courses = baseline_clean_courses(courses)
    avg_course_ratings = baseline_average_ratings(rating)
    return transform_recommendations(avg_course_ratings, baseline_courses_to_recommend(rating, courses))


def baseline_load(url: str, recommendations: pd.DataFrame) -> None:
    """Replace the warehouse table `recommendations_baseline` with the recommendations."""
    engine = sa.create_engine(url)
    try:
        recommendations.to_sql(BASELINE_TABLE, engine, if_exists="replace", index=False)
    finally:
        engine.dispose()
