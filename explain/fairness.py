"""Fairness of the grades: grade distribution by gender and by age band, with the disparate-
impact ratio of each group (its share of favourable grades, A or B, over the best-treated
group's share). Ratios below 0.8 (the four-fifths rule) are flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.dataset import Dataset

FAVOURABLE = ("A", "B")
FOUR_FIFTHS = 0.8
AGE_BANDS = (0, 30, 45, 60, 200)
AGE_LABELS = ("under 30", "30-44", "45-59", "60 and over")
MIN_GROUP = 20  # smaller groups are shown but not flagged: too few to judge


def fairness_table(dataset: Dataset, scores: pd.DataFrame, reference: pd.Timestamp | None) -> pd.DataFrame:
    """One row per (attribute, group): persons, share of each grade, favourable share, ratio and
    flag. Empty when the persons table has neither gender nor birth dates."""
    persons = dataset.table("persons")
    s = scores[scores["entity_type"] == "person"].set_index(
        scores.loc[scores["entity_type"] == "person", "entity_id"].astype(str)
    )
    if s.empty or persons.empty:
        return pd.DataFrame()
    p = persons.set_index(persons["person_id"].astype(str))
    p = p[~p.index.duplicated()]
    groups: dict[str, pd.Series] = {}
    if "gender" in p and p["gender"].notna().any():
        groups["gender"] = p["gender"].astype(object).where(p["gender"].notna(), "unknown").astype(str)
    if "birth_date" in p and p["birth_date"].notna().any() and reference is not None:
        age = (reference - p["birth_date"]).dt.days / 365.25
        band = pd.cut(age, bins=list(AGE_BANDS), labels=list(AGE_LABELS), right=False)
        groups["age band"] = band.astype(object).where(band.notna(), "unknown").astype(str)
    rows = []
    grade = s["grade"]
    for attribute, group in groups.items():
        g = group.reindex(grade.index).fillna("unknown")
        table = pd.crosstab(g, grade).reindex(columns=list("ABCD"), fill_value=0)
        n = table.sum(axis=1)
        favourable = table[list(FAVOURABLE)].sum(axis=1) / n
        judged = favourable[(n >= MIN_GROUP) & (favourable.index != "unknown")]
        best = judged.max() if len(judged) else np.nan
        for name in table.index:
            ratio = favourable[name] / best if best and best > 0 else np.nan
            rows.append(
                {
                    "attribute": attribute,
                    "group": name,
                    "persons": int(n[name]),
                    **{f"share {k}": table.loc[name, k] / n[name] for k in "ABCD"},
                    "favourable (A or B)": favourable[name],
                    "disparate impact": ratio,
                    "flag": "below 0.8" if name in judged.index and ratio < FOUR_FIFTHS else "",
                }
            )
    return pd.DataFrame(rows)
