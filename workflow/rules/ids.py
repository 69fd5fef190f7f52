"""Int64 ids of any size as small integer codes, so memory follows the number of rows, not the ids' range."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

INT64_MAX = int(np.iinfo(np.int64).max)


@dataclass(frozen=True)
class Coding:
    """How int64 ids of one kind became codes 0 <= code < size, equal exactly when the ids are."""

    size: int
    lowest: int  # code = id - lowest, when `uniques` is None
    uniques: np.ndarray | None  # otherwise id = uniques[code]

    def ids(self, codes: np.ndarray) -> np.ndarray:
        """Return the ids the codes stand for."""
        return codes + self.lowest if self.uniques is None else self.uniques[codes]


def codes(*arrays: np.ndarray) -> tuple[list[np.ndarray], Coding]:
    """Return the int64 ids of the arrays as codes, in the ids' order, below a size proportional to their number.

    Dense ids (spanning at most about twice their number) become id - lowest, which costs nothing;
    others, any int64 ids (negative, huge, sparse), are numbered by hashing (pd.factorize).
    """
    arrays = tuple(np.asarray(ids, dtype=np.int64) for ids in arrays)
    present = [ids for ids in arrays if len(ids)]
    if not present:
        return [ids.copy() for ids in arrays], Coding(0, 0, None)  # new arrays, as below: callers may write on them
    lowest, highest = min(int(ids.min()) for ids in present), max(int(ids.max()) for ids in present)
    n_values = sum(len(ids) for ids in arrays)
    if highest - lowest < 2 * n_values + 1024:  # Python ints: no overflow, whatever the ids
        return [ids - lowest for ids in arrays], Coding(highest - lowest + 1, lowest, None)
    codes, uniques = pd.factorize(np.concatenate(arrays), sort=True)
    parts = np.split(codes.astype(np.int64), np.cumsum([len(ids) for ids in arrays])[:-1])
    return parts, Coding(len(uniques), 0, np.asarray(uniques, dtype=np.int64))


def int64_ids(ids: pd.Series) -> np.ndarray:
    """Return a column of ids as int64 (missing ones as 0), without a copy when it is int64 already."""
    return ids.to_numpy() if ids.dtype == np.int64 else ids.to_numpy(dtype="int64", na_value=0)


def positions(known: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Return each id's position in `known` (distinct int64 ids), or -1 for the ids not in it."""
    known, ids = np.asarray(known, dtype=np.int64), np.asarray(ids, dtype=np.int64)
    if not len(known):
        return np.full(len(ids), -1, dtype=np.int64)
    lowest, highest = int(known.min()), int(known.max())
    if highest - lowest >= 2 * len(known) + 1024:  # sparse ids: a hash lookup, exact for any int64
        return pd.Index(known).get_indexer(ids).astype(np.int64)
    # Dense ids: a table over their range (at most about twice their number), faster than hashing.
    table = np.full(highest - lowest + 1, -1, dtype=np.int64)
    table[known - lowest] = np.arange(len(known))
    inside = (ids >= lowest) & (ids <= highest)
    if inside.all():
        index = ids - lowest
        return table.take(index, out=index, mode="clip")  # in place: one array of the ids' size, not two
    positions = np.full(len(ids), -1, dtype=np.int64)
    positions[inside] = table[ids[inside] - lowest]
    return positions


def combine(codes: np.ndarray, size: int, other: np.ndarray, width: int, *, overwrite: bool = False) -> np.ndarray:
    """Return one int64 key per (code, other) pair, codes below `size` and other in [0, width): code * width + other.

    With `overwrite`, the keys are written over `codes` (int64), which the caller no longer needs.
    """
    width = max(width, 1)
    if size * width > INT64_MAX:  # codes grow with the rows: unreachable for data that fits in memory
        raise OverflowError(f"{size:,} x {width:,} pair keys do not fit in 64 bits")
    if overwrite and codes.dtype == np.int64:
        keys = np.multiply(codes, width, out=codes)
    else:
        keys = codes * width
    keys += other
    return keys
