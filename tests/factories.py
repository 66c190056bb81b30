"""Small hand-made datasets for tests: each builder returns fresh frames, table name -> DataFrame, as
text (like a CSV); `dataset_from_frames` types them, `write_dataset` writes them as a dataset folder.

- tiny_frames(): every table of the contract, a handful of realistic rows;
- small_frames(): every table with the edge cases a store must keep exactly: missing values,
  parallel rows, extra columns and unsorted input.
FRAMES names them all, for tests run over every one.
- make_dataset(**event_tables): a validated Dataset from row dicts, entity tables derived from
  the ids used (the rule tests' builder).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from graph.dataset import Dataset, dataset_from_frames

SAMPLE = Path(__file__).resolve().parents[1] / "data_samples"  # the bundled sample dataset


def tiny_frames() -> dict[str, pd.DataFrame]:
    """Every table of the contract, a handful of rows, as text (like a CSV)."""
    return {
        "persons": pd.DataFrame(
            {
                "person_id": ["P1", "P2", "P3", "P4"],
                "name": ["Li Lei", "Han Meimei", "Wang Wu", "Zhao Liu"],
                "id_number": ["110101195001010011", "110101196002020022", "110101197003030033", "110101198004040044"],
                "gender": ["M", "F", "M", "F"],
                "birth_date": ["1950-01-01", "1960-02-02", "1970-03-03", "1980-04-04"],
                "region": ["north", "north", "south", "south"],
                "phone": ["13800000001", "13800000001", "13800000003", None],
                "address": ["1 Main St", "1 Main St", "3 Side St", "4 Hill Rd"],
                "bank_account": ["6222001", "6222002", "6222003", "6222004"],
                "death_date": [None, None, "2025-03-01", None],
                "chronic": ["1", "0", "0", "1"],
            }
        ),
        "employers": pd.DataFrame(
            {
                "employer_id": ["E1", "E2"],
                "name": ["Acme", "Shell Co"],
                "industry": ["retail", "services"],
                "region": ["north", "south"],
                "registered_date": ["2010-01-01", "2024-06-01"],
                "phone": ["13900000001", "13800000003"],
                "address": ["9 Market St", "3 Side St"],
                "bank_account": ["7000001", "7000002"],
            }
        ),
        "clinics": pd.DataFrame(
            {"clinic_id": ["C1", "C2"], "level": ["3", "1"], "region": ["north", "south"], "beds": ["500", "10"]}
        ),
        "pharmacies": pd.DataFrame({"pharmacy_id": ["H1", "H2"], "region": ["north", "south"]}),
        "agencies": pd.DataFrame({"agency_id": ["A1"], "license_no": ["L-001"], "region": ["south"]}),
        "employment": pd.DataFrame(
            {
                "person_id": ["P1", "P2", "P3"],
                "employer_id": ["E1", "E1", "E2"],
                "start_date": ["2020-01-01", "2021-05-01", "2025-01-01"],
                "end_date": [None, None, "2025-06-30"],
                "monthly_wage": ["6000", "5000", "3000"],
                "agency_id": [None, None, "A1"],
            }
        ),
        "contributions": pd.DataFrame(
            {
                "employer_id": ["E1", "E1", "E2", "E2"],
                "person_id": ["P1", "P2", "P3", "P3"],
                "month": ["2025-01", "2025-01", "2025-01", "2025-02"],
                "base": ["6000", "5000", "2000", "2000"],
                "due": ["1200", "1000", "400", "400"],
                "paid": ["1200", "1000", "0", "400"],
            }
        ),
        "benefits": pd.DataFrame(
            {
                "person_id": ["P3", "P4"],
                "month": ["2025-05", "2025-02"],
                "benefit_type": ["pension", "unemployment"],
                "amount": ["3000", "1800"],
            }
        ),
        "visits": pd.DataFrame(
            {
                "visit_id": ["V1", "V2", "V3", "V4"],
                "person_id": ["P1", "P1", "P2", "P4"],
                "clinic_id": ["C1", "C2", "C1", "C2"],
                "date": ["2025-02-01", "2025-02-01", "2025-02-03", "2025-03-10"],
                "kind": ["outpatient", "outpatient", "inpatient", "outpatient"],
                "discharge_date": [None, None, "2025-02-10", None],
                "diagnosis": ["J20", "J20", "I10", "E11"],
                "amount": ["300", "250", "9000", "120"],
                "claimed": ["240", "200", "7200", "96"],
            }
        ),
        "purchases": pd.DataFrame(
            {
                "purchase_id": ["U1", "U2", "U3"],
                "person_id": ["P1", "P2", "P4"],
                "pharmacy_id": ["H1", "H1", "H2"],
                "date": ["2025-02-01", "2025-02-05", "2025-03-10"],
                "amount": ["80", "120", "60"],
                "claimed": ["64", "96", "48"],
                "drug_code": ["D1", "D2", "D1"],
                "quantity": ["1", "2", "1"],
                "days_supply": ["5", "30", "7"],
                "clinic_id": ["C1", "C1", "C2"],
            }
        ),
        "agency_links": pd.DataFrame(
            {
                "agency_id": ["A1", "A1"],
                "entity_type": ["person", "employer"],
                "entity_id": ["P3", "E2"],
                "relation": ["placed", "represents"],
                "start_date": ["2025-01-01", "2024-06-01"],
            }
        ),
        "labels": pd.DataFrame(
            {
                "entity_type": ["person", "person", "employer"],
                "entity_id": ["P1", "P2", "E2"],
                "label": ["1", "0", "1"],
                "as_of": ["2025-12-31", "2025-12-31", "2025-12-31"],
            }
        ),
    }


def small_frames() -> dict[str, pd.DataFrame]:
    """Every table, with missing values, parallel rows, extra columns and unsorted input."""
    return {
        "persons": pd.DataFrame(
            {
                "person_id": ["p3", "p1", "p2", "p4"],
                "name": ["A", "B", "C", "D"],
                "birth_date": ["1990-01-02", None, "1980-05-05", "1970-01-01"],
                "phone": ["111", None, "111", "222"],
                "bank_account": ["b1", "b1", None, None],
                "score": ["1.5", "2", None, "3"],
                "segment": ["x", None, "y", "x"],
            }
        ),
        "employers": pd.DataFrame(
            {"employer_id": ["e1", "e2"], "phone": ["222", None], "industry": ["retail", "care"]}
        ),
        "clinics": pd.DataFrame({"clinic_id": ["c1"], "beds": ["10"]}),
        "pharmacies": pd.DataFrame({"pharmacy_id": ["h1"]}),
        "agencies": pd.DataFrame({"agency_id": ["a1"]}),
        "employment": pd.DataFrame(
            {
                "person_id": ["p1", "p2", "p1"],
                "employer_id": ["e1", "e1", "e1"],
                "start_date": ["2020-01-01", "2021-01-01", None],
                "agency_id": ["a1", None, None],
                "monthly_wage": ["100", "200", "300"],
            }
        ),
        "contributions": pd.DataFrame(
            {
                "employer_id": ["e1", "e1"],
                "person_id": ["p1", "p1"],
                "month": ["2024-02", "2024-01"],
                "paid": ["1", "2"],
            }
        ),
        "benefits": pd.DataFrame(
            {
                "person_id": ["p1", "p1", "p2"],
                "month": ["2024-01", "2024-01", "2024-03"],
                "benefit_type": ["x", "x", "y"],
                "amount": ["1", "1", "5"],
            }
        ),
        "visits": pd.DataFrame(
            {
                "visit_id": ["v2", "v1"],
                "person_id": ["p1", "p3"],
                "clinic_id": ["c1", "c1"],
                "date": ["2024-01-01", "2024-02-02"],
            }
        ),
        "purchases": pd.DataFrame(
            {"purchase_id": ["u1"], "person_id": ["p4"], "pharmacy_id": ["h1"], "clinic_id": ["c1"]}
        ),
        "agency_links": pd.DataFrame(
            {"agency_id": ["a1", "a1"], "entity_type": ["employer", "person"], "entity_id": ["e2", "p4"]}
        ),
        "labels": pd.DataFrame({"entity_type": ["person", "employer"], "entity_id": ["p1", "e1"], "label": ["1", "0"]}),
    }


FRAMES: dict[str, Callable[[], dict[str, pd.DataFrame]]] = {"tiny": tiny_frames, "small": small_frames}


def write_dataset(folder: Path, frames: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write frames as CSV files of a dataset folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in (frames if frames is not None else tiny_frames()).items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return folder


# -- hand-made datasets: give the event tables, the entity tables are derived ------------------------

REFS = {  # entity table -> (id column, [(event table, column)])
    "persons": (
        "person_id",
        [
            ("employment", "person_id"),
            ("contributions", "person_id"),
            ("benefits", "person_id"),
            ("visits", "person_id"),
            ("purchases", "person_id"),
        ],
    ),
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
