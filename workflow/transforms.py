"""Pure transforms of the recommendation workflow: DataFrames in, DataFrames out, no I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd

COURSE_COLUMNS = ["course_id", "title", "description", "programming_language"]
RATING_COLUMNS = ["user_id", "course_id", "rating"]


def clean_courses(courses: pd.DataFrame, language_fill: str) -> pd.DataFrame:
    """Return the courses with `programming_language` trimmed and lower-cased, missing or blank ones filled."""
    language = courses["programming_language"].astype("string").str.strip()
    language = language.where(language.notna() & (language != ""), language_fill)
    cleaned = courses[COURSE_COLUMNS].copy()
    cleaned["programming_language"] = language.str.strip().str.lower().astype(str)
    cleaned["course_id"] = cleaned["course_id"].astype("int64")
    return cleaned.sort_values("course_id", kind="stable").reset_index(drop=True)


def validate_ratings(
    ratings: pd.DataFrame, course_ids: pd.Series, min_rating: float, max_rating: float
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return the valid ratings and how many rows were dropped for each reason (first failing rule wins)."""
    missing = ratings[RATING_COLUMNS].isna().any(axis=1).to_numpy()
    unknown_course = ~missing & ~ratings["course_id"].isin(course_ids).to_numpy()
    rating = ratings["rating"].to_numpy(dtype="float64", na_value=np.nan)
    out_of_range = ~missing & ~unknown_course & ((rating < min_rating) | (rating > max_rating))
    valid = ratings.loc[~(missing | unknown_course | out_of_range), RATING_COLUMNS]
    valid = valid.astype({"user_id": "int64", "course_id": "int64", "rating": "float64"})
    dropped = {
        "missing_value": int(missing.sum()),
        "unknown_course": int(unknown_course.sum()),
        "rating_out_of_range": int(out_of_range.sum()),
    }
    return valid.reset_index(drop=True), dropped


def average_course_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Return each rated course's mean rating (`average_rating`) and number of ratings, by course_id."""
    grouped = ratings.groupby("course_id", sort=True)["rating"]
    averages = pd.DataFrame({"average_rating": grouped.mean(), "n_ratings": grouped.size().astype("int64")})
    return averages.reset_index()


def user_languages(ratings: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return each user's languages: every language tied for the most ratings by that user, with that count."""
    language = ratings["course_id"].map(courses.set_index("course_id")["programming_language"])
    counts = (
        pd.DataFrame({"user_id": ratings["user_id"].to_numpy(), "programming_language": language.to_numpy()})
        .groupby(["user_id", "programming_language"], sort=True)
        .size()
        .rename("n_rated")
        .reset_index()
    )
    most = counts.groupby("user_id")["n_rated"].transform("max")
    return counts[counts["n_rated"] == most].reset_index(drop=True)


def language_rankings(averages: pd.DataFrame, courses: pd.DataFrame) -> pd.DataFrame:
    """Return the rated courses ordered by language, then average rating (highest first), then course_id."""
    ranked = averages[["course_id", "average_rating"]].merge(
        courses[["course_id", "programming_language"]], on="course_id", how="inner", validate="one_to_one"
    )
    return ranked.sort_values(
        ["programming_language", "average_rating", "course_id"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)


def courses_to_recommend(
    ratings: pd.DataFrame, courses: pd.DataFrame, averages: pd.DataFrame, per_language: int = 3
) -> pd.DataFrame:
    """Return each user's best `per_language` unrated courses of each of their languages, with their average rating.

    Rather than pairing every user with every course of their languages, walk each language's
    ranking: a user who rated k courses of a language finds their best unrated courses among that
    language's first k + per_language, so the candidates grow with the ratings, not users x courses.
    """
    languages = user_languages(ratings, courses)
    ranking = language_rankings(averages, courses)
    language_codes = pd.Categorical(ranking["programming_language"])
    starts = pd.Series(np.arange(len(ranking))).groupby(language_codes.codes).min()
    sizes = pd.Series(language_codes.codes).value_counts()
    code = pd.Categorical(languages["programming_language"], categories=language_codes.categories).codes

    has_ranking = code >= 0
    languages, code = languages[has_ranking], code[has_ranking]
    start = starts.reindex(code).to_numpy()
    take = np.minimum(languages["n_rated"].to_numpy() + per_language, sizes.reindex(code).to_numpy())
    offsets = np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)
    position = np.repeat(start, take) + offsets

    candidates = pd.DataFrame(
        {
            "user_id": np.repeat(languages["user_id"].to_numpy(), take),
            "course_id": ranking["course_id"].to_numpy()[position],
            "rating": ranking["average_rating"].to_numpy()[position],
            "language_rank": np.repeat(np.arange(len(languages)), take),
        }
    )
    # Encode (user_id, course_id) pairs as one integer for a fast anti-join.
    width = (
        int(np.max(np.concatenate([ratings["course_id"].to_numpy(), ranking["course_id"].to_numpy()]), initial=0)) + 1
    )
    rated_pairs = ratings["user_id"].to_numpy() * width + ratings["course_id"].to_numpy()
    candidate_pairs = pd.Series(candidates["user_id"].to_numpy() * width + candidates["course_id"].to_numpy())
    unrated = ~candidate_pairs.isin(rated_pairs).to_numpy()  # a hash lookup: several times faster than np.isin
    candidates = candidates[unrated]
    best = candidates.groupby("language_rank", sort=False).cumcount() < per_language
    return candidates.loc[best, ["user_id", "course_id", "rating"]].reset_index(drop=True)


def top_recommendations(candidates: pd.DataFrame, per_user: int = 3) -> pd.DataFrame:
    """Return each user's `per_user` candidates with the highest rating, ties by course_id, ranked from 1."""
    ordered = candidates.sort_values(
        ["user_id", "rating", "course_id"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)
    rank = ordered.groupby("user_id", sort=False).cumcount() + 1
    top = ordered.assign(rank=rank.astype("int64"))[rank <= per_user]
    return top[["user_id", "course_id", "rating", "rank"]].reset_index(drop=True)
