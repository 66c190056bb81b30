"""Default medical-insurance rules: each fires on a hand-made case and not on its near miss."""

from __future__ import annotations

from tests.factories import make_dataset
from tests.rules.support import hits_of


def visit(vid, person, clinic, date, kind="outpatient", discharge=None, diagnosis=None, amount=100.0):
    return dict(
        visit_id=vid,
        person_id=person,
        clinic_id=clinic,
        date=date,
        kind=kind,
        discharge_date=discharge,
        diagnosis=diagnosis,
        amount=amount,
    )


def purchase(pid, person, date, drug="D1", days=5.0, pharmacy="H1", amount=80.0):
    return dict(
        purchase_id=pid,
        person_id=person,
        pharmacy_id=pharmacy,
        date=date,
        drug_code=drug,
        days_supply=days,
        amount=amount,
    )


def test_same_day_multi_clinic_fires_with_the_visits_of_that_day():
    ds = make_dataset(
        visits=[
            visit("V1", "P1", "C1", "2024-03-01", amount=360.0),
            visit("V2", "P1", "C2", "2024-03-01"),
            visit("V3", "P1", "C3", "2024-03-09"),
        ]
    )
    hits = hits_of("med_same_day_multi_clinic", ds)
    assert list(hits) == ["P1"]
    ev = hits["P1"]
    assert ev["n_records"] == 2
    assert [(r["visit_id"], r["clinic_id"], r["date"], r["n_clinics"]) for r in ev["records"]] == [
        ("V1", "C1", "2024-03-01", 2),
        ("V2", "C2", "2024-03-01", 2),
    ]
    assert ev["records"][0]["amount"] == 360.0


def test_same_day_multi_clinic_near_miss_same_clinic_twice_or_next_day():
    ds = make_dataset(
        visits=[
            visit("V1", "P1", "C1", "2024-03-01"),
            visit("V2", "P1", "C1", "2024-03-01"),
            visit("V3", "P2", "C1", "2024-03-01"),
            visit("V4", "P2", "C2", "2024-03-02"),
        ]
    )
    assert hits_of("med_same_day_multi_clinic", ds) == {}


def test_monthly_multi_clinic_fires_on_three_clinics_in_a_month():
    ds = make_dataset(
        visits=[
            visit("V1", "P1", "C1", "2024-03-01"),
            visit("V2", "P1", "C2", "2024-03-15"),
            visit("V3", "P1", "C3", "2024-03-31"),
            visit("V4", "P1", "C3", "2024-05-02"),
        ]
    )
    hits = hits_of("med_monthly_multi_clinic", ds)
    assert [r["visit_id"] for r in hits["P1"]["records"]] == ["V1", "V2", "V3"]
    assert {r["n_clinics"] for r in hits["P1"]["records"]} == {3}


def test_monthly_multi_clinic_near_miss_across_month_boundary():
    ds = make_dataset(
        visits=[
            visit("V1", "P1", "C1", "2024-03-01"),
            visit("V2", "P1", "C2", "2024-03-31"),
            visit("V3", "P1", "C3", "2024-04-01"),
        ]
    )
    assert hits_of("med_monthly_multi_clinic", ds) == {}


def test_split_admission_fires_within_15_days_of_discharge():
    ds = make_dataset(
        visits=[
            visit("V1", "P1", "C1", "2024-01-01", "inpatient", "2024-01-10", "J18", 9000.0),
            visit("V2", "P1", "C2", "2024-01-25", "inpatient", "2024-02-01", "J18", 8000.0),
        ]
    )
    rec = hits_of("med_split_admission", ds)["P1"]["records"]
    assert rec == [
        {
            "visit_id": "V2",
            "clinic_id": "C2",
            "date": "2024-01-25",
            "discharge_date": "2024-02-01",
            "diagnosis": "J18",
            "amount": 8000.0,
            "prev_visit_id": "V1",
            "prev_clinic_id": "C1",
            "prev_date": "2024-01-01",
            "prev_discharge_date": "2024-01-10",
            "gap_days": 15,
        }
    ]


