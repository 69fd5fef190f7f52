"""Data quality: rows split from the ones that break checks, counted by reason, and the invalid-share limit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workflow.errors import InvalidSourceDataError


def split_by_checks(
    frame: pd.DataFrame, checks: list[tuple[str, np.ndarray]], kept_columns: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a frame into the rows that pass every check (with kept_columns only, when given) and the others.

    The others get the first check they fail as `reason`. Both are numbered from 0.
    """
    first_failed = np.zeros(len(frame), dtype=np.int8)  # 0: passed every check, i: failed check i first
    for number, (_, failed) in enumerate(checks, start=1):
        first_failed[(first_failed == 0) & failed] = number
    failed_any = first_failed > 0
    names = np.array([name for name, _ in checks], dtype=object)
    quarantined = frame[failed_any].assign(reason=names[first_failed[failed_any] - 1])
    kept = frame if kept_columns is None else frame[kept_columns]
    if failed_any.any():  # column by column: a frame-wide take would first build an int64 index of the rows kept
        passed = ~failed_any
        kept = pd.DataFrame({name: kept[name].array[passed] for name in kept.columns}, copy=False)
    else:  # nothing to set aside: the frame itself (a view), not a copy of millions of rows through a mask
        kept = kept.reset_index(drop=True)
    return kept, quarantined.reset_index(drop=True)


def reason_counts(quarantined: pd.DataFrame, reasons: list[str]) -> dict[str, int]:
    """Return how many rows were set aside for each reason, zeros included."""
    counts = quarantined["reason"].value_counts()
    return {reason: int(counts.get(reason, 0)) for reason in reasons}


def check_invalid_share(
    table: str, n_rows: int, quarantined: pd.DataFrame, max_share: float, uncounted: list[str] | tuple[str, ...] = ()
) -> None:
    """Raise InvalidSourceDataError naming the table, the counts per reason and a few rows when too many are invalid."""
    counts = quarantined["reason"].value_counts(sort=False)
    examples = quarantined.groupby("reason", sort=True).head(1).to_dict("records")
    counts = {str(reason): int(count) for reason, count in counts.items()}
    check_reason_counts(table, n_rows, counts, examples, max_share=max_share, uncounted=uncounted)


def check_reason_counts(
    table: str,
    n_rows: int,
    counts: dict[str, int],
    examples: list[dict],
    *,
    max_share: float,
    uncounted: list[str] | tuple[str, ...] = (),
) -> None:
    """Raise InvalidSourceDataError naming the table, the counts per reason and a few rows when too many are invalid.

    `counts` holds the rows set aside per reason (ties are shown in its order), `examples` a row of
    each. Rows set aside for one of uncounted (older copies of a re-rated pair) are not invalid: they
    count neither toward the share nor in the message's counts, which mentions them apart.
    """
    invalid = {reason: count for reason, count in counts.items() if reason not in uncounted and count}
    n_invalid = sum(invalid.values())
    if n_rows == 0 or n_invalid / n_rows <= max_share:
        return
    ordered = sorted(invalid.items(), key=lambda item: -item[1])  # ties keep the order of `counts`
    shown = sorted((row for row in examples if row["reason"] in invalid), key=lambda row: row["reason"])[:3]
    raise InvalidSourceDataError(
        f"{table}: {n_invalid:,} of {n_rows:,} rows ({n_invalid / n_rows:.2%}) break the rules, "
        f"more than the {max_share:.2%} allowed ([rules] max_invalid_share): "
        + ", ".join(f"{count:,} {reason}" for reason, count in ordered)
        + "".join(f" (and {counts[reason]:,} {reason}, not counted)" for reason in uncounted if counts.get(reason))
        + f"; for example {shown}"
    )
