"""Features of an entity from the rule hits and rings found for it (label-free): hit counts and
severities, one count per rule, ring counts per ring type and the largest ring.

Each hit or membership is placed by its entity's row in `ids` once (one hash lookup per row), and
every column is then a count, sum or maximum over those rows' positions: at 1M entities this
avoids a string reindex per column."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rows_of(ids: pd.Index, entity_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(each row's position in `ids`, which rows have one): rows of entities outside `ids` drop out."""
    pos = ids.get_indexer(entity_ids)
    keep = pos >= 0
    return pos[keep], keep


def _max_at(pos: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per position, the largest value (0.0 where no row lands)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, pos, values)
    out[np.isneginf(out)] = 0.0
    return out


def _counts_by(pos: np.ndarray, keep: np.ndarray, labels: pd.Series, n: int, prefix: str) -> pd.DataFrame:
    """One float count column per distinct label of all rows (sorted), named `prefix` + label,
    counting the kept rows at their positions."""
    codes, names = pd.factorize(labels, sort=True)
    codes = codes[keep]
    known = codes >= 0  # a missing label counts in no column
    k = len(names)
    counts = np.bincount(pos[known] * k + codes[known], minlength=n * k).reshape(n, k)
    return pd.DataFrame(counts.astype(float), columns=[f"{prefix}{c}" for c in names])


def rule_features(hits: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Per entity: hit count, severity sum and max, and one count column per rule."""
    # only the columns used: the hits carry their evidence text, slow to copy row by row
    h = hits.loc[hits["entity_type"] == entity_type, ["entity_id", "severity", "rule_id"]] if len(hits) else hits
    out = pd.DataFrame(index=ids)
    if len(h) == 0:
        out["rule_hits"] = 0.0
        out["rule_severity_max"] = 0.0
        out["rule_severity_sum"] = 0.0
        return out
    n = len(ids)
    pos, keep = rows_of(ids, h["entity_id"])
    severity = h["severity"].to_numpy(dtype=float)[keep]
    out["rule_hits"] = np.bincount(pos, minlength=n).astype(float)
    out["rule_severity_max"] = _max_at(pos, severity, n)
    out["rule_severity_sum"] = np.bincount(pos, weights=severity, minlength=n)
    return out.join(_counts_by(pos, keep, h["rule_id"], n, "rule_").set_axis(ids))


def ring_features(members: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Label-free ring features: how many rings, the largest, and per ring type."""
    out = pd.DataFrame(index=ids)
    m = members[members["entity_type"] == entity_type] if len(members) else members
    out["rings"] = 0.0
    if len(m) == 0:
        return out
    n = len(ids)
    pos, keep = rows_of(ids, m["entity_id"])
    size = m["ring_id"].map(members.groupby("ring_id").size()).to_numpy(dtype=float)[keep]
    out["rings"] = np.bincount(pos, minlength=n).astype(float)
    out["ring_size_max"] = _max_at(pos, size, n)
    return out.join(_counts_by(pos, keep, m["ring_type"], n, "ring_").set_axis(ids))


def with_signals(features: pd.DataFrame, hits: pd.DataFrame, members: pd.DataFrame, entity_type: str) -> pd.DataFrame:
    """An entity type's model matrix: its features, then its rule and ring features."""
    ids = features.index
    return features.join(rule_features(hits, entity_type, ids)).join(ring_features(members, entity_type, ids))
