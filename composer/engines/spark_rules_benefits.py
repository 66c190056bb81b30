"""The benefit and identity detectors on Spark (rules/detectors/benefits.py, identity.py):
benefit_after_death (benefits joined to the deaths), benefit_while_contributing (joined to paid
contributions by person and month), ineligible_benefits (joins to the deaths, the paid
contributions and the employment spells; the per-person totals on the driver, as pandas adds
them), duplicate_benefit and duplicate_enrolment (distinct records per person and month counted
on Spark; the amounts added on the driver for the groups that fire), benefit_during_custody
(benefits joined to the custody terms of their person)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from composer.engines.spark_rule_frames import _collect, _deaths, _distinct_over, _frame, _nullable, _rows
from graph.dataset import Dataset
from rules.cache import NAT, Cache
from rules.detectors.base import _death_ns, _empty, _ns_to_date
from rules.detectors.benefits import (
    INELIGIBLE_EVIDENCE,
    BenefitAfterDeathParams,
    BenefitWhileContributingParams,
    IneligibleBenefitParams,
    after_death_records,
    ineligible_key,
    ineligible_records,
    month_bounds_ns,
    while_contributing_records,
)
from rules.detectors.identity import (
    CUSTODY_EVIDENCE,
    DUPLICATE_BENEFIT_EVIDENCE,
    DUPLICATE_ENROLMENT_EVIDENCE,
    SOURCE,
    DuplicateBenefitParams,
    DuplicateEnrolmentParams,
    DuringCustodyParams,
    custody_records,
    duplicate_benefit_records,
    duplicate_enrolment_records,
)


def benefit_after_death(session: Any, ds: Dataset, p: BenefitAfterDeathParams, cx: Cache) -> pd.DataFrame:
    from pyspark.sql import functions as F

    b = ds.table("benefits")
    sent = _frame(
        session,
        {
            "row": np.arange(len(b), dtype=np.int64),
            "person": cx.codes("benefits", "person_id", "person").astype(np.int64),
            "month": np.asarray(cx.months("benefits", "month"), np.int64),
            "of_type": b["benefit_type"].isin(p.benefit_types).to_numpy(dtype=bool),
        },
    )
    after = (
        sent.filter("of_type")
        .join(_deaths(session, cx), "person")
        .select("row", (F.col("month") - F.col("death_month")).alias("after"))
        .filter(F.col("after") >= p.min_months_after)
    )
    got = _collect(after)
    rows = got["row"].to_numpy(np.int64)
    d = _death_ns(cx)[cx.codes("benefits", "person_id", "person")[rows]]
    return after_death_records(b.iloc[rows], _ns_to_date(d), got["after"].to_numpy(np.int64))


def benefit_while_contributing(session: Any, ds: Dataset, p: BenefitWhileContributingParams, cx: Cache) -> pd.DataFrame:
    b, c = ds.table("benefits"), ds.table("contributions")
    brows = np.flatnonzero(b["benefit_type"].isin(p.benefit_types).to_numpy())
    crows = np.flatnonzero((c["paid"] > p.min_paid).to_numpy())
    benefits = _frame(
        session,
        {
            "b": brows.astype(np.int64),
            "person": cx.codes("benefits", "person_id", "person")[brows].astype(np.int64),
            "month": np.asarray(cx.months("benefits", "month"), np.int64)[brows],
        },
    )
    contributions = _frame(
        session,
        {
            "c": crows.astype(np.int64),
            "person": cx.codes("contributions", "person_id", "person")[crows].astype(np.int64),
            "month": np.asarray(cx.months("contributions", "month"), np.int64)[crows],
        },
    )
    got = _collect(benefits.join(contributions, ["person", "month"]).select("b", "c"), ("b", "c"))
    return while_contributing_records(b.iloc[got["b"].to_numpy(np.int64)], c.iloc[got["c"].to_numpy(np.int64)])


def ineligible_benefits(session: Any, ds: Dataset, p: IneligibleBenefitParams, cx: Cache) -> pd.DataFrame:
    if ds.table("benefits").empty:
        return _empty(INELIGIBLE_EVIDENCE)
    return ineligible_records(ds, p, cx, cx.memo(ineligible_key(p), lambda: _ineligible_reason(session, ds, p, cx)))


def _ineligible_reason(session: Any, ds: Dataset, p: IneligibleBenefitParams, cx: Cache) -> np.ndarray:
    """rules/detectors/benefits.py `_ineligible_reason` with its joins on Spark: per benefit row,
    0 eligible, 1 after the death month, 2 (otherwise) while employed."""
    from pyspark.sql import functions as F

    b = ds.table("benefits")
    person = cx.codes("benefits", "person_id", "person").astype(np.int64)
    month = np.asarray(cx.months("benefits", "month"), np.int64)
    dead = np.zeros(len(b), dtype=bool)
    if p.after_death:
        sent = _frame(session, {"row": np.arange(len(b), dtype=np.int64), "person": person, "month": month})
        dead[_rows(sent.join(_deaths(session, cx), "person").filter(F.col("month") > F.col("death_month")))] = True
    candidates = np.flatnonzero(b["benefit_type"].isin(p.while_employed_types).to_numpy() & ~dead)
    employed = np.zeros(len(b), dtype=bool)
    if len(candidates):
        cand_m = month[candidates]
        first, last = month_bounds_ns(cand_m)
        sent = _frame(
            session,
            {
                "row": candidates.astype(np.int64),
                "person": person[candidates],
                "month": cand_m,
                "first": first,
                "last": last,
            },
        )
        c = ds.table("contributions")
        crows = np.flatnonzero((c["paid"] > 0).to_numpy())
        paid = _frame(
            session,
            {
                "person": cx.codes("contributions", "person_id", "person")[crows].astype(np.int64),
                "month": np.asarray(cx.months("contributions", "month"), np.int64)[crows],
            },
        )
        contributing = sent.join(paid, ["person", "month"], "left_semi").select("row")
        erows = np.flatnonzero(cx.notna("employment", "start_date"))
        spells = _frame(
            session,
            {
                "person": cx.codes("employment", "person_id", "person")[erows].astype(np.int64),
                "start": cx.ns("employment", "start_date")[erows],
                "stop": cx.ns("employment", "end_date")[erows],  # NAT: no end
            },
        )
        covered = (
            sent.join(spells, "person")
            .filter((F.col("start") <= F.col("first")) & ((F.col("stop") == NAT) | (F.col("stop") >= F.col("last"))))
            .select("row")
        )
        employed[_rows(contributing.union(covered))] = True
    return np.where(dead, 1, np.where(employed, 2, 0)).astype(np.int8)


def duplicate_benefit(session: Any, ds: Dataset, p: DuplicateBenefitParams, cx: Cache) -> pd.DataFrame:
    """Spark counts each (person, month, type)'s distinct records and each person's months with
    two or more; the driver words those groups' rows as the pandas detector does."""
    b = ds.table("benefits")
    if SOURCE not in b.columns:
        return _empty(DUPLICATE_BENEFIT_EVIDENCE)
    ok = b["benefit_type"].isin(p.benefit_types).to_numpy() & cx.notna("benefits", "person_id")
    rows = np.flatnonzero(ok & cx.notna("benefits", "month"))
    sent = _frame(
        session,
        {
            "row": rows.astype(np.int64),
            "person": cx.codes("benefits", "person_id", "person")[rows].astype(np.int64),
            "month": np.asarray(cx.months("benefits", "month"), np.int64)[rows],
            "kind": cx.factor("benefits", "benefit_type")[rows],
            "source": _nullable(cx.factor("benefits", SOURCE)[rows]),
        },
    )
    return duplicate_benefit_records(b.iloc[_twice(sent, ["person", "month", "kind"], p.min_months)], p)


