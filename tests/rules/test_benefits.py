"""Default rules on deaths, pensions and benefits: fire and near miss."""

from __future__ import annotations

from tests.factories import make_dataset
from tests.rules.support import hits_of

DEAD = [dict(person_id="P1", death_date="2024-03-15")]


def ben(person, month, kind, amount):
    return dict(person_id=person, month=month, benefit_type=kind, amount=amount)


def contrib(person, month, paid, employer="E1", due=None, base=None):
    return dict(employer_id=employer, person_id=person, month=month, paid=paid, due=due, base=base)


def test_activity_after_death_fires_on_visit_purchase_and_benefit():
    ds = make_dataset(
        persons=DEAD,
        visits=[dict(visit_id="V1", person_id="P1", clinic_id="C1", date="2024-03-20", amount=300.0)],
        purchases=[dict(purchase_id="R1", person_id="P1", pharmacy_id="H1", date="2024-04-02", amount=60.0)],
        benefits=[ben("P1", "2024-04", "pension", 3000.0)],
    )
    ev = hits_of("any_activity_after_death", ds)["P1"]
    assert [
        (r["source"], r["record_id"], r["place_id"], r["date"], r["month"], r["amount"], r["death_date"])
        for r in ev["records"]
    ] == [
        ("visits", "V1", "C1", "2024-03-20", "2024-03", 300.0, "2024-03-15"),
        ("purchases", "R1", "H1", "2024-04-02", "2024-04", 60.0, "2024-03-15"),
        ("benefits", None, "pension", None, "2024-04", 3000.0, "2024-03-15"),
    ]


def test_activity_after_death_near_miss_on_death_day_and_death_month():
    ds = make_dataset(
        persons=DEAD + [dict(person_id="P2")],
        visits=[
            dict(visit_id="V1", person_id="P1", clinic_id="C1", date="2024-03-15"),
            dict(visit_id="V2", person_id="P2", clinic_id="C1", date="2030-01-01"),
        ],
        benefits=[ben("P1", "2024-03", "pension", 3000.0)],
    )
    assert hits_of("any_activity_after_death", ds) == {}


def test_pension_after_death_fires_with_months_after():
    ds = make_dataset(
        persons=DEAD, benefits=[ben("P1", "2024-03", "pension", 3000.0), ben("P1", "2024-05", "pension", 3000.0)]
    )
    rec = hits_of("ben_pension_after_death", ds)["P1"]["records"]
    assert rec == [
        {
            "month": "2024-05",
            "benefit_type": "pension",
            "amount": 3000.0,
            "death_date": "2024-03-15",
            "months_after_death": 2,
        }
    ]


def test_pension_after_death_near_miss_other_benefit_type():
    ds = make_dataset(
        persons=DEAD, benefits=[ben("P1", "2024-05", "injury", 800.0), ben("P1", "2024-03", "pension", 3000.0)]
    )
    assert hits_of("ben_pension_after_death", ds) == {}


def test_unemployment_while_contributing_fires_with_the_employer_and_paid():
    ds = make_dataset(
        benefits=[ben("P1", "2024-02", "unemployment", 1800.0)], contributions=[contrib("P1", "2024-02", 450.0, "E7")]
    )
    rec = hits_of("ben_unemployment_while_contributing", ds)["P1"]["records"]
    assert rec == [
        {"month": "2024-02", "benefit_type": "unemployment", "amount": 1800.0, "employer_id": "E7", "paid": 450.0}
    ]


def test_unemployment_while_contributing_near_miss_unpaid_or_other_month():
    ds = make_dataset(
        benefits=[
            ben("P1", "2024-02", "unemployment", 1800.0),
            ben("P2", "2024-02", "unemployment", 1800.0),
            ben("P3", "2024-02", "pension", 3000.0),
        ],
        contributions=[contrib("P1", "2024-02", 0.0), contrib("P2", "2024-03", 450.0), contrib("P3", "2024-02", 450.0)],
    )
    assert hits_of("ben_unemployment_while_contributing", ds) == {}


def test_benefit_fraud_over_10000_fires_and_caps_grade():
    months = [f"2024-0{m}" for m in range(4, 8)]  # 4 months after death x 3000 = 12000
    ds = make_dataset(persons=DEAD, benefits=[ben("P1", m, "pension", 3000.0) for m in months])
    result_hits = hits_of("ben_fraud_over_10000", ds)
    ev = result_hits["P1"]
    assert ev["n_records"] == 4
    assert {r["reason"] for r in ev["records"]} == {"after_death"}
    assert ev["records"][0]["total_amount"] == 12000.0
    from tests.rules.support import run

    assert run("ben_fraud_over_10000", ds).hits["grade_cap"].tolist() == ["D"]


def test_benefit_fraud_counts_unemployment_while_employed_by_spell():
    ds = make_dataset(
        employment=[dict(person_id="P2", employer_id="E1", start_date="2023-12-20")],
        benefits=[ben("P2", f"2024-0{m}", "unemployment", 1800.0) for m in range(1, 7)]
        + [ben("P2", "2023-12", "unemployment", 1800.0)],  # spell starts mid-month: eligible
    )
    ev = hits_of("ben_fraud_over_10000", ds)["P2"]
    assert ev["n_records"] == 6 and ev["records"][0]["total_amount"] == 10800.0
    assert {r["reason"] for r in ev["records"]} == {"while_employed"}


def test_benefit_fraud_near_miss_exactly_10000():
    ds = make_dataset(
        persons=DEAD,
        benefits=[
            ben("P1", "2024-04", "pension", 5000.0),
            ben("P1", "2024-05", "pension", 5000.0),
            ben("P1", "2024-03", "pension", 5000.0),
        ],
    )  # death month: eligible
    assert hits_of("ben_fraud_over_10000", ds) == {}


def test_claim_after_ineligible_fires_on_seventh_month():
    ds = make_dataset(
        benefits=[ben("P1", f"2024-{m:02d}", "unemployment", 500.0) for m in range(1, 8)],
        contributions=[contrib("P1", f"2024-{m:02d}", 300.0) for m in range(1, 8)],
    )
    ev = hits_of("ben_claim_after_ineligible_6m", ds)["P1"]
    assert ev["n_records"] == 7 and ev["records"][0]["n_months"] == 7
    assert ev["records"][-1]["month"] == "2024-07"


def test_claim_after_ineligible_near_miss_six_months():
    ds = make_dataset(
        benefits=[ben("P1", f"2024-{m:02d}", "unemployment", 5000.0) for m in range(1, 7)],
        contributions=[contrib("P1", f"2024-{m:02d}", 300.0) for m in range(1, 7)],
    )
    assert hits_of("ben_claim_after_ineligible_6m", ds) == {}
