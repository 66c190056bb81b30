"""What every ring type shares: result tables, data helpers, ring ids, and scoring and assembly.

Scores. ring_score is a weighted mean of 0..1 components: density, size, money at stake,
type-specific evidence strength (for collusion a FRAUDAR-like camouflage-resistant density whose
event weights are 1/log(event size + c)) and the share of members with label 1. The label share
only ranks rings for investigators; models must not use ring_score as a feature for the entity's
own label (it would see that label). Use `ring_score_without_labels` for model features: it is
the same score with the label weight removed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graph.dataset import Dataset
from riskgraph.settings import RingSettings

MEMBER_COLUMNS = ["ring_id", "ring_type", "ring_score", "entity_type", "entity_id"]
RING_COLUMNS = [
    "ring_id",
    "ring_type",
    "ring_score",
    "ring_score_without_labels",
    "size",
    "density",
    "strength",
    "money_at_stake",
    "n_persons",
    "n_employers",
    "n_clinics",
    "n_pharmacies",
    "n_agencies",
    "label_share",
    "why",
]
EDGE_COLUMNS = ["ring_id", "source_type", "source_id", "target_type", "target_id", "relation", "count", "weight"]
SEP = "\x1f"


@dataclass
class RingResult:
    """Detected rings: one row per member, one row per ring, and evidence edges."""

    members: pd.DataFrame
    rings: pd.DataFrame
    edges: pd.DataFrame = field(repr=False)

    def evidence(self, ring_id: str) -> dict[str, Any]:
        """The ring's evidence subgraph: nodes (members and identifiers) and counted edges."""
        row = self.rings[self.rings["ring_id"] == ring_id]
        if row.empty:
            raise KeyError(f"no ring {ring_id!r}")
        r = row.iloc[0]
        mem = self.members[self.members["ring_id"] == ring_id]
        edges = self.edges[self.edges["ring_id"] == ring_id]
        nodes = [
            {"entity_type": t, "entity_id": i, "member": True} for t, i in zip(mem["entity_type"], mem["entity_id"])
        ]
        member_keys = {(n["entity_type"], n["entity_id"]) for n in nodes}
        extra = pd.concat(
            [
                edges[["source_type", "source_id"]].set_axis(["t", "i"], axis=1),
                edges[["target_type", "target_id"]].set_axis(["t", "i"], axis=1),
            ]
        )
        extra = extra.drop_duplicates().sort_values(["t", "i"])
        nodes += [
            {"entity_type": t, "entity_id": i, "member": False}
            for t, i in zip(extra["t"], extra["i"])
            if (t, i) not in member_keys
        ]
        return {
            "ring_id": ring_id,
            "ring_type": r["ring_type"],
            "ring_score": float(r["ring_score"]),
            "why": r["why"],
            "nodes": nodes,
            "edges": edges.drop(columns="ring_id").to_dict("records"),
        }


@dataclass
class Found:
    """Rings of one type before scoring: local ring keys, members, facts and evidence edges."""

    members: pd.DataFrame  # ring (local int), ring_type, entity_type, entity_id
    info: pd.DataFrame  # ring, ring_type, strength, money_at_stake, why
    edges: pd.DataFrame  # ring, source_type, source_id, target_type, target_id, relation, count, weight


def empty_result() -> RingResult:
    members = pd.DataFrame({c: pd.Series([], dtype="float64" if c == "ring_score" else "str") for c in MEMBER_COLUMNS})
    rings = pd.DataFrame(
        {c: pd.Series([], dtype="str" if c in ("ring_id", "ring_type", "why") else "float64") for c in RING_COLUMNS}
    )
    edges = pd.DataFrame(
        {c: pd.Series([], dtype="float64" if c in ("count", "weight") else "str") for c in EDGE_COLUMNS}
    )
    return RingResult(members, rings, edges)


# ---------------------------------------------------------------------------------------------
# Data helpers