def test_split_admission_near_miss_16_days_or_other_diagnosis():
    ds = make_dataset(
        visits=[
            visit("V1", "P1", "C1", "2024-01-01", "inpatient", "2024-01-10", "J18"),
            visit("V2", "P1", "C1", "2024-01-26", "inpatient", "2024-02-01", "J18"),  # 16 days
            visit("V3", "P2", "C1", "2024-01-01", "inpatient", "2024-01-10", "J18"),
            visit("V4", "P2", "C1", "2024-01-12", "inpatient", "2024-01-20", "K35"),  # other diagnosis
            visit("V5", "P3", "C1", "2024-01-05", "outpatient", None, "J18"),
            visit("V6", "P3", "C1", "2024-01-08", "outpatient", None, "J18"),  # not inpatient
        ]
    )
    assert hits_of("med_split_admission", ds) == {}


def test_activity_during_stay_fires_on_visit_and_purchase_inside_the_stay():
    ds = make_dataset(
        visits=[
            visit("V1", "P1", "C1", "2024-01-01", "inpatient", "2024-01-10", "J18"),
            visit("V2", "P1", "C2", "2024-01-05", amount=200.0),
        ],
        purchases=[purchase("R1", "P1", "2024-01-06", amount=55.0)],
    )
    ev = hits_of("med_activity_during_stay", ds)["P1"]
    assert ev["n_records"] == 2
    assert [
        (
            r["source"],
            r["record_id"],
            r["place_id"],
            r["date"],
            r["amount"],
            r["stay_visit_id"],
            r["stay_date"],
            r["stay_discharge_date"],
        )
        for r in ev["records"]
    ] == [
        ("visits", "V2", "C2", "2024-01-05", 200.0, "V1", "2024-01-01", "2024-01-10"),
        ("purchases", "R1", "H1", "2024-01-06", 55.0, "V1", "2024-01-01", "2024-01-10"),
    ]


def test_activity_during_stay_near_miss_on_admission_and_discharge_days():
    ds = make_dataset(
        visits=[
            visit("V1", "P1", "C1", "2024-01-01", "inpatient", "2024-01-10", "J18"),
            visit("V2", "P1", "C2", "2024-01-01"),
            visit("V3", "P2", "C2", "2024-01-05"),
        ],
        purchases=[purchase("R1", "P1", "2024-01-10")],
    )
    assert hits_of("med_activity_during_stay", ds) == {}


def test_clinic_beds_exceeded_fires_with_the_overfull_days():
    stays = [visit(f"V{i}", f"P{i}", "C1", "2024-01-01", "inpatient", "2024-01-04", "X") for i in range(3)]
    stays.append(visit("V9", "P9", "C1", "2024-01-03", "inpatient", "2024-01-05", "X"))
    ds = make_dataset(clinics=[dict(clinic_id="C1", beds=2), dict(clinic_id="C2", beds=2)], visits=stays)
    ev = hits_of("med_clinic_beds_exceeded", ds)["C1"]
    assert ev["records"] == [
        {"date_from": "2024-01-01", "date_to": "2024-01-02", "days": 2, "inpatients": 3, "beds": 2.0},
        {"date_from": "2024-01-03", "date_to": "2024-01-03", "days": 1, "inpatients": 4, "beds": 2.0},
    ]


def test_clinic_beds_exceeded_near_miss_full_but_not_over():
    stays = [
        visit("V1", "P1", "C1", "2024-01-01", "inpatient", "2024-01-04", "X"),
        visit("V2", "P2", "C1", "2024-01-01", "inpatient", "2024-01-04", "X"),
        visit("V3", "P3", "C1", "2024-01-04", "inpatient", "2024-01-08", "X"),
    ]  # admitted on a discharge day
    ds = make_dataset(clinics=[dict(clinic_id="C1", beds=2)], visits=stays)
    assert hits_of("med_clinic_beds_exceeded", ds) == {}


