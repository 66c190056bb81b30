"""Vectorised group-by kernels over integer codes (graph/codes.py `ColumnCodes`).

Counts and sums of 0/1 flags are np.bincount; sums, means, maxima and medians of real values go
through pandas on categorical codes, which runs the same kernels as a group-by on the ids (same
values to the bit); distinct counts are distinct packed int64 keys (code * size + other code).
Codes of -1 (missing ids) are ignored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.codes import unique_sorted


def pack(parts: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One int64 key per row from several non-negative int columns, each below its size;
    keys order like the columns' tuples and decode with divmod."""
    total = 1
    for _, size in parts:
        total *= max(int(size), 1)
    if total >= 2**63:
        raise OverflowError("packed key does not fit in int64")
    key = np.zeros(len(parts[0][0]), dtype=np.int64)
    for values, size in parts:
        key *= max(int(size), 1)
        key += values
    return key


def count_rows(codes: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows per entity (float64, 0 for entities without rows)."""
    c = codes if mask is None else codes[mask]
    return np.bincount(c[c >= 0], minlength=n).astype(np.float64)


def flag_sum(codes: np.ndarray, n: int, flags: np.ndarray) -> np.ndarray:
    """Sum of a 0/1 flag per entity (exact: integers)."""
    return count_rows(codes, n, np.asarray(flags, dtype=bool))


def agg(codes: np.ndarray, n: int, values: np.ndarray, how: str, mask: np.ndarray | None = None) -> np.ndarray:
    """pandas group-by aggregate of real `values` per entity (NaN skipped), 0 for entities
    without a value. Categorical keys: the same kernels, row order and results as grouping by
    the id strings, without hashing them."""
    keep = codes >= 0 if mask is None else mask & (codes >= 0)
    c, v = codes[keep], values[keep]
    if len(c) == 0:
        return np.zeros(n)
    keys = pd.Categorical.from_codes(c, categories=pd.RangeIndex(n))
    out = pd.Series(v, copy=False).groupby(keys, observed=False).agg(how).to_numpy(dtype=np.float64)
    return np.where(np.isnan(out), 0.0, out)


def int_or_float(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """A per-entity integer result as the old `groupby(...).reindex(ids).fillna(0)` gave it:
    int64 when every entity had a group, float64 (0 for the others) otherwise."""
    if present.all():
        return values.astype(np.int64)
    return np.where(present, values, 0).astype(np.float64)


def spread(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """`values` of distinct entity codes `groups`, spread over entities 0..n-1 (see int_or_float)."""
    out = np.zeros(n, dtype=np.int64)
    out[groups] = values
    present = np.zeros(n, dtype=bool)
    present[groups] = True
    return int_or_float(out, present)


def group_max(groups: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Largest value per entity (int64, 0 for entities without one)."""
    out = np.zeros(n, dtype=np.int64)
    np.maximum.at(out, groups, values)
    return out


def unique_counts(a: np.ndarray, presorted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and how often each occurs."""
    s = a if presorted else np.sort(a)
    if len(s) == 0:
        return s, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    return s[starts], np.diff(np.append(starts, len(s)))


def isin_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """values in sorted_set (sorted, distinct), elementwise."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    found: np.ndarray = sorted_set[pos] == values
    return found


def distinct_per_group(key: np.ndarray, per: int) -> tuple[np.ndarray, np.ndarray]:
    """(group, distinct count) over unique packed keys: group = key // per."""
    return unique_counts(unique_sorted(key) // per, presorted=True)


def pair_counts(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (a, b) with their row counts: (a, b, count)."""
    keys, counts = unique_counts(pack([(a, na), (b, max(nb, 1))]))
    ga, gb = np.divmod(keys, max(nb, 1))
    return ga, gb, counts
