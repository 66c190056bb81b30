"""Features of an entity from the rule hits and rings found for it (label-free): hit counts and
severities, one count per rule, ring counts per ring type and the largest ring."""

from __future__ import annotations

import pandas as pd


def rule_features(hits: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Per entity: hit count, severity sum and max, and one count column per rule."""
    h = hits[hits["entity_type"] == entity_type] if len(hits) else hits
    out = pd.DataFrame(index=ids)
    if len(h) == 0:
        out["rule_hits"] = 0.0
        out["rule_severity_max"] = 0.0
        out["rule_severity_sum"] = 0.0
        return out
    g = h.groupby("entity_id")["severity"]
    out["rule_hits"] = g.size().reindex(ids).fillna(0).to_numpy(dtype=float)
    out["rule_severity_max"] = g.max().reindex(ids).fillna(0).to_numpy(dtype=float)
    out["rule_severity_sum"] = g.sum().reindex(ids).fillna(0).to_numpy(dtype=float)
    per_rule = h.groupby(["entity_id", "rule_id"]).size().unstack(fill_value=0)
    per_rule.columns = [f"rule_{c}" for c in per_rule.columns]
    return out.join(per_rule.reindex(ids).fillna(0).astype(float))


def ring_features(members: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Label-free ring features: how many rings, the largest, and per ring type."""
    out = pd.DataFrame(index=ids)
    m = members[members["entity_type"] == entity_type] if len(members) else members
    out["rings"] = 0.0
    if len(m) == 0:
        return out
    out["rings"] = m.groupby("entity_id").size().reindex(ids).fillna(0).to_numpy(dtype=float)
    size = members.groupby("ring_id").size()
    out["ring_size_max"] = (
        m.assign(size=m["ring_id"].map(size))
        .groupby("entity_id")["size"]
        .max()
        .reindex(ids)
        .fillna(0)
        .to_numpy(dtype=float)
    )
    for rtype, part in m.groupby("ring_type"):
        out[f"ring_{rtype}"] = part.groupby("entity_id").size().reindex(ids).fillna(0).to_numpy(dtype=float)
    return out


def with_signals(features: pd.DataFrame, hits: pd.DataFrame, members: pd.DataFrame, entity_type: str) -> pd.DataFrame:
    """An entity type's model matrix: its features, then its rule and ring features."""
    ids = features.index
    return features.join(rule_features(hits, entity_type, ids)).join(ring_features(members, entity_type, ids))
