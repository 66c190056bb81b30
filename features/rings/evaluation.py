"""Evaluating rings against the generator's truth (tests and benchmarks only): recall and
precision of detected rings per ring type, and a plain Louvain-style baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.rings.common import MEMBER_COLUMNS, SEP
from features.rings.identity import identifier_rows
from graph.contract import IDENTIFIER_TYPES
from graph.dataset import Dataset
from riskgraph.settings import RingSettings

RING_PATTERNS = ("collusion", "fake_enrolment", "card_broker", "identity_ring")
FACILITY_PATTERNS = ("split_admission", "phantom_stay", "over_prescribing")  # ring type "facility"
TYPE_PATTERNS: dict[str, tuple[str, ...]] = {  # ring type -> the planted patterns it should find
    "collusion": ("collusion",),
    "enrolment": ("fake_enrolment",),
    "broker": ("card_broker",),
    "identity": ("identity_ring",),
    "facility": FACILITY_PATTERNS,
}


def evaluate_rings(
    members: pd.DataFrame, truth: pd.DataFrame, min_jaccard: float = 0.5, patterns: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Ring recall and precision against planted rings (a match is Jaccard >= `min_jaccard`).

    `patterns` limits the planted rings to those patterns (e.g. RING_PATTERNS); precision is
    always over every detected ring.
    """
    if patterns is not None:
        truth = truth[truth["pattern"].isin(patterns)]
    rid = truth["ring_id"].astype("str").str.strip()
    t = truth[truth["ring_id"].notna() & (rid != "") & (rid.str.lower() != "nan")]
    t = t.assign(ring_id=t["ring_id"].astype("str").str.strip())
    keys = pd.concat(
        [t["entity_type"] + ":" + t["entity_id"], members["entity_type"] + ":" + members["entity_id"]],
        ignore_index=True,
    )
    codes, _ = pd.factorize(keys, sort=True)
    tc, mc = codes[: len(t)], codes[len(t) :]
    planted, planted_ids = pd.factorize(t["ring_id"], sort=True)
    detected, detected_ids = pd.factorize(members["ring_id"].astype("str"), sort=True)
    n_ent = int(codes.max()) + 1 if len(codes) else 0
    tm = sp.csr_matrix((np.ones(len(tc)), (planted, tc)), shape=(len(planted_ids), n_ent))
    dm = sp.csr_matrix((np.ones(len(mc)), (detected, mc)), shape=(len(detected_ids), n_ent))
    tm.data[:] = 1.0
    dm.sum_duplicates()
    dm.data[:] = 1.0
    inter = (dm @ tm.T).tocoo()
    dsize = np.asarray(dm.sum(axis=1)).ravel()
    tsize = np.asarray(tm.sum(axis=1)).ravel()
    jac = inter.data / (dsize[inter.row] + tsize[inter.col] - inter.data)
    best_t = np.zeros(len(planted_ids))
    best_d = np.zeros(len(detected_ids))
    np.maximum.at(best_t, inter.col, jac)
    np.maximum.at(best_d, inter.row, jac)
    found = best_t >= min_jaccard
    pattern = t.groupby("ring_id")["pattern"].agg(lambda x: x.mode().iloc[0]).reindex(planted_ids)
    by_pattern = pd.Series(found, index=planted_ids).groupby(pattern.to_numpy()).mean()
    return {
        "recall": float(found.mean()) if len(found) else float("nan"),
        "precision": float((best_d >= min_jaccard).mean()) if len(best_d) else float("nan"),
        "n_planted": int(len(planted_ids)),
        "n_detected": int(len(detected_ids)),
        "n_found": int(found.sum()),
        "n_correct": int((best_d >= min_jaccard).sum()),
        "mean_best_jaccard": float(best_t.mean()) if len(best_t) else float("nan"),
        "recall_by_pattern": {str(k): float(v) for k, v in by_pattern.items()},
    }


