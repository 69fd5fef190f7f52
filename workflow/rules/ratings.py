"""Ratings of items by users, validated: the rules both pipelines' rating tables follow, pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workflow.rules.ids import codes, combine, int64_ids, positions
from workflow.rules.quality import split_by_checks

# The extract's name of a rating's timestamp (UTC), whatever the source calls it.
RATED_AT = "rated_at"
# Rows set aside because a newer copy replaced them, not because they break a rule: they do not count
# toward [rules] max_invalid_share.
UNCOUNTED_REASONS = ["superseded"]


@dataclass(frozen=True)
class RatingRoles:
    """Which of a pipeline's columns play user and item in its ratings, and the names of its averages per item."""

    user: str
    item: str
    unknown_item: str  # the reason of a rating of an item that does not exist: unknown_course, unknown_film
    average: str
    count: str

    @property
    def reasons(self) -> list[str]:
        """Return the reasons a rating is set aside, in the order validate_ratings checks them."""
        return ["missing_value", "missing_timestamp", self.unknown_item, "rating_out_of_range", "superseded",
                "duplicate_pair"]  # fmt: skip


def average_ratings(ratings: pd.DataFrame, roles: RatingRoles) -> pd.DataFrame:
    """Return each rated item's mean rating and number of valid ratings, by item id, under the roles' names."""
    grouped = ratings.groupby(roles.item, sort=True)["rating"]
    averages = pd.DataFrame({roles.average: grouped.mean(), roles.count: grouped.size().astype("int64")})
    return averages.reset_index().astype({roles.item: "int64"})


def utc_stamps(stamps: pd.Series) -> np.ndarray:
    """Return timestamps as int64 counts since the epoch in UTC (NaT the smallest int64), a naive one read as UTC."""
    if pd.api.types.is_datetime64_any_dtype(stamps.dtype):
        return stamps.array.asi8  # a view: a datetime column holds exactly these numbers
    return pd.to_datetime(stamps, utc=True).array.asi8


def validate_ratings(
    ratings: pd.DataFrame,
    item_ids: pd.Series | pd.DataFrame,
    min_rating: float,
    max_rating: float,
    roles: RatingRoles,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the valid ratings (with their `rated_at` when the frame has it), and the others with the first rule
    they break as `reason`.

    The rules, checked in this order: user, item and rating are present (NaN counts as missing;
    `missing_value`); `rated_at` is present when the frame has that column (`missing_timestamp`);
    the item exists (the roles' `unknown_item`); min_rating <= rating <= max_rating
    (`rating_out_of_range`). Among the rows that pass them, a (user, item) pair held by several
    copies keeps only the copy with the strictly latest `rated_at`: older copies are `superseded`,
    and copies sharing the latest stamp, or every copy when there is no `rated_at`, are set aside
    as `duplicate_pair`, since none of them can be trusted. Ids may be any int64, or float64 or
    nullable Int64 with missing values.
    """
    user, item, unknown_item, rated_at = roles.user, roles.item, roles.unknown_item, RATED_AT
    columns = [user, item, "rating"]
    stamped = rated_at in ratings.columns
    ratings = ratings[columns + [rated_at] * stamped]
    missing = np.zeros(len(ratings), dtype=bool)
    for column in columns:  # column by column: a frame of flags for all three would be built first
        missing |= ratings[column].isna().to_numpy()
    no_stamp = ratings[rated_at].isna().to_numpy() if stamped else np.zeros(len(ratings), dtype=bool)
    known_items = np.unique(np.asarray(item_ids, dtype=np.int64))
    item_position = positions(known_items, int64_ids(ratings[item]))
    rating = ratings["rating"].to_numpy(dtype="float64", na_value=np.nan)
    out_of_range = (rating < min_rating) | (rating > max_rating)
    unknown = item_position < 0
    valid_so_far = ~(missing | no_stamp | unknown | out_of_range)
    everything_so_far = valid_so_far.all()  # then the columns are used as they are, not copied through the mask
    user_ids = int64_ids(ratings[user])
    (users,), coding = codes(user_ids if everything_so_far else user_ids[valid_so_far])
    del user_ids
    items = item_position if everything_so_far else item_position[valid_so_far]
    pair_keys = combine(users, coding.size, items, len(known_items), overwrite=True)
    del users, items, item_position
    stamps = utc_stamps(ratings[rated_at]) if stamped else None
    superseded, duplicate = np.zeros(len(ratings), dtype=bool), np.zeros(len(ratings), dtype=bool)
    superseded[valid_so_far], duplicate[valid_so_far] = _repeated_copies(
        pair_keys, None if stamps is None else lambda rows: stamps[np.flatnonzero(valid_so_far)[rows]]
    )
    del pair_keys
    valid, quarantined = split_by_checks(
        ratings,
        [
            ("missing_value", missing),
            ("missing_timestamp", no_stamp),
            (unknown_item, unknown),
            ("rating_out_of_range", out_of_range),
            ("superseded", superseded),
            ("duplicate_pair", duplicate),
        ],
        kept_columns=columns + [rated_at] * stamped,  # the stamp tells the evaluation which rating is newest
    )
    valid = valid.astype({user: "int64", item: "int64", "rating": "float64"})
    return valid.reset_index(drop=True), quarantined


def _repeated_copies(
    keys: np.ndarray, stamps_of: Callable[[np.ndarray], np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return which rows of repeated keys are superseded (older than the key's latest stamp) and which are duplicates.

    `stamps_of(rows)` returns the stamps of those rows (asked for the repeated ones only). Duplicates
    are the rows sharing their key's latest stamp with another row, or, without stamps, every row of
    a repeated key.
    """
    # Sort once and look for equal neighbours: much faster than hashing millions of mostly unique keys.
    ordered = np.sort(keys)
    repeated_keys = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    repeated = np.zeros(len(keys), dtype=bool)
    if len(repeated_keys):  # one hash table, looked up by slices: at once, it builds arrays of the keys' size
        table = pd.Index(repeated_keys)
        for start in range(0, len(keys), 1 << 20):
            repeated[start : start + (1 << 20)] = table.get_indexer(keys[start : start + (1 << 20)]) >= 0
    superseded = np.zeros(len(keys), dtype=bool)
    if stamps_of is None or not repeated.any():
        return superseded, repeated
    rows = np.flatnonzero(repeated)  # usually few: the grouping below costs nothing on millions of ratings
    copies = pd.DataFrame({"key": keys[rows], "stamp": stamps_of(rows)})
    latest = copies["stamp"].to_numpy() == copies.groupby("key")["stamp"].transform("max").to_numpy()
    n_latest = pd.Series(latest).groupby(copies["key"].to_numpy()).transform("sum").to_numpy()
    superseded[rows] = ~latest
    duplicate = np.zeros(len(keys), dtype=bool)
    duplicate[rows] = latest & (n_latest > 1)
    return superseded, duplicate