def test_over_prescribing_fires_above_7_days():
    ds = make_dataset(
        purchases=[
            purchase("R1", "P1", "2024-01-01", days=30.0, amount=120.0),
            purchase("R2", "P1", "2024-03-01", days=7.0),
        ]
    )
    rec = hits_of("med_over_prescribing", ds)["P1"]["records"]
    assert [(r["purchase_id"], r["days_supply"], r["amount"], r["date"]) for r in rec] == [
        ("R1", 30.0, 120.0, "2024-01-01")
    ]


def test_over_prescribing_near_miss_exactly_7_days():
    ds = make_dataset(purchases=[purchase("R1", "P1", "2024-01-01", days=7.0)])
    assert hits_of("med_over_prescribing", ds) == {}


def test_overlapping_supply_fires_when_bought_before_the_supply_ran_out():
    ds = make_dataset(
        purchases=[
            purchase("R1", "P1", "2024-01-01", days=7.0),
            purchase("R2", "P1", "2024-01-05", days=7.0, pharmacy="H2"),
        ]
    )
    rec = hits_of("med_overlapping_supply", ds)["P1"]["records"]
    assert [
        (r["purchase_id"], r["pharmacy_id"], r["prev_purchase_id"], r["prev_date"], r["overlap_days"]) for r in rec
    ] == [("R2", "H2", "R1", "2024-01-01", 3)]


def test_overlapping_supply_near_miss_on_the_day_it_runs_out_or_other_drug():
    ds = make_dataset(
        purchases=[
            purchase("R1", "P1", "2024-01-01", days=7.0),
            purchase("R2", "P1", "2024-01-08", days=7.0),
            purchase("R3", "P1", "2024-01-09", drug="D2", days=7.0),
            purchase("R4", "P2", "2024-01-09", days=7.0),
        ]
    )
    assert hits_of("med_overlapping_supply", ds) == {}


def test_overlapping_long_supply_fires_only_when_the_earlier_supply_was_long():
    ds = make_dataset(
        purchases=[
            purchase("R1", "P1", "2024-01-01", days=30.0),
            purchase("R2", "P1", "2024-01-20", days=30.0, pharmacy="H2"),
            purchase("R3", "P2", "2024-01-01", days=7.0),  # short supply, bought early
            purchase("R4", "P2", "2024-01-05", days=30.0),
            purchase("R5", "P3", "2024-01-01", days=28.0),  # on-time 28-day refill
            purchase("R6", "P3", "2024-01-29", days=28.0),
        ]
    )
    hits = hits_of("med_overlapping_long_supply", ds)
    assert set(hits) == {"P1"}
    rec = hits["P1"]["records"]
    assert [
        (r["purchase_id"], r["pharmacy_id"], r["prev_purchase_id"], r["prev_days_supply"], r["overlap_days"])
        for r in rec
    ] == [("R2", "H2", "R1", 30.0, 11)]
    assert set(hits_of("med_overlapping_supply", ds)) == {"P1", "P2"}  # the general rule also fires for P2


def test_overlapping_long_supply_threshold_is_strict():
    ds = make_dataset(
        purchases=[
            purchase("R1", "P1", "2024-01-01", days=7.0),
            purchase("R2", "P1", "2024-01-03", days=7.0),
            purchase("R3", "P2", "2024-01-01", days=8.0),
            purchase("R4", "P2", "2024-01-03", days=8.0),
        ]
    )
    assert set(hits_of("med_overlapping_long_supply", ds)) == {"P2"}  # 7 days is not "more than 7"
    assert set(
        hits_of("med_overlapping_long_supply", ds, overrides={"med_overlapping_long_supply": {"prev_supply_over": 6}})
    ) == {"P1", "P2"}
