"""Drift monitoring: population stability (PSI) of the score and of every feature (CSI), grade
migration between runs and rule hit-rate changes.

A *profile* holds, per column, the bins of a reference population and its counts in them:
right-closed bins between the reference's decile edges (`PSI_BINS`; edges that coincide merge,
so a column with few values gets one bin per value), plus a bin for missing values; a
categorical column gets one bin per reference category, one for anything new and one for
missing. PSI compares another population's counts in the same bins:

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

with e, a the bins' shares (each at least `PSI_FLOOR`, so an empty bin counts, not divides by
zero). It equals Jeffreys' divergence, which optbinning's scorecard monitoring uses
(tests/scoring/test_monitoring.py checks the two agree to 1e-6). Bands: below 0.1 stable, up
to 0.25 watch, above 0.25 alert. Everything is vectorised per column: one count of the rows at or
below each edge (a `searchsorted` and a `bincount` when a profile has many edges).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

PSI_BINS = 10  # decile bins of the reference population
PSI_WATCH = 0.1  # the usual bands: < 0.1 stable, 0.1 .. 0.25 watch, >= 0.25 alert
PSI_ALERT = 0.25
PSI_FLOOR = 1e-4  # share given to an empty bin
FEW_EDGES = 16  # up to this many bin edges, a column is counted edge by edge (one pass each)
GRADES = ("A", "B", "C", "D")

ColumnProfile = dict[str, Any]  # {"kind": "numeric", "edges": [...], "counts": [...]} or categorical
Profile = dict[str, ColumnProfile]


def band(psi: float | None) -> str:
    """stable | watch | alert (n/a when nothing could be compared)."""
    if psi is None or not np.isfinite(psi):
        return "n/a"
    return "alert" if psi >= PSI_ALERT else "watch" if psi >= PSI_WATCH else "stable"


def psi(expected: ArrayLike, actual: ArrayLike) -> float:
    """PSI between two count (or share) vectors over the same bins."""
    e, a = _shares(expected), _shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: ArrayLike) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    share = c / total if total > 0 else np.full(len(c), 1.0 / max(len(c), 1))
    floored: np.ndarray = np.maximum(share, PSI_FLOOR)
    return floored


def shares(counts: ArrayLike) -> np.ndarray:
    """The bin shares PSI uses (empty bins floored at PSI_FLOOR), for comparisons."""
    return _shares(counts)


def column_profile(values: pd.Series) -> ColumnProfile:
    """The reference bins of one column and its counts in them."""
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values.dtype):
        as_text = values.astype(object).where(values.notna(), None)
        known = sorted({str(v) for v in as_text.dropna().unique()})
        profile: ColumnProfile = {"kind": "categorical", "categories": known}
        profile["counts"] = column_counts(profile, values).tolist()
        return profile
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = x[np.isfinite(x)]
    edges = (
        np.unique(np.quantile(finite, np.arange(1, PSI_BINS) / PSI_BINS)) if len(finite) else np.empty(0, np.float64)
    )
    profile = {"kind": "numeric", "edges": edges.tolist()}
    profile["counts"] = column_counts(profile, values).tolist()
    return profile


def column_counts(profile: ColumnProfile, values: pd.Series) -> np.ndarray:
    """Counts of `values` in the profile's bins (numeric: len(edges) + 1 bins and a missing bin;
    categorical: one per category, one for new ones, one missing)."""
    if profile["kind"] == "categorical":
        categories = profile["categories"]
        text = values.astype(object)
        missing = text.isna().to_numpy()
        codes = pd.Index(categories, dtype=object).get_indexer(text.astype(str).to_numpy(dtype=object))
        codes = np.where(codes < 0, len(categories), codes)
        codes = np.where(missing, len(categories) + 1, codes)
        return np.bincount(codes, minlength=len(categories) + 2)
    edges = np.asarray(profile["edges"], dtype=np.float64)
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if len(edges) <= FEW_EDGES:  # a profile's deciles: a count per edge beats placing every row
        missing = int(np.count_nonzero(np.isnan(x)))
        at_most = [np.count_nonzero(x <= e) for e in edges]  # right-closed: (e_{i-1}, e_i]
        return np.diff(np.array([0, *at_most, len(x) - missing, len(x)], dtype=np.int64))
    bins = np.searchsorted(edges, x, side="left")
    bins = np.where(np.isnan(x), len(edges) + 1, bins)
    return np.bincount(bins, minlength=len(edges) + 2)


def frame_profile(frame: pd.DataFrame) -> Profile:
    """Every column's profile."""
    return {str(c): column_profile(frame[c]) for c in frame.columns}


