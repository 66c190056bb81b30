"""Conduct signals from the labour-supervision tables (inspections, wage_arrears, commitments):
trustworthiness (守信: commitments fulfilled, findings corrected) beside the findings themselves.

Columns appear only when their table is in the dataset, so a dataset without these tables gets
exactly the features it had before. Grouped once per table (pandas), then aligned on the ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.dataset import Dataset

# Trust signals (守信) that can only lower risk: the supervised models learn them under a
# non-increasing (monotone -1) constraint, and for unlabelled types they are no anomaly and their
# deviation reads as a push down (scoring/model.py, scoring/unsupervised.py).
GOOD_CONDUCT = ("months_paid_in_full", "commitments_fulfilled", "findings_corrected")


def conduct_features(dataset: Dataset, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Per entity of `entity_type` (rows in `ids` order): the conduct signals its tables give."""
    out = pd.DataFrame(index=ids)
    if dataset.has("commitments"):
        c = dataset.table("commitments")
        c = c[c["entity_type"] == entity_type]
        kept = c["fulfilled"] == 1
        out["commitments_fulfilled"] = _count(c.loc[kept, "entity_id"], ids)
        out["commitments_broken"] = _count(c.loc[~kept, "entity_id"], ids)
    if entity_type != "employer":
        return out
    if dataset.has("inspections"):
        i = dataset.table("inspections")
        violation = ~i["finding"].isin(["none", "no_violation"])
        out["inspection_violations"] = _count(i.loc[violation, "employer_id"], ids)
        out["findings_corrected"] = _count(i.loc[violation & i["corrected_date"].notna(), "employer_id"], ids)
        out["inspection_penalties"] = (
            i.groupby("employer_id")["penalty_amount"].sum().reindex(ids).fillna(0.0).to_numpy(dtype=float)
        )
    if dataset.has("wage_arrears"):
        w = dataset.table("wage_arrears")
        owed = (w["amount_owed"] - w["amount_repaid"].fillna(0.0)).clip(lower=0.0)
        out["wages_owed"] = owed.groupby(w["employer_id"]).sum().reindex(ids).fillna(0.0).to_numpy(dtype=float)
        out["wage_arrears_months"] = _count(w.loc[w["amount_owed"] > 0, "employer_id"], ids)
    return out


def _count(values: pd.Series, ids: pd.Index) -> np.ndarray:
    return values.value_counts().reindex(ids).fillna(0).astype(float).to_numpy()
