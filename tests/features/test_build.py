"""Feature tables: sorted ids, no personal data, same-day clinic-pharmacy partners."""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import build_features, same_day_clinic_pharmacy, top_partners
from graph.dataset import dataset_from_frames
from graph.projection import Projection
from tests.factories import tiny_frames


def _features() -> dict[str, pd.DataFrame]:
    frames = tiny_frames()
    # P1 and P4 each visit C1 and buy at H1 the same day, P1 on three days.
    frames["visits"] = pd.DataFrame({
        "visit_id": [f"V{i}" for i in range(5)], "person_id": ["P1", "P1", "P1", "P4", "P2"],
        "clinic_id": ["C1", "C1", "C1", "C1", "C2"],
        "date": ["2025-02-01", "2025-03-01", "2025-04-01", "2025-02-01", "2025-02-03"],
        "kind": "outpatient", "discharge_date": None, "diagnosis": "J20", "amount": "100", "claimed": "80"})
    frames["purchases"] = pd.DataFrame({
        "purchase_id": [f"U{i}" for i in range(5)], "person_id": ["P1", "P1", "P1", "P4", "P2"],
        "pharmacy_id": ["H1", "H1", "H1", "H1", "H2"],
        "date": ["2025-02-01", "2025-03-01", "2025-04-01", "2025-02-01", "2025-02-09"],
        "amount": "50", "claimed": "40", "drug_code": "D1", "quantity": "1", "days_supply": "5", "clinic_id": "C1"})
    dataset = dataset_from_frames(frames)
    return build_features(dataset, Projection(dataset))


def test_rows_are_sorted_ids_and_personal_data_is_never_a_feature() -> None:
    f = _features()
    for frame in f.values():
        assert frame.index.is_monotonic_increasing
    for col in ("name", "id_number", "phone", "address", "bank_account"):
        assert col not in f["person"].columns
    assert f["person"]["chronic"].dtype == np.float64       # extra numeric attribute
    assert f["person"]["region"].dtype == "category"


def test_same_day_partner_features() -> None:
    f = _features()
    p, c, h = f["person"], f["clinic"], f["pharmacy"]
    assert p.loc["P1", "top_pair_same_days"] == 3 and p.loc["P4", "top_pair_same_days"] == 1
    assert p.loc["P2", "top_pair_same_days"] == 0
    assert c.loc["C1", "top_pharmacy_patient_share"] == 1.0     # both patients of C1 bought at H1 that day
    assert c.loc["C1", "top_pharmacy_repeat_patients"] == 1     # P1 on 3 days
    assert h.loc["H1", "top_clinic_repeat_customers"] == 1
    assert c.loc["C2", "top_pharmacy_patient_share"] == 0.0


def test_top_partners_breaks_ties_by_id() -> None:
    pairs = pd.DataFrame({"person_id": ["P1", "P2"], "date": ["d", "d"], "clinic_id": ["C1", "C1"],
                          "pharmacy_id": ["H2", "H1"]})
    top = top_partners(pairs, "clinic_id", "pharmacy_id")
    assert top.loc["C1", "partner"] == "H1" and top.loc["C1", "share"] == 0.5


def test_same_day_pairs_can_be_restricted() -> None:
    dataset = dataset_from_frames(tiny_frames())
    all_pairs = same_day_clinic_pharmacy(dataset)
    only = same_day_clinic_pharmacy(dataset, person_id=pd.Index(["P4"]))
    assert set(only["person_id"]) <= {"P4"} and len(only) <= len(all_pairs)


def test_projection_codes_point_at_the_ids() -> None:
    frames = tiny_frames()
    dataset = dataset_from_frames(frames)
    proj = Projection(dataset)
    for table, column, kind in (("visits", "person_id", "person"), ("visits", "clinic_id", "clinic"),
                                ("persons", "phone", "phone")):
        if not dataset.has(table):
            continue
        codes = proj.codes(table, column, kind)
        values = dataset.tables[table][column]
        assert (codes >= 0).sum() == values.notna().sum()
        found = codes >= 0
        assert list(proj.ids[kind][codes[found]]) == list(values[found])
        assert codes is proj.codes(table, column, kind)      # computed once


def test_multi_clinic_days_and_month_counts() -> None:
    frames = tiny_frames()
    frames["visits"] = pd.DataFrame({
        "visit_id": [f"V{i}" for i in range(5)], "person_id": ["P1", "P1", "P1", "P2", "P2"],
        "clinic_id": ["C1", "C2", "C1", "C1", "C1"],
        "date": ["2025-02-01", "2025-02-01", "2025-02-01", "2025-02-03", "2025-02-20"],
        "kind": "outpatient", "discharge_date": None, "diagnosis": "J20", "amount": "100", "claimed": "80"})
    dataset = dataset_from_frames(frames)
    f = build_features(dataset, Projection(dataset))
    p, c = f["person"], f["clinic"]
    assert p.loc["P1", "max_clinics_one_day"] == 2 and p.loc["P1", "days_multi_clinic"] == 1
    assert p.loc["P2", "max_clinics_one_day"] == 1 and p.loc["P2", "days_multi_clinic"] == 0
    assert p.loc["P1", "visits"] == 3 and p.loc["P2", "max_clinics_one_month"] == 1
    assert c.loc["C1", "multi_clinic_day_visits"] == 2 / 4 and c.loc["C2", "multi_clinic_day_visits"] == 1.0