def claimed_money(df: pd.DataFrame) -> np.ndarray:
    """Claimed amount, falling back to the amount when no claim is recorded."""
    claimed = df["claimed"] if "claimed" in df else pd.Series(np.nan, index=df.index)
    amount = df["amount"] if "amount" in df else pd.Series(np.nan, index=df.index)
    return np.asarray(claimed.fillna(amount).fillna(0.0), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Ring ids


def ring_keys(members: pd.DataFrame) -> pd.Series:
    """Deterministic ring id per local ring: type + hash of the sorted member list."""
    keyed = members.assign(key=members["entity_type"] + ":" + members["entity_id"])
    keyed = keyed.sort_values(["ring", "key"], kind="mergesort")
    joined = keyed.groupby("ring", sort=True)["key"].agg("\n".join)
    rtype = members.groupby("ring", sort=True)["ring_type"].first()
    digests = [hashlib.sha1(text.encode()).hexdigest()[:12] for text in joined.to_numpy()]
    return pd.Series([f"{t}-{d}" for t, d in zip(rtype.to_numpy(), digests)], index=joined.index)


# ---------------------------------------------------------------------------------------------
# Scoring and assembly


_TYPE_PRIORITY = {
    "collusion": 0,
    "enrolment": 1,
    "facility": 2,
    "broker": 3,
    "identity": 4,
}  # as scoring.RING_PREFERENCE


def _duplicates(members: pd.DataFrame, s: RingSettings) -> np.ndarray:
    """Rings that mostly repeat a ring of a more specific type (e.g. a broker's cards sharing a
    phone are also an identity group): the more specific one is kept."""
    key, _ = pd.factorize(members["entity_type"] + ":" + members["entity_id"])
    ring, ring_ids = pd.factorize(members["ring"], sort=True)
    m = sp.csr_matrix((np.ones(len(key)), (ring, key)), shape=(len(ring_ids), int(key.max()) + 1))
    size = np.asarray(m.sum(axis=1)).ravel()
    inter = sp.triu(m @ m.T, k=1).tocoo()
    rtype = members.groupby("ring")["ring_type"].first().reindex(ring_ids).map(_TYPE_PRIORITY).to_numpy()
    a, b = inter.row, inter.col
    loser = np.where(rtype[a] <= rtype[b], b, a)
    close = inter.data / size[loser] >= s.duplicate_share
    loser = loser[close & (rtype[a] != rtype[b])]
    return np.asarray(ring_ids[np.unique(loser)])


def finish(
    dataset: Dataset, members: pd.DataFrame, info: pd.DataFrame, edges: pd.DataFrame, s: RingSettings
) -> RingResult:
    """Rings of every type scored and assembled: duplicates dropped, ids given, tables sorted."""
    # Local ring keys are per type: make them global, then give deterministic ids.
    members = members.copy()
    types = sorted(members["ring_type"].unique())
    offset = {}
    base = 0
    for t in types:
        offset[t] = base
        base += int(members.loc[members["ring_type"] == t, "ring"].max()) + 1
    members["ring"] = members["ring"] + members["ring_type"].map(offset)
    info = info.assign(ring=info["ring"] + info["ring_type"].map(offset))
    edges = edges.assign(ring=edges["ring"] + edges["ring_type"].map(offset))
    dropped = _duplicates(members, s)
    members = members[~members["ring"].isin(dropped)]
    info = info[~info["ring"].isin(dropped)]
    ids = ring_keys(members)
    members["ring_id"] = members["ring"].map(ids)
    info["ring_id"] = info["ring"].map(ids)
    edges = edges.assign(ring_id=edges["ring"].map(ids))
    edges = edges[edges["ring_id"].notna()]
    labels = dataset.table("labels")
    pos = labels.loc[labels["label"] == 1, ["entity_type", "entity_id"]].assign(pos=1.0)
    m = members.merge(pos, on=["entity_type", "entity_id"], how="left")
    label_share = m.groupby("ring_id")["pos"].apply(lambda x: x.fillna(0).mean())
    size = members.groupby("ring_id").size()
    counts = members.groupby(["ring_id", "entity_type"]).size().unstack(fill_value=0)
    inner = edges[
        edges["source_type"].isin(["person", "employer", "clinic", "pharmacy", "agency"])
        & edges["target_type"].isin(["person", "employer", "clinic", "pharmacy", "agency"])
    ]
    pairs = inner.assign(
        a=inner["source_type"] + ":" + inner["source_id"], b=inner["target_type"] + ":" + inner["target_id"]
    )
    lo, hi = (
        np.minimum(pairs["a"].to_numpy(object), pairs["b"].to_numpy(object)),
        np.maximum(pairs["a"].to_numpy(object), pairs["b"].to_numpy(object)),
    )
    n_links = (
        pd.DataFrame({"ring_id": pairs["ring_id"].to_numpy(), "lo": lo, "hi": hi})
        .drop_duplicates()
        .groupby("ring_id")
        .size()
    )
    rings = info.set_index("ring_id")[["ring_type", "strength", "money_at_stake", "why"]]
    rings["size"] = size
    possible = np.maximum(rings["size"] * (rings["size"] - 1) / 2, 1)
    # Identity rings link through identifier nodes: their density is the link strength proxy.
    rings["density"] = (n_links.reindex(rings.index).fillna(0) / possible).clip(0, 1)
    ident = rings["ring_type"] == "identity"
    rings.loc[ident, "density"] = rings.loc[ident, "strength"]
    for t, name in (
        ("person", "n_persons"),
        ("employer", "n_employers"),
        ("clinic", "n_clinics"),
        ("pharmacy", "n_pharmacies"),
        ("agency", "n_agencies"),
    ):
        col = counts[t] if t in counts else pd.Series(0, index=counts.index)
        rings[name] = col.reindex(rings.index).fillna(0).astype(int)
    rings["label_share"] = label_share.reindex(rings.index).fillna(0.0)
    size_c = np.log1p(rings["size"]) / np.log1p(s.max_ring_size)
    money_c = 1 - np.exp(-rings["money_at_stake"] / s.money_scale)
    parts = (
        s.weight_density * rings["density"]
        + s.weight_size * size_c.clip(0, 1)
        + s.weight_money * money_c
        + s.weight_strength * rings["strength"]
    )
    no_label_w = s.weight_density + s.weight_size + s.weight_money + s.weight_strength
    rings["ring_score_without_labels"] = (parts / max(no_label_w, 1e-9)).round(6)
    rings["ring_score"] = (
        (parts + s.weight_labels * rings["label_share"]) / max(no_label_w + s.weight_labels, 1e-9)
    ).round(6)
    rings = (
        rings.reset_index()
        .sort_values(["ring_score", "ring_id"], ascending=[False, True], kind="mergesort")
        .reset_index(drop=True)
    )
    rings = rings[RING_COLUMNS]
    members = members.merge(rings[["ring_id", "ring_score"]], on="ring_id")
    members = (
        members[MEMBER_COLUMNS]
        .sort_values(["ring_id", "entity_type", "entity_id"], kind="mergesort")
        .reset_index(drop=True)
    )
    edges = edges[EDGE_COLUMNS].sort_values(EDGE_COLUMNS[:6], kind="mergesort").reset_index(drop=True)
    return RingResult(members, rings, edges)