def frame_psi(reference: Profile, frame: pd.DataFrame) -> dict[str, float]:
    """PSI of each column of `frame` the reference profiles, against it."""
    out = {}
    for name, profile in reference.items():
        if name in frame.columns:
            out[name] = psi(np.asarray(profile["counts"]), column_counts(profile, frame[name]))
    return out


def grade_migration(previous: pd.DataFrame, current: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Entities by grade before (rows) and now (columns), joined on (entity_type, entity_id);
    `new` / `gone` for entities in only one of the two."""
    # each (type, id) as one integer over both runs: the join and the counts on integers
    keys = pd.concat([previous[["entity_type", "entity_id"]], current[["entity_type", "entity_id"]]])
    types = pd.factorize(keys["entity_type"].astype(str), use_na_sentinel=False)[0].astype(np.int64)
    ids = pd.factorize(keys["entity_id"].astype(str), use_na_sentinel=False)[0].astype(np.int64)
    key = types * (int(ids.max(initial=0)) + 1) + ids
    before = pd.DataFrame({"key": key[: len(previous)], "grade_before": previous["grade"].to_numpy()})
    after = pd.DataFrame({"key": key[len(previous) :], "grade_after": current["grade"].to_numpy()})
    both = before.merge(after, on="key", how="outer")
    rows = both["grade_before"].astype(object).where(both["grade_before"].notna(), "new")
    cols = both["grade_after"].astype(object).where(both["grade_after"].notna(), "gone")
    row_codes, row_names = pd.factorize(rows)
    col_codes, col_names = pd.factorize(cols)
    counts = np.bincount(row_codes * len(col_names) + col_codes, minlength=len(row_names) * len(col_names))
    table = pd.DataFrame(counts.reshape(len(row_names), len(col_names)), index=row_names, columns=col_names)
    order_rows = [g for g in (*GRADES, "new") if g in table.index]
    order_cols = [g for g in (*GRADES, "gone") if g in table.columns]
    table = table.reindex(index=order_rows, columns=order_cols, fill_value=0)
    return {str(r): {str(c): int(v) for c, v in row.items()} for r, row in table.iterrows()}


def rule_hit_rates(hits: pd.DataFrame, entities: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per rule: its entity type, the entities it hit and their share of the type."""
    if hits.empty:
        return {}
    hit = hits[["rule_id", "entity_type", "entity_id"]].drop_duplicates().groupby(["rule_id", "entity_type"]).size()
    return {
        str(rule): {
            "entity_type": str(t),
            "entities": int(n),
            "rate": float(n) / entities[str(t)] if entities.get(str(t)) else 0.0,
        }
        for (rule, t), n in hit.items()
    }


def rule_changes(previous: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each rule's hit rate before and now, largest change first."""
    out = []
    for rule in sorted(set(previous) | set(current)):
        before, now = previous.get(rule, {}), current.get(rule, {})
        rate_before, rate_now = float(before.get("rate", 0.0)), float(now.get("rate", 0.0))
        out.append(
            {
                "rule_id": rule,
                "entity_type": now.get("entity_type") or before.get("entity_type"),
                "rate_before": rate_before,
                "rate_now": rate_now,
                "change": rate_now - rate_before,
            }
        )
    return sorted(out, key=lambda r: -abs(r["change"]))
