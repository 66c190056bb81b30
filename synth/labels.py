"""Labels (a share of the planted entities plus a few clean ones) and the deduplicated truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synth.world import World


def draw_labels(w: World, label_share: float, negative_share: float) -> dict[str, np.ndarray]:
    """Per entity type, a 2-row array (entity index, label): label_share of its fraud as 1, some clean as 0."""
    rng = w.rng
    counts = {
        "person": w.n,
        "employer": w.n_employers,
        "clinic": w.n_clinics,
        "pharmacy": w.n_pharmacies,
        "agency": w.n_agencies,
    }
    labels: dict[str, np.ndarray] = {}
    for etype, total in counts.items():
        parts = [i for t, i, _, _ in w.truth if t == etype]
        fraud = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        clean = np.setdiff1d(np.arange(total), fraud)
        n_pos = math.ceil(label_share * len(fraud)) if label_share > 0 else 0
        n_neg = round(negative_share * len(clean))
        if negative_share > 0 and len(fraud):
            n_neg = max(1, n_neg)
        pos = np.sort(rng.choice(fraud, size=n_pos, replace=False))
        neg = np.sort(rng.choice(clean, size=min(n_neg, len(clean)), replace=False))
        label = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        labels[etype] = np.stack([np.r_[pos, neg], label]).astype(np.int64)
    return labels


def truth_frame(w: World) -> pd.DataFrame:
    """One row per (entity_type, entity_idx, pattern), sorted, with the ring_id of its first planting."""
    frame = pd.DataFrame(
        {
            "entity_type": np.concatenate([np.full(len(i), t) for t, i, _, _ in w.truth]),
            "entity_idx": np.concatenate([i for _, i, _, _ in w.truth]),
            "pattern": np.concatenate([np.full(len(i), pat) for _, i, pat, _ in w.truth]),
            "ring_id": np.concatenate([np.full(len(i), r) for _, i, _, r in w.truth]),
        }
    ).drop_duplicates(["entity_type", "entity_idx", "pattern"])
    return frame.sort_values(["entity_type", "entity_idx", "pattern"], kind="mergesort")
