"""Default employer and agency rules: fire and near miss."""

from __future__ import annotations

from tests.factories import make_dataset
from tests.rules.support import hits_of


def contrib(person, month, employer="E1", due=100.0, paid=100.0, base=5000.0):
    return dict(employer_id=employer, person_id=person, month=month, due=due, paid=paid, base=base)


def test_arrears_fires_on_three_short_months():
    rows = [contrib("P1", f"2024-0{m}", paid=40.0 if m < 4 else 100.0) for m in range(1, 6)]
    rows += [contrib("P2", f"2024-0{m}") for m in range(1, 6)]
    ev = hits_of("emp_contribution_arrears", make_dataset(contributions=rows))["E1"]
    assert ev["records"] == [
        {"month": f"2024-0{m}", "due": 200.0, "paid": 140.0, "shortfall": 60.0, "persons": 2} for m in range(1, 4)
    ]


def test_arrears_near_miss_two_months():
    rows = [contrib("P1", f"2024-0{m}", paid=0.0 if m < 3 else 100.0) for m in range(1, 6)]
    assert hits_of("emp_contribution_arrears", make_dataset(contributions=rows)) == {}


def test_base_below_wage_fires_with_the_person_months():
    ds = make_dataset(
        employment=[
            dict(person_id="P1", employer_id="E1", monthly_wage=10000.0),
            dict(person_id="P2", employer_id="E1", monthly_wage=5000.0),
        ],
        contributions=[contrib("P1", "2024-01", base=3000.0), contrib("P2", "2024-01", base=5000.0)],
    )
    rec = hits_of("emp_base_below_wage", ds)["E1"]["records"]
    assert rec == [
        {"person_id": "P1", "month": "2024-01", "base": 3000.0, "monthly_wage": 10000.0, "base_to_wage": 0.3}
    ]


def test_base_below_wage_near_miss_at_80_percent_or_other_employer():
    ds = make_dataset(
        employment=[
            dict(person_id="P1", employer_id="E1", monthly_wage=10000.0),
            dict(person_id="P2", employer_id="E2", monthly_wage=10000.0),
        ],
        contributions=[contrib("P1", "2024-01", base=8000.0), contrib("P2", "2024-01", "E3", base=1000.0)],
    )
    assert hits_of("emp_base_below_wage", ds) == {}


def _insured(employer, n, month="2024-01"):
    return [contrib(f"{employer}P{i}", month, employer) for i in range(n)]


def _employed(employer, n):
    return [dict(person_id=f"{employer}P{i}", employer_id=employer) for i in range(n)]


def test_headcount_inflation_fires_from_contributions_and_employment_alone():
    ds = make_dataset(contributions=_insured("E1", 12) + _insured("E1", 5, "2024-02"), employment=_employed("E1", 3))
    rec = hits_of("emp_headcount_inflation", ds)["E1"]["records"]
    assert rec == [
        {"peak_month": "2024-01", "insured": 12, "headcount": 3.0, "headcount_source": "employment", "excess": 9.0}
    ]


def test_headcount_inflation_near_miss_three_times_exactly_or_small():
    ds = make_dataset(contributions=_insured("E1", 12) + _insured("E2", 9), employment=_employed("E1", 4))
    assert hits_of("emp_headcount_inflation", ds) == {}


def test_headcount_inflation_uses_an_employers_staff_column_when_set():
    ds = make_dataset(
        contributions=_insured("E1", 12), employment=_employed("E1", 12), employers=[dict(employer_id="E1", staff=2)]
    )
    assert hits_of("emp_headcount_inflation", ds) == {}
    ev = hits_of("emp_headcount_inflation", ds, overrides={"emp_headcount_inflation": {"headcount_column": "staff"}})
    assert ev["E1"]["records"][0]["headcount_source"] == "staff"


def test_fake_enrolment_serious_fires_over_20_extra_persons_with_grade_cap():
    from tests.rules.support import run

    ds = make_dataset(contributions=_insured("E1", 30), employment=_employed("E1", 5))
    hits = run("emp_fake_enrolment_serious", ds).hits
    assert hits[["entity_id", "grade_cap", "severity"]].values.tolist() == [["E1", "D", 4]]


def test_fake_enrolment_serious_near_miss_20_extra():
    ds = make_dataset(contributions=_insured("E1", 25), employment=_employed("E1", 5))
    assert hits_of("emp_fake_enrolment_serious", ds) == {}


def _placements(agency, persons, employers):
    return [dict(person_id=f"{agency}P{i}", employer_id=f"S{i % employers}", agency_id=agency) for i in range(persons)]


def test_agency_shell_routing_fires_with_each_shell():
    ds = make_dataset(employment=_placements("A1", 20, 5))
    ev = hits_of("agency_shell_routing", ds)["A1"]
    assert ev["records"] == [{"employer_id": f"S{i}", "persons_placed": 4, "employer_size": 4} for i in range(5)]


def test_agency_shell_routing_counts_agency_links():
    rows = _placements("A1", 20, 5)
    links = [dict(agency_id="A1", entity_type="person", entity_id=r["person_id"], relation="placed") for r in rows]
    ds = make_dataset(employment=[{k: v for k, v in r.items() if k != "agency_id"} for r in rows], agency_links=links)
    assert list(hits_of("agency_shell_routing", ds)) == ["A1"]


def test_agency_shell_routing_near_miss_four_employers_or_large_ones():
    big = _placements("A2", 20, 5) + [dict(person_id=f"X{i}", employer_id="S0") for i in range(10)]
    ds = make_dataset(employment=_placements("A1", 20, 4) + [{**r, "employer_id": "B" + r["employer_id"]} for r in big])
    assert hits_of("agency_shell_routing", ds) == {}
