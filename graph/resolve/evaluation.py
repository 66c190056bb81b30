"""Scoring resolution against a synthetic dataset's truth (bench/bench_resolution.py, tests): the
pipeline never reads truth; these are for measuring it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def pair_counts(pred: pd.Series, truth: pd.Series) -> tuple[int, int, int]:
    """(true positive, predicted, true) pairs of two clusterings of the same records."""
    df = pd.DataFrame({"p": pred.to_numpy(), "t": truth.reindex(pred.index).to_numpy()})

    def pairs(sizes: pd.Series) -> int:
        s = sizes.to_numpy(dtype=np.int64)
        return int((s * (s - 1) // 2).sum())

    return pairs(df.groupby(["p", "t"]).size()), pairs(df.groupby("p").size()), pairs(df.groupby("t").size())


def cluster_scores(resolved: pd.DataFrame, data: Path) -> dict[str, float]:
    """Pairwise precision, recall and F1 of resolved_persons against truth/person_clusters.csv."""
    truth = pd.read_csv(data / "truth" / "person_clusters.csv", dtype=str).set_index("person_id")["human_id"]
    pred = resolved.set_index("person_id")["golden_id"]
    tp, npred, ntrue = pair_counts(pred, truth)
    p, r = tp / max(npred, 1), tp / max(ntrue, 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12), "true_pairs": ntrue}


def registry_scores(matches: pd.DataFrame, data: Path) -> dict[str, float]:
    """Precision and recall of registry_matches against truth (a match to any record of the right human)."""
    human = pd.read_csv(data / "truth" / "person_clusters.csv", dtype=str).set_index("person_id")["human_id"]
    truth = pd.read_csv(data / "truth" / "registry_matches.csv", dtype=str)
    t = truth.assign(h=human.reindex(truth["person_id"]).to_numpy()).set_index(["table", "registry_id"])["h"]
    m = matches.assign(h=human.reindex(matches["person_id"].astype(str)).to_numpy()).set_index(["table", "registry_id"])
    right = (m["h"] == t.reindex(m.index)).sum()
    return {"precision": right / max(len(m), 1), "recall": right / max(len(t), 1), "true": len(t), "matched": len(m)}


def rule_scores(
    hits: pd.DataFrame, data: Path, rules: dict[str, str], patterns: dict[str, tuple[str, ...]] | None = None
) -> dict[str, dict[str, float]]:
    """Per planted pattern (or named group of `patterns`): recall and precision of its rule's
    person hits, counted per human (either record of a human)."""
    human = pd.read_csv(data / "truth" / "person_clusters.csv", dtype=str).set_index("person_id")["human_id"]
    truth = pd.read_csv(data / "truth" / "truth.csv", dtype=str, keep_default_na=False)
    out = {}
    for pattern, rule in rules.items():
        wanted = (patterns or {}).get(pattern, (pattern,))
        want = set(human.reindex(truth.loc[truth["pattern"].isin(wanted), "entity_id"]).dropna())
        got = set(human.reindex(hits.loc[hits["rule_id"] == rule, "entity_id"].astype(str)).dropna())
        out[pattern] = {
            "recall": len(want & got) / max(len(want), 1),
            "precision": len(want & got) / max(len(got), 1),
            "planted": len(want),
            "hits": len(got),
        }
    return out
