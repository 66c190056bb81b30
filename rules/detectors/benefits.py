"""Pension and benefit detectors: benefits paid while contributing, after death or while ineligible."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from graph.codes import unique_sorted
from graph.dataset import Dataset
from rules.cache import NAT, Cache
from rules.detectors.base import (
    Detector,
    Params,
    _death_ns,
    _empty,
    _in_sorted,
    _join_keys,
    _ns_months,
    _ns_to_date,
    _records,
)


class BenefitWhileContributingParams(Params):
    benefit_types: list[str] = Field(default_factory=lambda: ["unemployment"], min_length=1)
    min_paid: float = Field(0, ge=0)  # contributions count when paid > min_paid


CONTRIB_BENEFIT_EVIDENCE = ("month", "benefit_type", "amount", "employer_id", "paid")


def benefit_while_contributing(ds: Dataset, p: BenefitWhileContributingParams, cx: Cache) -> pd.DataFrame:
    """Benefits (unemployment by default) for a month in which an employer paid contributions for the person."""
    b = ds.table("benefits")
    brows = np.flatnonzero(b["benefit_type"].isin(p.benefit_types).to_numpy())
    bp = cx.codes("benefits", "person_id", "person")[brows]
    c = ds.table("contributions")
    cp = cx.codes("contributions", "person_id", "person")
    crows = np.flatnonzero((c["paid"] > p.min_paid).to_numpy() & cx.flags("person", bp)[cp])
    # join on integer (person, month) keys; months are validated YYYY-MM text, so equal text = equal number
    bkey, ckey = _join_keys(
        bp, cx.months("benefits", "month")[brows], cp[crows], cx.months("contributions", "month")[crows]
    )
    j = pd.DataFrame({"k": bkey, "b": brows}).merge(pd.DataFrame({"k": ckey, "c": crows}), on="k", how="inner")
    return while_contributing_records(b.iloc[j["b"].to_numpy()], c.iloc[j["c"].to_numpy()])


def while_contributing_records(bj: pd.DataFrame, cj: pd.DataFrame) -> pd.DataFrame:
    """`benefit_while_contributing`'s evidence: each benefit row with a contribution row of the
    same person and month (row for row, in benefit row order, then contribution row order),
    whoever joined them (pandas or Spark)."""
    m = pd.DataFrame(
        {
            "person_id": bj["person_id"].to_numpy(),
            "month": bj["month"].to_numpy(),
            "benefit_type": bj["benefit_type"].to_numpy(),
            "amount": bj["amount"].to_numpy(),
            "employer_id": cj["employer_id"].to_numpy(),
            "paid": cj["paid"].to_numpy(),
        }
    )
    return _records(
        m["person_id"], {k: m[k] for k in CONTRIB_BENEFIT_EVIDENCE}, ["month", "benefit_type", "employer_id"]
    )


class BenefitAfterDeathParams(Params):
    benefit_types: list[str] = Field(default_factory=lambda: ["pension"], min_length=1)
    min_months_after: int = Field(1, ge=1)  # months after the death month


BENEFIT_DEATH_EVIDENCE = ("month", "benefit_type", "amount", "death_date", "months_after_death")


def benefit_after_death(ds: Dataset, p: BenefitAfterDeathParams, cx: Cache) -> pd.DataFrame:
    """Benefits of the given types paid for a month at least min_months_after the death month."""
    b = ds.table("benefits")
    d = _death_ns(cx)[cx.codes("benefits", "person_id", "person")]
    rows = np.flatnonzero((d != NAT) & b["benefit_type"].isin(p.benefit_types).to_numpy())
    after = cx.months("benefits", "month")[rows] - _ns_months(d[rows])
    keep = after >= p.min_months_after
    rows = rows[keep]
    return after_death_records(b.iloc[rows], _ns_to_date(d[rows]), after[keep])


def after_death_records(b: pd.DataFrame, death_date: Any, months_after: np.ndarray) -> pd.DataFrame:
    """The evidence records of `benefit_after_death` (also built by the Spark engine's version)."""
    b = b.assign(death_date=death_date)
    return _records(
        b["person_id"],
        {
            "month": b["month"],
            "benefit_type": b["benefit_type"],
            "amount": b["amount"],
            "death_date": b["death_date"],
            "months_after_death": months_after,
        },
        ["month", "benefit_type"],
    )


class IneligibleBenefitParams(Params):
    after_death: bool = True
    while_employed_types: list[str] = Field(default_factory=lambda: ["unemployment"])
    amount_over: float = Field(0, ge=0)  # fires when the ineligible total is > amount_over
    months_over: int = Field(0, ge=0)  # and the distinct ineligible months are > months_over


INELIGIBLE_EVIDENCE = ("month", "benefit_type", "amount", "reason", "total_amount", "n_months")


def ineligible_benefits(ds: Dataset, p: IneligibleBenefitParams, cx: Cache) -> pd.DataFrame:
    """Benefits drawn while not eligible (after death; while employed) over an amount or month count.

    'While employed' means contributions with paid > 0 for that person and month, or an employment
    spell that covers the whole month (start on or before its first day, no end or an end on or
    after its last day).
    """
    if ds.table("benefits").empty:
        return _empty(INELIGIBLE_EVIDENCE)
    reason = cx.memo(ineligible_key(p), lambda: _ineligible_reason(ds, p, cx))
    return ineligible_records(ds, p, cx, reason)


def ineligible_key(p: IneligibleBenefitParams) -> tuple[Any, ...]:
    """The cache key of a benefit reason array: the pack's two rules share one."""
    return ("ineligible", p.after_death, tuple(p.while_employed_types))


def ineligible_records(ds: Dataset, p: IneligibleBenefitParams, cx: Cache, reason: np.ndarray) -> pd.DataFrame:
    """`ineligible_benefits`' evidence from each benefit row's reason (0 eligible, 1 after the
    death month, 2 while employed), whoever found the reasons (pandas or Spark): the persons whose
    ineligible rows add up to more than the amount and month thresholds."""
    b = ds.table("benefits").reset_index(drop=True)
    bad = np.flatnonzero(reason > 0)
    person, month = cx.codes("benefits", "person_id", "person")[bad], cx.months("benefits", "month")[bad]
    g = pd.DataFrame({"p": person, "amount": b["amount"].to_numpy()[bad], "m": month}).groupby("p")
    total, n_months = g["amount"].transform("sum"), g["m"].transform("nunique")
    keep = ((total > p.amount_over) & (n_months > p.months_over)).to_numpy()
    rows = bad[keep]
    f = b.iloc[rows]
    return _records(
        f["person_id"],
        {
            "month": f["month"],
            "benefit_type": f["benefit_type"],
            "amount": f["amount"],
            "reason": np.array(["", "after_death", "while_employed"], dtype=object)[reason[rows]],
            "total_amount": total.to_numpy()[keep],
            "n_months": n_months.to_numpy()[keep].astype(np.int64),
        },
        ["month", "benefit_type"],
    )


def month_bounds_ns(months: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and the last day (int64 ns) of each month (months since 1970-01)."""
    first = months.astype("datetime64[M]").astype("datetime64[ns]")
    last = (months + 1).astype("datetime64[M]").astype("datetime64[ns]") - np.timedelta64(1, "D")
    return first.view(np.int64), last.view(np.int64)


def _ineligible_reason(ds: Dataset, p: IneligibleBenefitParams, cx: Cache) -> np.ndarray:
    """Per benefit row: 0 eligible, 1 after the death month, 2 (otherwise) while employed."""
    b = ds.table("benefits")
    reason = np.zeros(len(b), dtype=np.int8)
    person = cx.codes("benefits", "person_id", "person")
    month = cx.months("benefits", "month")
    if p.after_death:
        d = _death_ns(cx)[person]
        ok = d != NAT
        dead = np.zeros(len(b), dtype=bool)
        dead[ok] = month[ok] > _ns_months(d[ok])
        reason[dead] = 1
    emp_rows = np.flatnonzero(b["benefit_type"].isin(p.while_employed_types).to_numpy() & (reason == 0))
    if len(emp_rows):
        cand_p, cand_m = person[emp_rows], month[emp_rows]
        is_cand = cx.flags("person", cand_p)
        employed = np.zeros(len(b), dtype=bool)
        # a contribution with paid > 0 for the person and month (months compared as numbers)
        c = ds.table("contributions")
        cp = cx.codes("contributions", "person_id", "person")
        crows = np.flatnonzero((c["paid"] > 0).to_numpy() & is_cand[cp])
        bkey, ckey = _join_keys(cand_p, cand_m, cp[crows], cx.months("contributions", "month")[crows])
        found, _ = _in_sorted(bkey, unique_sorted(ckey))
        employed[emp_rows[found]] = True
        # an employment spell covering the whole month
        ep = cx.codes("employment", "person_id", "person")
        erows = np.flatnonzero(cx.notna("employment", "start_date") & is_cand[ep])
        if len(erows):
            e_person = ep[erows]
            order = np.argsort(e_person, kind="stable")
            erows, e_person = erows[order], e_person[order]
            lo, hi = np.searchsorted(e_person, cand_p, "left"), np.searchsorted(e_person, cand_p, "right")
            n = hi - lo
            ci = np.repeat(np.arange(len(emp_rows)), n)
            si = erows[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))]
            first, last = month_bounds_ns(cand_m[ci])
            start, stop = cx.ns("employment", "start_date")[si], cx.ns("employment", "end_date")[si]
            covers = (start <= first) & ((stop == NAT) | (stop >= last))
            employed[emp_rows[ci[covers]]] = True
        reason[employed] = 2
    return reason


BENEFITS: tuple[Detector, ...] = (
    Detector(
        "benefit_while_contributing",
        "person",
        BenefitWhileContributingParams,
        benefit_while_contributing,
        CONTRIB_BENEFIT_EVIDENCE,
        ("benefits.month", "contributions.paid"),
    ),
    Detector(
        "benefit_after_death",
        "person",
        BenefitAfterDeathParams,
        benefit_after_death,
        BENEFIT_DEATH_EVIDENCE,
        ("benefits.month", "persons.death_date"),
    ),
    Detector(
        "ineligible_benefits",
        "person",
        IneligibleBenefitParams,
        ineligible_benefits,
        INELIGIBLE_EVIDENCE,
        ("benefits.month",),
        ("persons.death_date", "contributions.paid", "employment.start_date"),
    ),
)
