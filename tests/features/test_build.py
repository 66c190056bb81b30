"""Feature tables: sorted ids, no personal data, same-day clinic-pharmacy partners."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import build_features, same_day_partners
from graph.contract import ENTITY_TABLE
from graph.dataset import Dataset, dataset_from_frames
from graph.projection import Projection
from tests.factories import tiny_frames

ENTITY_TABLES = set(ENTITY_TABLE.values())


def _with_visits_and_purchases(
    persons: list[str], clinics: list[str], visit_dates: list[str], pharmacies: list[str], purchase_dates: list[str]
):
    """The tiny dataset with row i: persons[i] visits clinics[i] on visit_dates[i] and buys at
    pharmacies[i] on purchase_dates[i]."""
    frames = tiny_frames()
    n = len(persons)
    frames["visits"] = pd.DataFrame(
        {
            "visit_id": [f"V{i}" for i in range(n)],
            "person_id": persons,
            "clinic_id": clinics,
            "date": visit_dates,
            "kind": "outpatient",
            "discharge_date": None,
            "diagnosis": "J20",
            "amount": "100",
            "claimed": "80",
        }
    )
    frames["purchases"] = pd.DataFrame(
        {
            "purchase_id": [f"U{i}" for i in range(n)],
            "person_id": persons,
            "pharmacy_id": pharmacies,
            "date": purchase_dates,
            "amount": "50",
            "claimed": "40",
            "drug_code": "D1",
            "quantity": "1",
            "days_supply": "5",
            "clinic_id": "C1",
        }
    )
    return dataset_from_frames(frames)


def _features() -> dict[str, pd.DataFrame]:
    # P1 and P4 each visit C1 and buy at H1 the same day, P1 on three days.
    dataset = _with_visits_and_purchases(
        ["P1", "P1", "P1", "P4", "P2"],
        ["C1", "C1", "C1", "C1", "C2"],
        ["2025-02-01", "2025-03-01", "2025-04-01", "2025-02-01", "2025-02-03"],
        ["H1", "H1", "H1", "H1", "H2"],
        ["2025-02-01", "2025-03-01", "2025-04-01", "2025-02-01", "2025-02-09"],
    )
    return build_features(dataset, Projection(dataset))


def test_rows_are_sorted_ids_and_personal_data_is_never_a_feature() -> None:
    f = _features()
    for frame in f.values():
        assert frame.index.is_monotonic_increasing
    for col in ("name", "id_number", "phone", "address", "bank_account"):
        assert col not in f["person"].columns
    assert f["person"]["chronic"].dtype == np.float64  # extra numeric attribute
    assert f["person"]["region"].dtype == "category"


def test_same_day_partner_features() -> None:
    f = _features()
    p, c, h = f["person"], f["clinic"], f["pharmacy"]
    assert p.loc["P1", "top_pair_same_days"] == 3 and p.loc["P4", "top_pair_same_days"] == 1
    assert p.loc["P2", "top_pair_same_days"] == 0
    assert c.loc["C1", "top_pharmacy_patient_share"] == 1.0  # both patients of C1 bought at H1 that day
    assert c.loc["C1", "top_pharmacy_repeat_patients"] == 1  # P1 on 3 days
    assert h.loc["H1", "top_clinic_repeat_customers"] == 1
    assert c.loc["C2", "top_pharmacy_patient_share"] == 0.0


def _reference_partners(dataset, entity_type: str) -> pd.DataFrame:
    """same_day_partners written plainly in pandas, over the id strings."""
    v = dataset.tables["visits"][["person_id", "date", "clinic_id"]].dropna().drop_duplicates()
    p = dataset.tables["purchases"][["person_id", "date", "pharmacy_id"]].dropna().drop_duplicates()
    pairs = v.merge(p, on=["person_id", "date"])
    if entity_type == "person":
        days = pairs.groupby(["person_id", "clinic_id", "pharmacy_id"])["date"].nunique().rename("days").reset_index()
        top = (
            days.sort_values(
                ["person_id", "days", "clinic_id", "pharmacy_id"], ascending=[True, False, True, True], kind="mergesort"
            )
            .drop_duplicates("person_id")
            .set_index("person_id")
        )
        return pd.DataFrame({"clinic": top["clinic_id"], "pharmacy": top["pharmacy_id"], "days": top["days"]})
    key, partner = ("clinic_id", "pharmacy_id") if entity_type == "clinic" else ("pharmacy_id", "clinic_id")
    per = pairs.groupby([key, partner])["person_id"].nunique().rename("persons").reset_index()
    top = (
        per.sort_values([key, "persons", partner], ascending=[True, False, True], kind="mergesort")
        .drop_duplicates(key)
        .set_index(key)
    )
    return pd.DataFrame({"partner": top[partner], "persons": top["persons"]})


def test_same_day_partners_match_a_plain_pandas_reference() -> None:
    # ties: P1 meets (C1, H2) and (C2, H1) on one day each; P3 meets C1 with H1 and H2 (one person each)
    dataset = _with_visits_and_purchases(
        ["P1", "P1", "P3", "P3", "P4", "P2"],
        ["C2", "C1", "C1", "C1", "C1", "C2"],
        ["2025-02-01", "2025-03-01", "2025-04-01", "2025-04-02", "2025-02-01", "2025-02-03"],
        ["H1", "H2", "H2", "H1", "H2", "H2"],
        ["2025-02-01", "2025-03-01", "2025-04-01", "2025-04-02", "2025-02-01", "2025-02-09"],
    )
    proj = Projection(dataset)
    for entity_type in ("person", "clinic", "pharmacy"):
        ours = same_day_partners(dataset, proj, entity_type)
        ref = _reference_partners(dataset, entity_type)
        assert list(ours.index) == list(ref.index), entity_type
        for col in ref.columns:
            assert list(ours[col].astype(object)) == list(ref[col].astype(ours[col].dtype).astype(object)), (
                entity_type,
                col,
            )
    person = same_day_partners(dataset, proj, "person")
    assert person.loc["P1", "clinic"] == "C1" and person.loc["P1", "pharmacy"] == "H2"  # tie: smaller clinic
    clinic = same_day_partners(dataset, proj, "clinic")
    assert clinic.loc["C1", "partner"] == "H2" and clinic.loc["C1", "persons"] == 3  # P1, P3, P4


def test_projection_codes_point_at_the_ids() -> None:
    frames = tiny_frames()
    dataset = dataset_from_frames(frames)
    proj = Projection(dataset)
    for table, column, kind in (
        ("visits", "person_id", "person"),
        ("visits", "clinic_id", "clinic"),
        ("persons", "phone", "phone"),
    ):
        if not dataset.has(table):
            continue
        codes = proj.codes(table, column, kind)
        values = dataset.tables[table][column]
        assert (codes >= 0).sum() == values.notna().sum()
        found = codes >= 0
        assert list(proj.ids[kind][codes[found]]) == list(values[found])
        assert codes is proj.codes(table, column, kind)  # computed once


def test_multi_clinic_days_and_month_counts() -> None:
    frames = tiny_frames()
    frames["visits"] = pd.DataFrame(
        {
            "visit_id": [f"V{i}" for i in range(5)],
            "person_id": ["P1", "P1", "P1", "P2", "P2"],
            "clinic_id": ["C1", "C2", "C1", "C1", "C1"],
            "date": ["2025-02-01", "2025-02-01", "2025-02-01", "2025-02-03", "2025-02-20"],
            "kind": "outpatient",
            "discharge_date": None,
            "diagnosis": "J20",
            "amount": "100",
            "claimed": "80",
        }
    )
    dataset = dataset_from_frames(frames)
    f = build_features(dataset, Projection(dataset))
    p, c = f["person"], f["clinic"]
    assert p.loc["P1", "max_clinics_one_day"] == 2 and p.loc["P1", "days_multi_clinic"] == 1
    assert p.loc["P2", "max_clinics_one_day"] == 1 and p.loc["P2", "days_multi_clinic"] == 0
    assert p.loc["P1", "visits"] == 3 and p.loc["P2", "max_clinics_one_month"] == 1
    assert c.loc["C1", "multi_clinic_day_visits"] == 2 / 4 and c.loc["C2", "multi_clinic_day_visits"] == 1.0


def test_features_do_not_depend_on_entity_table_order() -> None:
    # A Dataset sorts its tables; one built by hand may not: features still line up by id.
    frames = tiny_frames()
    frames["benefits"] = pd.DataFrame(
        {
            "person_id": ["P3", "P3", "P4"],
            "month": ["2025-02", "2025-05", "2025-02"],
            "benefit_type": ["pension", "pension", "unemployment"],
            "amount": ["3000", "3000", "1800"],
        }
    )
    dataset = dataset_from_frames(frames)
    shuffled = Dataset(
        tables={
            k: (v.iloc[::-1].reset_index(drop=True) if k in ENTITY_TABLES else v) for k, v in dataset.tables.items()
        }
    )
    expected = build_features(dataset, Projection(dataset))
    got = build_features(shuffled, Projection(shuffled))
    assert expected["person"].loc["P3", "is_dead"] == 1 and expected["person"].loc["P3", "benefits_after_death"] > 0
    for t, frame in expected.items():
        pd.testing.assert_frame_equal(got[t], frame, check_exact=True)
