"""The demo data's "even" shape: 1 user per 10 ratings, 80% of a user's draws in one language, 2% of courses without
a language; the default shape is `make run`'s."""

from __future__ import annotations

import datetime as dt

import pytest

from workflow.pipelines.courses import demo

UNTIL = dt.date(2026, 12, 4)


def test_the_even_shape_has_one_user_per_10_ratings_mostly_in_one_language() -> None:
    courses, ratings = demo.demo_data(200_000, until=UNTIL, shape="even")
    assert len(courses) == 1_000
    assert courses["programming_language"].isna().sum() == 20
    assert len(ratings) == 200_000
    assert ratings["user_id"].nunique() == 20_000
    assert (ratings["user_id"].min(), ratings["user_id"].max()) == (1, 20_000)
    assert not ratings.duplicated(["user_id", "course_id"]).any()
    language = ratings["course_id"].map(courses.set_index("course_id")["programming_language"].fillna("r"))
    most = language.groupby(ratings["user_id"]).value_counts().groupby(level=0).max().sum()
    assert most == 169_886  # 85%: the other 20% of draws fall in the favourite language too, at times


def test_an_unknown_shape_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown shape 'flat'"):
        demo.demo_data(1_000, until=UNTIL, shape="flat")
