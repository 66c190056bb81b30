"""Labour supervision records of the synthetic world: inspections, wage arrears and commitments.

Drawn from their own generator (the dataset seed and this module's stream number), after the rest
of the world is built, so every other table of a seed stays byte-identical. The planted cases go
to `truth/supervision.csv` (employer_id, pattern), which the pipeline never reads:

- integrity grade C, one criterion each (人社部规〔2016〕1号 Article 7): `c_repeat` (three
  violations in the year), `c_child_labour`, `c_forced_labour`, `c_mass_incident`,
  `c_order_ignored`, `c_obstruction`, `c_criminal`; fake-enrolment shells also get an
  uncorrected social-insurance finding (an order ignored once its deadline passed);
- the wage-arrears list (人社部令第45号): `arrears_listed` (at the criminal threshold, unpaid),
  `arrears_group` (a mass incident), `arrears_repaired` (repaid, a fulfilled commitment: early
  removal), `arrears_expired` (listed in 2022: the three-year period is over), `arrears_below`
  (small, repaid: never listed).

Honest employers: about a third inspected in the year, most with no violation, some with a minor
one corrected within a month; a fifth make a credit commitment (信用承诺), nearly all kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synth.params import YEAR
from synth.world import World

STREAM = 22  # this module's generator: default_rng([seed, STREAM])
C_CRITERIA = (
    ("c_repeat", "wages"),
    ("c_child_labour", "child_labour"),
    ("c_forced_labour", "forced_labour"),
    ("c_mass_incident", "mass_incident"),
    ("c_order_ignored", "order_ignored"),
    ("c_obstruction", "obstruction"),
    ("c_criminal", "criminal_liability"),
)
ARREARS_CASES = ("arrears_listed", "arrears_group", "arrears_repaired", "arrears_expired", "arrears_below")
MINOR_FINDINGS = ("wages", "contract", "hours", "social_insurance", "minimum_wage")
INSPECTED_SHARE = 0.33
VIOLATION_SHARE = 0.4  # of honest inspections
COMMITMENT_SHARE = 0.2  # employers making a credit commitment
PERSON_COMMITMENT_SHARE = 0.02


def employer_ids(n: int) -> np.ndarray:
    """The writer's employer ids (E00001, ...)."""
    width = max(5, len(str(n)))
    return np.array([f"E{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def person_ids(n: int) -> np.ndarray:
    width = max(7, len(str(n)))
    return np.array([f"P{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _day(rng: np.random.Generator, k: int, lo: str, hi: str) -> np.ndarray:
    """k dates uniformly in [lo, hi]."""
    a, b = np.datetime64(lo), np.datetime64(hi)
    return a + rng.integers(0, int((b - a).astype(int)) + 1, k).astype("timedelta64[D]")


def build_supervision(w: World) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """(inspections, wage_arrears, commitments) frames and the planted truth."""
    seed = w.rng.bit_generator.seed_seq.entropy  # type: ignore[attr-defined]
    rng = np.random.default_rng([int(seed), STREAM])
    n_e = w.n_employers
    eids = employer_ids(n_e)
    order = rng.permutation(n_e)
    shells = np.flatnonzero(w.e_shell)
    free = order[~np.isin(order, shells)]
    k_c = max(len(C_CRITERIA), round(0.01 * n_e))
    k_w = max(len(ARREARS_CASES), round(0.01 * n_e))
    if len(free) < k_c + k_w:  # a tiny world: as many cases as there are employers, at least one each
        k_c = max(1, len(free) // 2)
        k_w = max(1, len(free) - k_c)
    c_emp, w_emp, rest = free[:k_c], free[k_c : k_c + k_w], free[k_c + k_w :]
    if len(w_emp) == 0:
        w_emp = order[-1:]
    truth: list[tuple[str, str]] = []
    insp: list[pd.DataFrame] = []

    def inspections(
        emp: np.ndarray, finding: np.ndarray, severity: np.ndarray, date: np.ndarray, **cols: object
    ) -> None:
        frame = pd.DataFrame({"employer_id": eids[emp], "date": date, "finding": finding, "severity": severity})
        for name, value in cols.items():
            frame[name] = value
        insp.append(frame)

    # honest employers: a third inspected, most clean, some minor violations corrected in a month
    seen = rest[rng.random(len(rest)) < INSPECTED_SHARE]
    violation = rng.random(len(seen)) < VIOLATION_SHARE
    date = _day(rng, len(seen), f"{YEAR}-01-05", f"{YEAR}-11-30")
    inspections(
        seen,
        np.where(violation, rng.choice(MINOR_FINDINGS, len(seen)), "none"),
        np.ones(len(seen), dtype=int),
        date,
        penalty_amount=np.where(violation & (rng.random(len(seen)) < 0.3), 2000.0, np.nan),
        corrected_date=np.where(violation, date + rng.integers(5, 30, len(seen)).astype("timedelta64[D]"), None),
    )
    # shells: an uncorrected social-insurance finding early in the year (an order ignored)
    if len(shells):
        inspections(
            shells,
            np.full(len(shells), "social_insurance"),
            np.full(len(shells), 2),
            _day(rng, len(shells), f"{YEAR}-02-01", f"{YEAR}-06-30"),
            penalty_amount=np.nan,
            corrected_date=None,
        )
    # integrity grade C, one criterion each
    for i, e in enumerate(c_emp):
        pattern, finding = C_CRITERIA[i % len(C_CRITERIA)]
        truth.append((eids[e], pattern))
        k = 3 if pattern == "c_repeat" else 1
        dates = np.sort(_day(rng, k, f"{YEAR}-01-10", f"{YEAR}-11-20"))
        inspections(
            np.full(k, e),
            np.full(k, finding),
            np.full(k, 1 if pattern == "c_repeat" else 3),
            dates,
            penalty_amount=np.full(k, 10000.0),
            corrected_date=dates + np.timedelta64(20, "D") if pattern == "c_repeat" else None,
        )
    frame = pd.concat(insp, ignore_index=True).sort_values(["employer_id", "date"], kind="mergesort")
    frame.insert(0, "inspection_id", [f"I{i:06d}" for i in range(1, len(frame) + 1)])
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    frame["corrected_date"] = pd.to_datetime(frame["corrected_date"]).dt.strftime("%Y-%m-%d")

    # wage arrears, one planted case each
    arrears: list[dict[str, object]] = []
    commitments: list[dict[str, object]] = []
    for i, e in enumerate(w_emp):
        case = ARREARS_CASES[i % len(ARREARS_CASES)]
        truth.append((eids[e], case))
        persons = int(rng.integers(10, 30))
        if case == "arrears_listed":
            rows = [(f"{YEAR}-{m:02d}", persons, persons * 4200.0, 0.0, 0) for m in (3, 4, 5)]
        elif case == "arrears_group":
            rows = [(f"{YEAR}-08", persons, persons * 3000.0, 0.0, 1)]
        elif case == "arrears_repaired":
            rows = [(f"{YEAR - 1}-{m:02d}", persons, persons * 4000.0, persons * 4000.0, 0) for m in (9, 10, 11)]
            commitments.append(
                {"entity_type": "employer", "entity_id": eids[e], "date": f"{YEAR}-01-15", "kind": "correction_pledge"}
                | {"fulfilled": 1}
            )
        elif case == "arrears_expired":
            rows = [(f"{YEAR - 3}-{m:02d}", persons, persons * 3800.0, 0.0, 0) for m in (1, 2, 3)]
        else:
            rows = [(f"{YEAR}-06", 1, 2000.0, 2000.0, 0)]
        arrears += [
            {
                "employer_id": eids[e],
                "month": m,
                "persons_affected": float(p),
                "amount_owed": owed,
                "amount_repaid": repaid,
                "group_incident": g,
            }
            for m, p, owed, repaid, g in rows
        ]
    # credit commitments: a fifth of the honest employers, nearly all kept; a few persons too
    pledged = rest[rng.random(len(rest)) < COMMITMENT_SHARE]
    if len(pledged) == 0:  # a tiny world still shows one
        pledged = order[:1]
    kept = (rng.random(len(pledged)) < 0.9).astype(int)
    dates = pd.Series(_day(rng, len(pledged), f"{YEAR - 2}-01-01", f"{YEAR}-06-30")).dt.strftime("%Y-%m-%d")
    commitments += [
        {"entity_type": "employer", "entity_id": eids[e], "date": d, "kind": "credit_commitment", "fulfilled": f}
        for e, d, f in zip(pledged, dates, kept, strict=True)
    ]
    pids = person_ids(w.n)
    people = np.flatnonzero(rng.random(w.n) < PERSON_COMMITMENT_SHARE)
    dates = pd.Series(_day(rng, len(people), f"{YEAR - 1}-01-01", f"{YEAR}-06-30")).dt.strftime("%Y-%m-%d")
    commitments += [
        {"entity_type": "person", "entity_id": pids[p], "date": d, "kind": "credit_commitment", "fulfilled": 1}
        for p, d in zip(people, dates, strict=True)
    ]
    com = pd.DataFrame(commitments, columns=["entity_type", "entity_id", "date", "kind", "fulfilled"])
    com = com.sort_values(["entity_type", "entity_id", "date"], kind="mergesort")
    com.insert(0, "commitment_id", [f"K{i:06d}" for i in range(1, len(com) + 1)])
    wage_columns = ["employer_id", "month", "persons_affected", "amount_owed", "amount_repaid", "group_incident"]
    wage = pd.DataFrame(arrears, columns=wage_columns).sort_values(["employer_id", "month"], kind="mergesort")
    tables = {"inspections": frame, "wage_arrears": wage, "commitments": com}
    truth_frame = pd.DataFrame(truth, columns=["employer_id", "pattern"]).drop_duplicates("employer_id", keep="last")
    return tables, truth_frame.sort_values("employer_id")


def write_supervision(w: World, out: Path) -> dict[str, int]:
    """The three tables as CSV and truth/supervision.csv; rows per table."""
    tables, truth = build_supervision(w)
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False, float_format="%.2f")
    truth.to_csv(out / "truth" / "supervision.csv", index=False)
    return {name: len(frame) for name, frame in tables.items()}
