"""Small hand-made datasets for rule tests: give the event tables, entity tables are derived."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from graph.dataset import Dataset, dataset_from_frames
from rules import RuleResult, default_pack, evaluate

REFS = {  # entity table -> (id column, [(event table, column)])
    "persons": ("person_id", [("employment", "person_id"), ("contributions", "person_id"), ("benefits", "person_id"),
                              ("visits", "person_id"), ("purchases", "person_id")]),
    "employers": ("employer_id", [("employment", "employer_id"), ("contributions", "employer_id")]),
    "clinics": ("clinic_id", [("visits", "clinic_id"), ("purchases", "clinic_id")]),
    "pharmacies": ("pharmacy_id", [("purchases", "pharmacy_id")]),
    "agencies": ("agency_id", [("employment", "agency_id"), ("agency_links", "agency_id")]),
}


def make_dataset(**tables: list[dict[str, Any]] | pd.DataFrame) -> Dataset:
    """A validated dataset from row dicts; entity tables not given are built from the ids used."""
    frames = {k: (v if isinstance(v, pd.DataFrame) else pd.DataFrame(v)) for k, v in tables.items()}
    for table, (col, uses) in REFS.items():
        ids: set[str] = set()
        for t, c in uses:
            if t in frames and c in frames[t].columns:
                ids |= set(frames[t][c].dropna().astype(str))
        if table == "persons" and "agency_links" in frames:
            links = frames["agency_links"]
            ids |= set(links.loc[links["entity_type"] == "person", "entity_id"])
        if table == "persons":
            ids.add("P0")  # persons is required
        if table in frames:
            given = frames[table]
            missing = sorted(ids - set(given[col]))
            if missing:
                frames[table] = pd.concat([given, pd.DataFrame({col: missing})], ignore_index=True)
        elif ids:
            frames[table] = pd.DataFrame({col: sorted(ids)})
    return dataset_from_frames(frames)


def run(rule_id: str, dataset: Dataset, **kwargs: Any) -> RuleResult:
    """Evaluate only one rule of the default pack."""
    pack = default_pack()
    others = {r.id for r in pack.rules} - {rule_id}
    return evaluate(dataset, pack, disabled=others, **kwargs)


def hits_of(rule_id: str, dataset: Dataset, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """entity_id -> parsed evidence for one rule."""
    result = run(rule_id, dataset, **kwargs)
    assert not result.skipped, result.skipped
    return {row.entity_id: json.loads(row.evidence) for row in result.hits.itertuples()}
