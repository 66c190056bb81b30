"""The official scheme presets: the labour-security integrity grade on 40 hand-built employers
(one per row, the clause of 人社部规〔2016〕1号 Article 7 named), and the wage-arrears list's
lifecycle (人社部令第45号: listing, three-year period, early removal after a correction and a
fulfilled commitment)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from graph.dataset import Dataset, dataset_from_frames
from rules.pack import PackProblem
from rules.schemes import (
    IntegrityScheme,
    ListScheme,
    SchemeError,
    integrity_grades,
    list_status,
    load_schemes,
    parse_scheme,
)

AS_OF = pd.Timestamp("2025-12-31")
SCHEMES = {s.name: s for s in load_schemes()}
INTEGRITY = SCHEMES["labour_integrity"]
WAGES = SCHEMES["wage_arrears_list"]
assert isinstance(INTEGRITY, IntegrityScheme) and isinstance(WAGES, ListScheme)

A, B = "第七条（一）", "第七条（二）"
C1, C2, C3, C4, C5, C6 = (f"第七条（三）{i}" for i in range(1, 7))


def insp(
    date: str, finding: str, severity: int = 1, corrected: str | None = None, penalty: float | None = None
) -> dict:
    return {"date": date, "finding": finding, "severity": severity, "corrected_date": corrected, "penalty": penalty}


def wage(month: str, persons: int = 3, owed: float = 9000, repaid: float = 0, group: int = 0) -> dict:
    return {"month": month, "persons": persons, "owed": owed, "repaid": repaid, "group": group}


# (case, inspections, wage arrears, expected grade, clause named by the regulation)
CASES: list[tuple[str, list[dict], list[dict], str, str]] = [
    # A: not found in violation in the year
    ("no records at all", [], [], "A", A),
    ("inspected, nothing found", [insp("2025-03-01", "none")], [], "A", A),
    ("three clean inspections", [insp(f"2025-0{m}-01", "none") for m in (2, 5, 8)], [], "A", A),
    ("finding coded no_violation", [insp("2025-04-01", "no_violation")], [], "A", A),
    ("a violation before the year", [insp("2024-06-01", "wages")], [], "A", A),
    ("three violations before the year", [insp(f"2024-0{m}-01", "hours") for m in (3, 4, 5)], [], "A", A),
    ("child labour before the year", [insp("2024-11-01", "child_labour", 3)], [], "A", A),
    ("wage arrears, no incident", [], [wage("2025-05")], "A", A),
    ("a group incident before the year", [], [wage("2024-11", group=1)], "A", A),
    ("violation on the day the year began", [insp("2024-12-31", "wages")], [], "A", A),
    # B: found in violation, none of the C cases
    ("one minor violation, corrected", [insp("2025-03-01", "wages", 1, "2025-03-10")], [], "B", B),
    ("two violations", [insp("2025-03-01", "wages", 1, "2025-03-10"), insp("2025-06-01", "hours")], [], "B", B),
    ("minor violation never corrected", [insp("2025-02-01", "contract", 1)], [], "B", B),
    ("serious finding corrected in time", [insp("2025-02-01", "social_insurance", 2, "2025-04-01")], [], "B", B),
    ("uncorrected, deadline not yet passed", [insp("2025-11-15", "social_insurance", 2)], [], "B", B),
    ("severity 3 corrected on day 89", [insp("2025-01-10", "wages", 3, "2025-04-09")], [], "B", B),
    ("heavy penalty, corrected", [insp("2025-05-01", "wages", 2, "2025-05-20", 50000.0)], [], "B", B),
    (
        "two in the year, one before",
        [insp("2024-10-01", "wages"), insp("2025-02-01", "wages"), insp("2025-07-01", "hours")],
        [],
        "B",
        B,
    ),
    (
        "a clean and a violating inspection",
        [insp("2025-02-01", "none"), insp("2025-09-01", "minimum_wage")],
        [],
        "B",
        B,
    ),
    ("corrected exactly at the deadline", [insp("2025-01-10", "wages", 2, "2025-04-10")], [], "B", B),
    (
        "mass incident before the year, a minor violation in it",
        [insp("2024-10-01", "mass_incident", 3), insp("2025-06-01", "hours", 1, "2025-06-05")],
        [],
        "B",
        B,
    ),
    # C1: found in violation three or more times
    ("three violations", [insp(f"2025-0{m}-01", "wages", 1, f"2025-0{m}-05") for m in (2, 5, 8)], [], "C", C1),
    (
        "four mixed violations",
        [insp(f"2025-0{m}-01", f) for m, f in zip((1, 3, 5, 7), ("wages", "hours", "contract", "wages"))],
        [],
        "C",
        C1,
    ),
    (
        "three violations, first on day one",
        [insp(d, "hours", 1, d) for d in ("2025-01-01", "2025-06-01", "2025-12-31")],
        [],
        "C",
        C1,
    ),
    # C2: a mass or extreme incident
    ("mass incident", [insp("2025-04-01", "mass_incident", 3)], [], "C", C2),
    ("extreme incident", [insp("2025-04-01", "extreme_incident", 3, "2025-04-10")], [], "C", C2),
    ("unpaid wages set off a mass incident", [], [wage("2025-05", 20, 60000, group=1)], "C", C2),
    ("group incident in the last month", [], [wage("2025-12", 12, 40000, group=1)], "C", C2),
    # C3: child or forced labour
    ("child labour", [insp("2025-05-01", "child_labour", 3)], [], "C", C3),
    ("forced labour", [insp("2025-05-01", "forced_labour", 3)], [], "C", C3),
    ("child labour, corrected", [insp("2025-05-01", "child_labour", 3, "2025-05-03")], [], "C", C3),
    # C4: an order, decision or penalty not carried out
    ("order ignored", [insp("2025-05-01", "order_ignored", 2)], [], "C", C4),
    ("serious finding uncorrected past the deadline", [insp("2025-03-01", "social_insurance", 2)], [], "C", C4),
    ("severity 3 corrected 120 days late", [insp("2025-01-10", "wages", 3, "2025-05-10")], [], "C", C4),
    (
        "order ignored and child labour",
        [insp("2025-02-01", "order_ignored", 2), insp("2025-03-01", "child_labour", 3)],
        [],
        "C",
        C4,
    ),
    # C5: obstructing inspection
    ("obstruction", [insp("2025-06-01", "obstruction", 3, "2025-06-02")], [], "C", C5),
    (
        "obstruction among clean inspections",
        [insp("2025-02-01", "none"), insp("2025-06-01", "obstruction", 3, "2025-06-02")],
        [],
        "C",
        C5,
    ),
    # C6: criminal liability
    ("criminal liability", [insp("2025-07-01", "criminal_liability", 3, "2025-07-15")], [], "C", C6),
    (
        "criminal liability and three violations",
        [
            insp("2025-07-01", "criminal_liability", 3, "2025-07-15"),
            insp("2025-08-01", "wages"),
            insp("2025-09-01", "hours"),
        ],
        [],
        "C",
        C6,
    ),
    ("criminal liability on the last day", [insp("2025-12-31", "criminal_liability", 3, "2025-12-31")], [], "C", C6),
]


def dataset_of(cases: list[tuple[str, list[dict], list[dict]]], commitments: list[dict] | None = None) -> Dataset:
    """One employer per case (E01, E02, ...) with its inspections and wage arrears."""
    ids = [f"E{i + 1:02d}" for i in range(len(cases))]
    inspections = [
        {
            "inspection_id": f"{e}-{j}",
            "employer_id": e,
            "date": r["date"],
            "finding": r["finding"],
            "severity": str(r["severity"]),
            "penalty_amount": r["penalty"],
            "corrected_date": r["corrected_date"],
        }
        for e, (_, rows, _) in zip(ids, cases)
        for j, r in enumerate(rows)
    ]
    arrears = [
        {
            "employer_id": e,
            "month": r["month"],
            "persons_affected": r["persons"],
            "amount_owed": r["owed"],
            "amount_repaid": r["repaid"],
            "group_incident": r["group"],
        }
        for e, (_, _, rows) in zip(ids, cases)
        for r in rows
    ]
    frames: dict[str, pd.DataFrame] = {
        "persons": pd.DataFrame({"person_id": ["P1"]}),
        "employers": pd.DataFrame({"employer_id": ids}),
    }
    if inspections:
        frames["inspections"] = pd.DataFrame(inspections)
    if arrears:
        frames["wage_arrears"] = pd.DataFrame(arrears)
    if commitments:
        frames["commitments"] = pd.DataFrame(commitments)
    return dataset_from_frames(frames)


def test_the_table_covers_every_criterion_with_forty_cases() -> None:
    assert len(CASES) == 40
    assert {clause for *_, clause in CASES} == {A, B, C1, C2, C3, C4, C5, C6}
    assert {c.clause for c in INTEGRITY.criteria} <= {B, C1, C2, C3, C4, C5, C6}


def test_every_case_gets_the_grade_the_regulation_gives() -> None:
    ds = dataset_of([(name, i, w) for name, i, w, *_ in CASES])
    out = integrity_grades(ds, INTEGRITY, AS_OF).set_index("entity_id")
    wrong = []
    for k, (name, _, _, grade, clause) in enumerate(CASES):
        row = out.loc[f"E{k + 1:02d}"]
        clauses = {c["clause"] for c in json.loads(row["criteria"])} | {row["clause"]}
        if row["status"] != grade or clause not in clauses:
            wrong.append((name, grade, clause, row["status"], sorted(clauses)))
    assert not wrong


def test_a_grade_c_answer_carries_the_records_that_show_it() -> None:
    ds = dataset_of([("obstruction", [insp("2025-06-01", "obstruction", 3, "2025-06-02")], [])])
    row = integrity_grades(ds, INTEGRITY, AS_OF).iloc[0]
    evidence = json.loads(row["evidence"])
    assert row["status"] == "C" and row["clause"] == C5
    assert evidence[0]["inspection_id"] == "E01-0" and "c_obstruction" in evidence[0]["criteria"]


# -- the wage-arrears list -----------------------------------------------------------------------

AT_THRESHOLD = [wage(f"2022-0{m}", 12, 40000) for m in (1, 2, 3)]  # >= 10 workers, >= 30,000


def status(ds: Dataset, as_of: str, corrections: pd.DataFrame | None = None) -> dict[str, Any]:
    return list_status(ds, WAGES, pd.Timestamp(as_of), corrections).iloc[0].to_dict()


def commitment(date: str, fulfilled: int, kind: str = "credit_commitment") -> dict:
    return {"commitment_id": f"K{date}", "entity_type": "employer", "entity_id": "E01", "date": date, "kind": kind} | {
        "fulfilled": fulfilled
    }


def test_a_listing_starts_after_the_order_deadline_and_expires_after_three_years() -> None:
    ds = dataset_of([("arrears", [], AT_THRESHOLD)])
    before = status(ds, "2022-01-31")
    listed = status(ds, "2024-12-31")
    expired = status(ds, "2025-12-31")
    assert before["status"] == "not_listed"
    assert listed["status"] == "listed" and listed["listed_date"] == "2022-03-02"  # 2022-01-31 + 30 days
    assert listed["expires_date"] == "2025-03-02" and listed["clause"] == "第五条（一）"
    assert expired["status"] == "expired" and expired["removed_date"] == "2025-03-02"
    assert expired["removal"] == "expired"


def test_small_arrears_are_not_listed_and_a_group_incident_is() -> None:
    ds = dataset_of([("small", [], [wage("2025-06", 1, 2000)]), ("incident", [], [wage("2025-06", 4, 8000, group=1)])])
    out = list_status(ds, WAGES, AS_OF).set_index("entity_id")
    assert out.loc["E01", "status"] == "not_listed"
    assert out.loc["E02", "status"] == "listed" and out.loc["E02", "clause"] == "第五条（二）"


def repaid_case(fulfilled: int) -> Dataset:
    arrears = [wage(f"2024-0{m}", 12, 40000, repaid=40000) for m in (3, 4, 5)]
    return dataset_of([("repaid", [], arrears)], [commitment("2025-01-15", fulfilled, "correction_pledge")])


def test_early_removal_needs_a_fulfilled_commitment() -> None:
    kept, broken = status(repaid_case(1), "2025-12-31"), status(repaid_case(0), "2025-12-31")
    assert kept["status"] == "removed" and kept["removal"] == "early_removal"
    assert kept["removed_date"] == "2025-07-15"  # six months after the correction
    assert broken["status"] == "listed" and broken["removed_date"] == ""


def test_early_removal_waits_six_months_after_the_correction() -> None:
    assert status(repaid_case(1), "2025-07-14")["status"] == "listed"
    assert status(repaid_case(1), "2025-07-15")["status"] == "removed"


def test_unpaid_wages_are_no_correction() -> None:
    arrears = [wage(f"2024-0{m}", 12, 40000) for m in (3, 4, 5)]
    ds = dataset_of([("unpaid", [], arrears)], [commitment("2025-01-15", 1)])
    assert status(ds, "2025-12-31")["status"] == "listed"


def test_a_correction_from_the_objection_path_counts_with_a_commitment() -> None:
    arrears = [wage(f"2024-0{m}", 12, 40000) for m in (3, 4, 5)]
    corrections = pd.DataFrame(
        {
            "entity_type": ["employer"],
            "entity_id": ["E01"],
            "corrected_date": [pd.Timestamp("2025-02-01")],
            "source": ["objection"],
        }
    )
    with_pledge = dataset_of([("corrected", [], arrears)], [commitment("2025-02-10", 1)])
    without = dataset_of([("corrected", [], arrears)])
    assert status(with_pledge, "2025-12-31", corrections)["removed_date"] == "2025-08-01"
    assert status(without, "2025-12-31", corrections)["status"] == "listed"


def test_new_arrears_after_the_correction_keep_the_listing() -> None:
    arrears = [wage(f"2024-0{m}", 12, 40000, repaid=40000) for m in (3, 4, 5)] + [wage("2025-04", 2, 3000)]
    ds = dataset_of([("again", [], arrears)], [commitment("2025-01-15", 1)])
    assert status(ds, "2025-12-31")["status"] == "listed"


# -- presets are validated like rule packs ----------------------------------------------------------


def test_a_bad_preset_is_refused_naming_file_criterion_and_field() -> None:
    data = INTEGRITY.model_dump(exclude={"file"})
    data["criteria"][1]["params"] = {"count": 0}
    data["criteria"][2]["test"] = "guess"
    with pytest.raises(SchemeError) as exc:
        parse_scheme(data, "bad.yaml")
    assert PackProblem("bad.yaml", "Input should be greater than or equal to 1", "c_repeat", "params.count") in (
        exc.value.problems
    )
    assert any(p.rule_id == "c_mass_incident" and p.field == "test" for p in exc.value.problems)


def test_the_presets_record_their_legal_basis_and_sources() -> None:
    for scheme in SCHEMES.values():
        assert scheme.legal_basis and all(s.note for s in scheme.sources)
    assert "人社部规〔2016〕1号" in INTEGRITY.legal_basis and "人社部令第45号" in WAGES.legal_basis
    assert WAGES.period.years == 3 and WAGES.early_removal.months_after_correction == 6
