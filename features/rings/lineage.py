"""Ring lineage: a ring keeps its id across runs while its members persist.

A ring of a new run inherits the id of the earlier run's ring it overlaps most (member-set
Jaccard >= `min_jaccard`, default 0.5), of the same type at equal overlap. A ring may change type
and keep its id: a card broker's group losing the broker's card is still the same people sharing
a phone and a bank account (an identity ring), and the investigator's alert goes on. Ids are assigned one-to-one, best overlap
first, so when a ring splits the larger part keeps the id (its Jaccard with the earlier ring is
the higher) and the smaller part gets a new id. A new ring that inherits nothing keeps its own
id (type + hash of its members, `common.ring_keys`), unless an earlier run already used that id
for another ring, in which case a suffix makes it new.

All set work is one sparse product (new rings x earlier rings); the greedy one-to-one pass runs
over the candidate pairs (at most a few per ring), never over members.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.rings.common import RingResult

LINEAGE_COLUMNS = ["ring_id", "ring_type", "fresh_id", "inherited_from", "jaccard"]


def ring_overlaps(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Every pair (new ring, earlier ring) sharing a member: ids, whether of one type, sizes,
    intersection and Jaccard. `new` and `old` are member tables (ring_id, ring_type, entity_type, entity_id)."""
    cols = ["new_id", "old_id", "ring_type", "same_type", "inter", "new_size", "old_size", "jaccard"]
    if new.empty or old.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "jaccard" else object) for c in cols})
    keys = pd.concat(
        [new["entity_type"] + ":" + new["entity_id"], old["entity_type"] + ":" + old["entity_id"]], ignore_index=True
    )
    ent, _ = pd.factorize(keys)
    n_ent = int(ent.max()) + 1
    ni, new_ids = pd.factorize(new["ring_id"], sort=True)
    oi, old_ids = pd.factorize(old["ring_id"], sort=True)
    nm = sp.csr_matrix((np.ones(len(new)), (ni, ent[: len(new)])), shape=(len(new_ids), n_ent))
    om = sp.csr_matrix((np.ones(len(old)), (oi, ent[len(new) :])), shape=(len(old_ids), n_ent))
    nm.sum_duplicates()
    om.sum_duplicates()
    nm.data[:] = 1.0
    om.data[:] = 1.0
    inter = (nm @ om.T).tocoo()
    new_size = np.asarray(nm.sum(axis=1)).ravel()
    old_size = np.asarray(om.sum(axis=1)).ravel()
    a, b = new_size[inter.row], old_size[inter.col]
    new_type = new.groupby("ring_id")["ring_type"].first().reindex(new_ids).to_numpy()
    old_type = old.groupby("ring_id")["ring_type"].first().reindex(old_ids).to_numpy()
    pairs = pd.DataFrame(
        {
            "new_id": np.asarray(new_ids)[inter.row],
            "old_id": np.asarray(old_ids)[inter.col],
            "ring_type": new_type[inter.row],
            "same_type": new_type[inter.row] == old_type[inter.col],
            "inter": inter.data.astype(int),
            "new_size": a.astype(int),
            "old_size": b.astype(int),
            "jaccard": inter.data / (a + b - inter.data),
        }
    )
    return pairs


def inherit_ids(new: pd.DataFrame, old: pd.DataFrame | None, min_jaccard: float = 0.5) -> pd.DataFrame:
    """The lineage of each new ring: its id in this run (inherited or its own), its own fresh id,
    the earlier id it inherited (None: a new ring) and that Jaccard (LINEAGE_COLUMNS)."""
    rings = new.groupby("ring_id", sort=True)["ring_type"].first()
    out = pd.DataFrame({"ring_id": rings.index.to_numpy(), "ring_type": rings.to_numpy()})
    out["fresh_id"] = out["ring_id"]
    out["inherited_from"] = None
    out["jaccard"] = np.nan
    if old is None or old.empty or new.empty:
        return out[LINEAGE_COLUMNS]
    pairs = ring_overlaps(new, old)
    pairs = pairs[pairs["jaccard"] >= min_jaccard]
    # best overlap first; ties: the same type, the larger shared part, then ids (deterministic)
    pairs = pairs.sort_values(
        ["jaccard", "same_type", "inter", "new_id", "old_id"],
        ascending=[False, False, False, True, True],
        kind="mergesort",
    )
    taken_new: set[str] = set()
    taken_old: set[str] = set()
    chosen: dict[str, tuple[str, float]] = {}
    for n, o, j in zip(pairs["new_id"].tolist(), pairs["old_id"].tolist(), pairs["jaccard"].tolist()):
        if n in taken_new or o in taken_old:
            continue
        taken_new.add(n)
        taken_old.add(o)
        chosen[n] = (o, j)
    inherited = out["fresh_id"].map(lambda i: chosen.get(i, (None, np.nan))[0])
    out["inherited_from"] = inherited
    out["jaccard"] = out["fresh_id"].map(lambda i: chosen.get(i, (None, np.nan))[1]).astype("float64")
    has = inherited.notna()
    out.loc[has, "ring_id"] = inherited[has]
    # a ring inheriting nothing must not take an id an earlier ring had (e.g. the old member set again)
    used = set(old["ring_id"].unique()) | set(out.loc[has, "ring_id"])
    clash = ~has & out["ring_id"].isin(used)
    out.loc[clash, "ring_id"] = out.loc[clash, "ring_id"] + "-n"
    return out[LINEAGE_COLUMNS]


def apply_lineage(result: RingResult, lineage: pd.DataFrame) -> RingResult:
    """`result` with each ring's id replaced by its lineage id (tables re-sorted as `finish` does)."""
    if lineage.empty:
        return result
    mapping = dict(zip(lineage["fresh_id"], lineage["ring_id"]))
    members = result.members.assign(ring_id=result.members["ring_id"].map(mapping))
    rings = result.rings.assign(ring_id=result.rings["ring_id"].map(mapping))
    edges = result.edges.assign(ring_id=result.edges["ring_id"].map(mapping))
    rings = rings.sort_values(["ring_score", "ring_id"], ascending=[False, True], kind="mergesort").reset_index(
        drop=True
    )
    members = members.sort_values(["ring_id", "entity_type", "entity_id"], kind="mergesort").reset_index(drop=True)
    edges = edges.sort_values(list(edges.columns[:6]), kind="mergesort").reset_index(drop=True)
    return RingResult(members, rings, edges)
