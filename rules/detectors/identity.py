"""Identity and registries (一数一源): ID numbers failing GB 11643-1999, and what only resolved
persons show: a pension during a custody term, two pensions or two enrolments of one human.

They run on the golden dataset (graph/resolve/golden.py): `person_id` is the golden person, the
event tables keep each row's own record in `source_person_id`, and the registry tables carry the
golden `person_id` they matched. Registry deaths need no detector of their own: they feed
`persons.death_date`, so the after-death rules count them once per golden person."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from graph.dataset import Dataset
from graph.resolve.idnumber import PROBLEMS, check
from rules.cache import Cache
from rules.detectors.base import Detector, Params, _empty, _records


class InvalidIdNumberParams(Params):
    problems: list[str] = Field(default_factory=lambda: list(PROBLEMS), min_length=1)  # which failures fire


INVALID_ID_EVIDENCE = ("problem", "id_length", "id_form")


def invalid_id_number(ds: Dataset, p: InvalidIdNumberParams, cx: Cache) -> pd.DataFrame:
    """Person records whose ID number fails a GB 11643-1999 check (format, province code, birth
    date, check character) or disagrees with the record's own birth_date or gender. The evidence
    names the failed check and the number's length, never the number."""
    unknown = sorted(set(p.problems) - set(PROBLEMS))
    if unknown:
        raise ValueError(f"unknown ID-number problems {unknown}; choose from {list(PROBLEMS)}")
    persons = ds.table("persons")
    if persons.empty or "id_number" not in persons.columns:
        return _empty(INVALID_ID_EVIDENCE)
    checked = check(
        persons["id_number"],
        birth_date=persons["birth_date"] if "birth_date" in persons.columns else None,
        gender=persons["gender"] if "gender" in persons.columns else None,
    )
    rows = np.flatnonzero(checked.invalid & np.isin(checked.problem, p.problems))
    if not len(rows):
        return _empty(INVALID_ID_EVIDENCE)
    f = persons.iloc[rows]
    length = f["id_number"].astype("str").str.len().to_numpy()
    return _records(
        f["person_id"],
        {
            "problem": checked.problem[rows],
            "id_length": length,
            "id_form": np.where(length == 15, "15-digit", np.where(length == 18, "18-digit", "other")),
        },
        ["problem"],
    )


SOURCE = "source_person_id"


class DuringCustodyParams(Params):
    benefit_types: list[str] = Field(default_factory=lambda: ["pension"], min_length=1)


CUSTODY_EVIDENCE = ("month", "benefit_type", "amount", "registry_id", "start_date", "end_date", "match_probability")


def benefit_during_custody(ds: Dataset, p: DuringCustodyParams, cx: Cache) -> pd.DataFrame:
    """Benefits of the given types paid for a month that lies wholly inside a custody term of
    the person (a custody registry row matched to them; a term without an end is ongoing)."""
    c = ds.table("custody")
    c = c[c["person_id"].notna()] if "person_id" in c.columns else c.iloc[:0]
    b = ds.table("benefits")
    b = b[b["benefit_type"].isin(p.benefit_types)]
    if c.empty or b.empty:
        return _empty(CUSTODY_EVIDENCE)
    return custody_records(b, c)


def custody_records(b: pd.DataFrame, c: pd.DataFrame) -> pd.DataFrame:
    """The decision and its evidence on benefit rows of the chosen types against the matched
    custody rows: every benefit row of a person and month decides alike, so any of them may be left
    out."""
    j = b[["person_id", "month", "benefit_type", "amount"]].merge(
        c[["person_id", "registry_id", "start_date", "end_date", "match_probability"]], on="person_id"
    )
    first = pd.to_datetime(j["month"] + "-01")
    last = first + pd.offsets.MonthEnd(0)
    inside = (j["start_date"] <= first) & (j["end_date"].isna() | (j["end_date"] >= last))
    j = j[inside.to_numpy()].drop_duplicates(["person_id", "month", "benefit_type", "amount"])
    return _records(
        j["person_id"],
        {
            "month": j["month"],
            "benefit_type": j["benefit_type"],
            "amount": j["amount"],
            "registry_id": j["registry_id"],
            "start_date": j["start_date"].dt.strftime("%Y-%m-%d"),
            "end_date": j["end_date"].dt.strftime("%Y-%m-%d"),
            "match_probability": j["match_probability"].round(4),
        },
        ["month", "benefit_type"],
    )


class DuplicateBenefitParams(Params):
    benefit_types: list[str] = Field(default_factory=lambda: ["pension"], min_length=1)
    min_months: int = Field(1, ge=1)  # months with two or more paying records


DUPLICATE_BENEFIT_EVIDENCE = ("month", "benefit_type", "amount", "n_records", "total_paid")


