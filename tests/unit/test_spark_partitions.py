"""The Spark engine's shuffle partitions when `[spark] shuffle_partitions = 0`: one per 400,000 rows of a step's
largest input, 10 to 1,000."""

from __future__ import annotations

import pytest

from workflow.engines.spark_settings import partitions_for


@pytest.mark.parametrize(
    ("rows", "partitions"),
    [
        (0, 10),
        (1_000, 10),
        (4_000_000, 10),
        (4_000_001, 11),
        (20_000_000, 50),
        (100_000_000, 250),
        (400_000_000, 1_000),
        (2_000_000_000, 1_000),
    ],
)
def test_the_partitions_follow_the_rows_between_10_and_1000(rows: int, partitions: int) -> None:
    assert partitions_for(rows) == partitions