def louvain_baseline(dataset: Dataset, settings: RingSettings | None = None) -> pd.DataFrame:
    """Plain baseline: modularity communities of the whole unweighted entity graph, no guards."""
    import igraph as ig
    import leidenalg

    s = settings or RingSettings()
    pairs = []

    def add(a_type: str, a: pd.Series, b_type: str, b: pd.Series) -> None:
        ok = a.notna().to_numpy() & b.notna().to_numpy()
        pairs.append(
            pd.DataFrame(
                {
                    "a": (a_type + ":" + a[ok].astype("str")).to_numpy(),
                    "b": (b_type + ":" + b[ok].astype("str")).to_numpy(),
                }
            )
        )

    ids = identifier_rows(dataset, IDENTIFIER_TYPES)
    add("x", ids["entity_type"] + ":" + ids["entity_id"], "id", ids["id_type"] + SEP + ids["value"])
    for table, a, b in (
        ("visits", "person", "clinic"),
        ("purchases", "person", "pharmacy"),
        ("employment", "person", "employer"),
        ("contributions", "person", "employer"),
        ("employment", "agency", "employer"),
        ("employment", "agency", "person"),
    ):
        df = dataset.table(table)
        add(a, df[f"{a}_id"], b, df[f"{b}_id"])
    links = dataset.table("agency_links")
    add("agency", links["agency_id"], "x", links["entity_type"] + ":" + links["entity_id"])
    e = pd.concat(pairs, ignore_index=True)
    e["a"] = e["a"].str.removeprefix("x:")
    e["b"] = e["b"].str.removeprefix("x:")
    e = e.drop_duplicates()
    codes, names = pd.factorize(pd.concat([e["a"], e["b"]], ignore_index=True), sort=True)
    n = len(e)
    g = ig.Graph(n=len(names), edges=np.column_stack([codes[:n], codes[n:]]))
    part = leidenalg.find_partition(g, leidenalg.ModularityVertexPartition, seed=s.seed)
    memb = np.asarray(part.membership)
    name = pd.Series(names)
    entity = ~name.str.startswith("id:").to_numpy()
    split = name[entity].str.split(":", n=1, expand=True)
    out = pd.DataFrame(
        {
            "ring": memb[entity],
            "ring_type": "louvain",
            "entity_type": split[0].to_numpy(),
            "entity_id": split[1].to_numpy(),
        }
    )
    sizes = out.groupby("ring")["ring"].transform("size")
    out = out[sizes >= s.min_ring_size]
    out = out.assign(ring_id="louvain-" + out["ring"].astype("str"), ring_score=np.nan)
    return out[MEMBER_COLUMNS].sort_values(["ring_id", "entity_type", "entity_id"]).reset_index(drop=True)


def evaluate_by_type(members: pd.DataFrame, truth: pd.DataFrame, min_jaccard: float = 0.5) -> dict[str, dict[str, Any]]:
    """Per ring type (TYPE_PATTERNS): recall over the planted rings of its patterns, and
    precision over the detected rings of that type, each judged against those patterns."""
    out = {}
    for ring_type, patterns in TYPE_PATTERNS.items():
        ev = evaluate_rings(members[members["ring_type"] == ring_type], truth, min_jaccard, patterns)
        out[ring_type] = {
            k: ev[k]
            for k in ("recall", "precision", "n_planted", "n_detected", "n_found", "n_correct", "mean_best_jaccard")
        }
    return out


def best_matches(members: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per planted ring (truth rows with a ring id): the detected ring it overlaps most and that
    Jaccard (truth_ring, ring_id, jaccard; planted rings overlapping nothing are left out)."""
    from features.rings.lineage import ring_overlaps

    t = truth[truth["ring_id"].astype(str).str.strip() != ""]
    planted = pd.DataFrame(
        {
            "ring_id": t["ring_id"].astype(str),
            "ring_type": "x",
            "entity_type": t["entity_type"],
            "entity_id": t["entity_id"],
        }
    ).drop_duplicates()
    pairs = ring_overlaps(planted, members.assign(ring_type="x"))
    best = pairs.sort_values(["jaccard", "old_id"], ascending=[False, True], kind="mergesort").drop_duplicates("new_id")
    return best.rename(columns={"new_id": "truth_ring", "old_id": "ring_id"})[["truth_ring", "ring_id", "jaccard"]]


def id_persistence(
    before: pd.DataFrame, after: pd.DataFrame, truth: pd.DataFrame, min_jaccard: float = 0.5
) -> dict[str, Any]:
    """How many planted rings found in both runs (Jaccard >= `min_jaccard` each time) kept their
    ring id from the run `before` to the run `after` (member tables of the two runs)."""
    b = best_matches(before, truth)
    a = best_matches(after, truth)
    both = b[b["jaccard"] >= min_jaccard].merge(
        a[a["jaccard"] >= min_jaccard], on="truth_ring", suffixes=("_before", "_after")
    )
    kept = both["ring_id_before"] == both["ring_id_after"]
    return {
        "persisting": int(len(both)),
        "kept_id": int(kept.sum()),
        "share_kept": float(kept.mean()) if len(both) else float("nan"),
        "lost": both.loc[~kept, ["truth_ring", "ring_id_before", "ring_id_after"]].to_dict("records"),
    }