def duplicate_benefit(ds: Dataset, p: DuplicateBenefitParams, cx: Cache) -> pd.DataFrame:
    """One human paid the same benefit (a pension by default) in one month under two or more of
    their person records (重复领取). `amount` is what was paid beyond the largest payment."""
    b = ds.table("benefits")
    if SOURCE not in b.columns:
        return _empty(DUPLICATE_BENEFIT_EVIDENCE)
    return duplicate_benefit_records(b[b["benefit_type"].isin(p.benefit_types)], p)


def duplicate_benefit_records(b: pd.DataFrame, p: DuplicateBenefitParams) -> pd.DataFrame:
    """The decision and its evidence on benefit rows of the chosen types: every row of each
    (person, month, type) they hold must be there."""
    g = b.groupby(["person_id", "month", "benefit_type"], sort=True).agg(
        n_records=(SOURCE, "nunique"), total_paid=("amount", "sum"), largest=("amount", "max")
    )
    g = g[g["n_records"] >= 2].reset_index()
    months = g.groupby("person_id")["month"].transform("nunique")
    g = g[(months >= p.min_months).to_numpy()]
    return _records(
        g["person_id"],
        {
            "month": g["month"],
            "benefit_type": g["benefit_type"],
            "amount": (g["total_paid"] - g["largest"]).round(2),
            "n_records": g["n_records"].astype(np.int64),
            "total_paid": g["total_paid"],
        },
        ["month", "benefit_type"],
    )


class DuplicateEnrolmentParams(Params):
    min_months: int = Field(1, ge=1)  # months enrolled under two or more records


DUPLICATE_ENROLMENT_EVIDENCE = ("month", "n_records", "employers", "amount")


def duplicate_enrolment(ds: Dataset, p: DuplicateEnrolmentParams, cx: Cache) -> pd.DataFrame:
    """One human enrolled (contributions declared) in one month under two or more of their person
    records (重复参保). `amount` is what was declared due under the records beyond the first."""
    c = ds.table("contributions")
    if SOURCE not in c.columns or c.empty:
        return _empty(DUPLICATE_ENROLMENT_EVIDENCE)
    return duplicate_enrolment_records(c, p)


def duplicate_enrolment_records(c: pd.DataFrame, p: DuplicateEnrolmentParams) -> pd.DataFrame:
    """The decision and its evidence on contribution rows: every row of each (person, month) they
    hold must be there."""
    pairs = c[["person_id", SOURCE]].drop_duplicates()
    c = c[c["person_id"].isin(pairs.loc[pairs["person_id"].duplicated(), "person_id"])]  # persons with 2+ records
    due = c["due"].fillna(c["paid"]).fillna(0.0) if "due" in c.columns else pd.Series(0.0, index=c.index)
    per_record = (
        c.assign(_due=due.to_numpy())
        .groupby(["person_id", "month", SOURCE], sort=True)
        .agg(due=("_due", "sum"), employer=("employer_id", "min"))
        .reset_index()
    )
    g = per_record.groupby(["person_id", "month"], sort=True).agg(
        n_records=(SOURCE, "nunique"), total=("due", "sum"), first=("due", "first")
    )
    g = g[g["n_records"] >= 2]
    # Word the employers only for the few months enrolled twice: a Python join per group is slow.
    twice = per_record.set_index(["person_id", "month"]).loc[g.index, "employer"]
    g = g.assign(employers=twice.groupby(level=[0, 1], sort=True).agg(lambda e: ",".join(sorted(set(e))))).reset_index()
    months = g.groupby("person_id")["month"].transform("nunique")
    g = g[(months >= p.min_months).to_numpy()]
    return _records(
        g["person_id"],
        {
            "month": g["month"],
            "n_records": g["n_records"].astype(np.int64),
            "employers": g["employers"],
            "amount": (g["total"] - g["first"]).round(2),
        },
        ["month"],
    )


IDENTITY: tuple[Detector, ...] = (
    Detector(
        "invalid_id_number",
        "person",
        InvalidIdNumberParams,
        invalid_id_number,
        INVALID_ID_EVIDENCE,
        ("persons.id_number",),
    ),
    Detector(
        "benefit_during_custody",
        "person",
        DuringCustodyParams,
        benefit_during_custody,
        CUSTODY_EVIDENCE,
        ("benefits.month", "custody.person_id"),
    ),
    Detector(
        "duplicate_benefit",
        "person",
        DuplicateBenefitParams,
        duplicate_benefit,
        DUPLICATE_BENEFIT_EVIDENCE,
        ("benefits.month", "benefits.source_person_id"),
    ),
    Detector(
        "duplicate_enrolment",
        "person",
        DuplicateEnrolmentParams,
        duplicate_enrolment,
        DUPLICATE_ENROLMENT_EVIDENCE,
        ("contributions.month", "contributions.source_person_id"),
    ),
)
