"""Memory follows the rows, not the ids: the graph on large, sparse ids in a process with 1 GB of address space."""

from __future__ import annotations

import datetime as dt
import os
import resource
import subprocess
import sys

import numpy as np
import pandas as pd
from conftest import REPO, Databases
from reference import brute_force_recommendations

from workflow.io import load, postgres
from workflow.pipelines.courses import demo

DAY = dt.date(2026, 11, 20)
# Importing luigi, pandas, pyarrow, SQLAlchemy and psycopg2 maps ~440 MB of address space; the
# 8,000 ratings need little more. An array sized by the range of the ids would need 22 GiB.
ADDRESS_SPACE = 1 << 30


def large_id_source(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return 60 courses, most with ids near 3e9 and a few old small ones, and 8,000 valid ratings of them.

    Users have ids near 2**62 and negative ones, so that `user * width + course` keys would overflow.
    """
    rng = np.random.default_rng(seed)
    course_ids = np.concatenate([[1, 2, 3], 3_000_000_000 + rng.choice(1_000_000, 57, replace=False)])
    courses = pd.DataFrame(
        {
            "course_id": course_ids,
            "title": [f"course {i}" for i in range(len(course_ids))],
            "description": "",
            "programming_language": rng.choice(["python", "r", "sql"], len(course_ids)),
        }
    )
    user_ids = np.concatenate([2**62 + rng.choice(10**12, 700, replace=False), -rng.choice(10**9, 300, replace=False)])
    pairs = pd.DataFrame({"user_id": rng.choice(user_ids, 12_000), "course_id": rng.choice(course_ids, 12_000)})
    ratings = pairs.drop_duplicates().head(8_000).reset_index(drop=True)
    ratings = ratings.assign(rating=rng.integers(1, 6, len(ratings)))
    assert len(ratings) == 8_000
    return courses, ratings


def replace_source_tables_with_bigint_ids(url: str, courses: pd.DataFrame, ratings: pd.DataFrame) -> None:
    """Recreate the source tables with bigint ids (the demo schema's are integer) holding exactly these rows."""
    demo.replace_source_tables(url, courses.head(0), ratings.head(0))
    with postgres.connect(url) as connection:
        connection.exec_driver_sql(
            "ALTER TABLE courses ALTER course_id TYPE bigint;"
            " ALTER TABLE rating ALTER user_id TYPE bigint, ALTER course_id TYPE bigint"
        )
        load.copy_in(connection, "courses", courses)
        load.copy_in(connection, "rating", ratings)


def limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_the_graph_runs_on_large_sparse_ids_within_1_gb_of_address_space(clean: Databases) -> None:
    courses, ratings = large_id_source()
    replace_source_tables_with_bigint_ids(clean.source, courses, ratings)
    luigi = os.path.join(os.path.dirname(sys.executable), "luigi")
    env = {**os.environ, "WORKFLOW_OUTPUT_DIR": str(clean.output), "SOURCE_DATABASE_URL": clean.source,
           "DWH_DATABASE_URL": clean.warehouse}  # fmt: skip
    result = subprocess.run(
        [luigi, "--module", "workflow", "RecommendationsTask", "--date", f"{DAY}", "--local-scheduler",
         "--workers", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300, preexec_fn=limit_address_space,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    loaded = pd.DataFrame(
        clean.warehouse_rows(
            "SELECT user_id, course_id, rating, rank FROM daily_recommendations"
            " WHERE recommendation_date = :date ORDER BY user_id, rank",
            date=DAY,
        ),
        columns=["user_id", "course_id", "rating", "rank"],
    )
    expected = brute_force_recommendations(ratings, courses[["course_id", "programming_language"]], per_user=3)
    assert len(loaded) > 2_000
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False)
