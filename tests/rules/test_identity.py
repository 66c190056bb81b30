"""Identity rules: invalid ID numbers (a finding, never a load error), and on resolved persons a
pension during custody, two pensions, two enrolments, and a registry death counted once."""

from __future__ import annotations

import pandas as pd

from graph.resolve.golden import golden_dataset
from tests.factories import make_dataset
from tests.rules.support import hits_of, run


def test_invalid_id_numbers_fire_with_the_failed_check_and_never_the_number():
    ds = make_dataset(
        persons=[
            dict(person_id="P1", id_number="11010519491231002X", gender="F", birth_date="1949-12-31"),
            dict(person_id="P2", id_number="110105491231002", gender="F", birth_date="1949-12-31"),
            dict(person_id="P3", id_number="110105194912310021"),
            dict(person_id="P4", id_number="11010519491231002X", gender="M"),
            dict(person_id="P5", id_number="not a number"),
            dict(person_id="P6"),
        ]
    )
    hits = hits_of("dq_invalid_id_number", ds)
    assert sorted(hits) == ["P3", "P4", "P5"]
    assert [r["problem"] for r in hits["P3"]["records"]] == ["checksum"]
    assert [r["problem"] for r in hits["P4"]["records"]] == ["gender_mismatch"]
    assert hits["P5"]["records"][0]["id_form"] == "other"
    assert "11010519491231002" not in str(hits)


# --- rules that only resolved persons show (run on the golden dataset) ---------------------------


# P1 and P1B are one human (two source systems); P2 is someone else
GOLDEN = pd.Series({"P1": "P1", "P1B": "P1", "P2": "P2"})


def pension(person, month, amount=3000.0):
    return dict(person_id=person, month=month, benefit_type="pension", amount=amount)


def test_two_pensions_of_one_golden_person_fire_once_per_month_with_the_extra_amount():
    ds = make_dataset(
        persons=[dict(person_id="P1"), dict(person_id="P1B"), dict(person_id="P2")],
        benefits=[pension("P1", "2025-07"), pension("P1B", "2025-07", 2500.0), pension("P1", "2025-08")]
        + [pension("P2", "2025-07"), pension("P2", "2025-07")],  # one record paid twice: not this rule
    )
    hits = hits_of("dup_two_pensions", golden_dataset(ds, GOLDEN))
    assert list(hits) == ["P1"]
    [rec] = hits["P1"]["records"]
    assert (rec["month"], rec["amount"], rec["n_records"], rec["total_paid"]) == ("2025-07", 2500.0, 2, 5500.0)
    # before resolution the two records are two people: nothing fires
    assert hits_of_or_skipped("dup_two_pensions", ds) == {}


def hits_of_or_skipped(rule_id, ds):
    result = run(rule_id, ds)
    return {row.entity_id: row for row in result.hits.itertuples()}


def test_two_enrolments_of_one_golden_person():
    ds = make_dataset(
        persons=[dict(person_id="P1"), dict(person_id="P1B"), dict(person_id="P2")],
        contributions=[
            dict(employer_id="E1", person_id="P1", month="2025-07", due=800.0, paid=800.0),
            dict(employer_id="E2", person_id="P1B", month="2025-07", due=600.0, paid=600.0),
            dict(employer_id="E1", person_id="P2", month="2025-07", due=800.0, paid=800.0),
            dict(employer_id="E2", person_id="P2", month="2025-07", due=600.0, paid=600.0),  # two jobs, one record
        ],
    )
    hits = hits_of("dup_two_enrolments", golden_dataset(ds, GOLDEN))
    assert list(hits) == ["P1"]
    [rec] = hits["P1"]["records"]
    assert (rec["month"], rec["n_records"], rec["employers"]) == ("2025-07", 2, "E1,E2")


def test_pension_during_custody_needs_the_whole_month_inside_the_term():
    ds = make_dataset(
        persons=[dict(person_id="P1"), dict(person_id="P1B"), dict(person_id="P2")],
        benefits=[pension("P1B", "2025-07"), pension("P1B", "2025-08"), pension("P2", "2025-08")],
        custody=[
            dict(registry_id="K1", name="x", start_date="2025-07-10", end_date=None),
            dict(registry_id="K2", name="y", start_date="2025-07-01", end_date="2025-08-30"),
        ],
    )
    matches = pd.DataFrame(
        {
            "table": ["custody", "custody"],
            "registry_id": ["K1", "K2"],
            "person_id": ["P1", "P2"],
            "match_probability": [0.99, 0.97],
            "low_confidence": [False, False],
        }
    )
    hits = hits_of("reg_pension_during_custody", golden_dataset(ds, GOLDEN, matches))
    # P1's term starts on 07-10: July is not wholly inside, August is (no end); P2's ends 08-30
    assert list(hits) == ["P1"]
    assert [(r["month"], r["registry_id"]) for r in hits["P1"]["records"]] == [("2025-08", "K1")]


def test_a_registry_death_feeds_the_after_death_rule_once_per_golden_person():
    ds = make_dataset(
        persons=[dict(person_id="P1", death_date=None), dict(person_id="P1B"), dict(person_id="P2")],
        benefits=[pension("P1", "2025-09"), pension("P1B", "2025-09", 2500.0)],
        deaths=[dict(registry_id="D1", name="x", death_date="2025-06-15")],
    )
    matches = pd.DataFrame(
        {"table": ["deaths"], "registry_id": ["D1"], "person_id": ["P1B"], "match_probability": [0.99]}
    ).assign(low_confidence=False)
    golden = golden_dataset(ds, GOLDEN, matches)
    assert golden.table("persons").set_index("person_id").loc["P1", "death_date"] == pd.Timestamp("2025-06-15")
    hits = hits_of("ben_pension_after_death", golden)
    assert list(hits) == ["P1"]
    assert sorted(r["amount"] for r in hits["P1"]["records"]) == [2500.0, 3000.0]
