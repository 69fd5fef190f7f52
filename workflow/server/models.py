"""The API's contract: every body the server answers, declared once, as its OpenAPI schema shows it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(value: object) -> object:
    """Return the value when it is a YYYY-MM-DD text (pydantic then checks the calendar); refuse any other form."""
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise ValueError("a date is written YYYY-MM-DD")
    return value


# A date as the API takes it: YYYY-MM-DD on the calendar (the schema says `format: date`).
Day = Annotated[dt.date, BeforeValidator(iso_date)]


class Problem(BaseModel):
    """Why the server could not answer: a thing not found (404) or a warehouse that cannot answer now (503)."""

    detail: str


class Unavailable(BaseModel):
    """The warehouse cannot be reached now (503); the reason names no host, port or role."""

    status: Literal["unavailable"]
    detail: str


class Recommendation(BaseModel):
    """A recommended course with its predicted rating."""

    course_id: int
    title: str | None
    rating: float


class Load(BaseModel):
    """A loaded date of the course recommendations, with its figures (null where the warehouse has none)."""

    date: dt.date
    rows: int | None
    users: int | None
    invalid_rows: int | None
    invalid_share: float | None
    duration_s: float | None
    loaded_at: dt.datetime | None
    partial: bool | None


class LoadPage(BaseModel):
    """One page of the load history, newest first."""

    total: int
    limit: int
    offset: int
    loads: list[Load]


class FilmTitle(BaseModel):
    """A recommended film's id and title."""

    film_id: int
    title: str | None


class Film(BaseModel):
    """A store.film row, whole, with its recommended films' titles in their order."""

    model_config = ConfigDict(extra="allow")

    film_id: int
    title: str | None = None
    recommended_film_ids: list[int] | None = None
    recommended_films: list[FilmTitle]


class PipelineFreshness(BaseModel):
    """A pipeline's freshness: its newest whole-day load, when that date's own load committed, and the verdict."""

    pipeline: str
    state: Literal["fresh", "late", "failed"]
    newest_date: dt.date | None
    loaded_at: dt.datetime | None
    age_s: float | None
    due_date: dt.date
    expected_by: str = Field(pattern=r"^\d{2}:\d{2}$", description="UTC time of day")
    detail: str


class FreshnessReport(BaseModel):
    """Every pipeline's freshness, as `python -m workflow freshness --json` prints it."""

    checked_at: dt.datetime
    fresh: bool
    pipelines: list[PipelineFreshness]


class Health(FreshnessReport):
    """The warehouse answers; the freshness of every pipeline, and the course recommendations' newest load."""

    status: Literal["ok"]
    loads: int = Field(description="loaded dates of the course recommendations")
    newest_date: dt.date | None = Field(description="their newest whole-day load")
    newest_loaded_at: dt.datetime | None = Field(description="when that date's own load committed")
    newest_load_age_s: float | None


class DateRuns(BaseModel):
    """A pipeline's date: its state, and its figures from the load row and the run history."""

    date: dt.date
    state: Literal["loaded", "partial", "failed", "late", "missing"]
    due_by: dt.datetime = Field(description="when the date's load is expected (UTC)")
    rows: int | None = Field(description="rows loaded")
    set_aside: dict[str, int] = Field(description="rows set aside, by reason, over the date's steps")
    invalid_rows: int | None
    invalid_share: float | None
    duration_s: float | None
    engine: str | None
    loaded_at: dt.datetime | None
    runs: int = Field(description="task runs of the date in the run history")
    failed_task: str | None
    error: str | None


class PipelineRuns(BaseModel):
    """A pipeline's dates, newest first."""

    pipeline: str
    expected_by: str = Field(pattern=r"^\d{2}:\d{2}$", description="UTC time of day")
    due_date: dt.date
    dates: list[DateRuns]


class RunsReport(BaseModel):
    """Every pipeline's last dates up to yesterday (UTC)."""

    checked_at: dt.datetime
    first: dt.date
    last: dt.date
    pipelines: list[PipelineRuns]


class Quality(BaseModel):
    """A method's offline quality on a date: each user's newest valid rating held out, the rest fitted, the held-out
    ratings predicted (rmse, mae) and looked for in the users' top lists (hit rate and NDCG over the relevant ones)."""

    date: dt.date
    method: Literal["language_rule", "als"]
    partial: bool
    n_users: int = Field(description="users with a held-out rating")
    n_held_out: int
    n_predicted: int = Field(description="held-out ratings the method predicted")
    rmse: float | None
    mae: float | None
    n_relevant: int = Field(description="held-out ratings of 4 or more ([recommender] relevant)")
    hit_rate: float | None = Field(description="share of the relevant held-out courses in the user's list")
    ndcg: float | None = Field(description="mean of 1/log2(1 + position) of the relevant held-out courses found")
    coverage: float | None = Field(description="share of the courses recommended to anyone")
    personal_share: float | None = Field(description="share of the users whose list comes from their own factors")
    n_fallback: int | None = Field(description="users the factorization left to the case study's rule")
    engine: str | None
    evaluated_at: dt.datetime


class QualityReport(BaseModel):
    """Both methods' quality figures of the newest evaluated dates, oldest first."""

    figures: list[Quality]


class RatingBucket(BaseModel):
    """How many recommendations have a predicted rating (rounded to 0.1)."""

    rating: float
    recommendations: int


class LanguageCount(BaseModel):
    """Recommendations and recommended users of a course language."""

    language: str
    recommendations: int
    users: int


class TopCourse(BaseModel):
    """A most recommended course."""

    course_id: int
    title: str | None
    language: str
    recommendations: int
    rating: float


class Dashboard(BaseModel):
    """The dashboard's charts: every load, and the results of one loaded date (the current one by default)."""

    date: dt.date | None = Field(description="the date of the results; null while nothing is loaded")
    loads: list[Load]
    ratings: list[RatingBucket]
    languages: list[LanguageCount]
    top_courses: list[TopCourse]