def duplicate_enrolment(session: Any, ds: Dataset, p: DuplicateEnrolmentParams, cx: Cache) -> pd.DataFrame:
    """Spark counts each (person, month)'s distinct records and each person's months with two or
    more; the driver words those months' rows as the pandas detector does."""
    c = ds.table("contributions")
    if SOURCE not in c.columns or c.empty:
        return _empty(DUPLICATE_ENROLMENT_EVIDENCE)
    rows = np.flatnonzero(cx.notna("contributions", "person_id") & cx.notna("contributions", "month"))
    sent = _frame(
        session,
        {
            "row": rows.astype(np.int64),
            "person": cx.codes("contributions", "person_id", "person")[rows].astype(np.int64),
            "month": np.asarray(cx.months("contributions", "month"), np.int64)[rows],
            "source": _nullable(cx.factor("contributions", SOURCE)[rows]),
        },
    )
    return duplicate_enrolment_records(c.iloc[_twice(sent, ["person", "month"], p.min_months)], p)


def _twice(sent: Any, group: list[str], min_months: int) -> np.ndarray:
    """The rows of every group with two or more distinct sources, of persons with at least
    `min_months` such months."""
    from pyspark.sql import functions as F

    twice = sent.withColumn("records", _distinct_over("source", *group)).filter(F.col("records") >= 2)
    return _rows(twice.withColumn("months", _distinct_over("month", "person")).filter(F.col("months") >= min_months))


def benefit_during_custody(session: Any, ds: Dataset, p: DuringCustodyParams, cx: Cache) -> pd.DataFrame:
    """Spark joins the benefits of the chosen types to the custody terms of their person and keeps
    those whose month lies inside one; the driver words them as the pandas detector does."""
    from pyspark.sql import functions as F

    c = ds.table("custody")
    has_person = cx.notna("custody", "person_id") if "person_id" in c.columns else np.zeros(len(c), dtype=bool)
    b = ds.table("benefits")
    typed = b["benefit_type"].isin(p.benefit_types).to_numpy()
    if not has_person.any() or not typed.any():
        return _empty(CUSTODY_EVIDENCE)
    terms = np.flatnonzero(has_person & cx.notna("custody", "start_date"))
    rows = np.flatnonzero(typed & cx.notna("benefits", "person_id") & cx.notna("benefits", "month"))
    first, last = month_bounds_ns(np.asarray(cx.months("benefits", "month"), np.int64)[rows])
    benefits = _frame(
        session,
        {
            "row": rows.astype(np.int64),
            "person": cx.codes("benefits", "person_id", "person")[rows].astype(np.int64),
            "first": first,
            "last": last,
        },
    )
    custody = _frame(
        session,
        {
            "person": cx.codes("custody", "person_id", "person")[terms].astype(np.int64),
            "start": cx.ns("custody", "start_date")[terms],
            "stop": cx.ns("custody", "end_date")[terms],  # NAT: ongoing
        },
    )
    inside = benefits.join(F.broadcast(custody), "person").filter(
        (F.col("start") <= F.col("first")) & ((F.col("stop") == NAT) | (F.col("stop") >= F.col("last")))
    )
    return custody_records(b.iloc[np.unique(_rows(inside))], c[has_person])
