"""Rule detectors as Spark DataFrame work, for the rules of the same YAML packs (rules/packs/).

A rule pack names a detector and its parameters; `evaluate` (rules/engine.py) runs it. Inside
`detected_by(spark_detectors(session))` the detectors below run on Spark instead, with the
rule's parameters from the same pack and overrides: Spark gets integer codes, day and month
numbers and amounts per row (never an id or a personal value), does the grouping, counting and
joining that decide which rows fire, and sends back the firing rows' positions (and the numbers
it computed); the driver then gathers their evidence exactly as the pandas detector does, so hits
and evidence are the same.

On Spark: multi_clinic_visits (distinct clinics per person and day or month), over_prescribing
(supplies over the limit, per-person counts), benefit_after_death (benefits joined to deaths by
person, months after the death month), activity_after_death (visits and purchases joined to deaths
by person, days after the death day and its grace; benefits, months after the death month),
split_admission (each person's (and diagnosis's) inpatient stays in date order, the one before
each by a window's lag, the days between), overlapping_supply (each person's purchases of a drug in
date order, the supply of the one before by a window's lag), activity_during_stay (visits and
purchases joined to the same person's inpatient stays, kept when strictly inside one),
benefit_while_contributing (benefits joined to paid contributions by person and month),
ineligible_benefits (which benefit rows were paid after the death month or while employed: joins
to the deaths, the paid contributions and the employment spells; the per-person totals on the
driver, as the pandas detector adds them), base_below_wage (each contribution's base against the
wage of the latest employment spell of its employer and person, by a window's first row),
headcount_inflation (each employer's busiest contribution month, counted and ranked on Spark),
employer_arrears (each employer's months whose shortfall could pass the threshold; the driver
decides on those months' rows with the pandas detector's sums), duplicate_benefit and
duplicate_enrolment (distinct records per person and month counted on Spark; the amounts added on
the driver for the groups that fire), benefit_during_custody (benefits joined to the custody terms
of their person), agency_shell_routing (each agency's distinct persons and employers among its
placements into small employers), clinic_over_capacity (each clinic's daily census as a running
sum over its days). Every other detector of rules/detectors/ still runs in pandas on the driver
(`PYTHON_ONLY` lists them for the manifest and docs/scale.md).

Where Spark narrows rows rather than deciding them (arrears), the driver's pandas function gets
every row of each group that could fire and decides exactly as on the whole table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from graph.dataset import Dataset
from rules.cache import NAT, Cache
from rules.detectors import DETECTORS
from rules.detectors.base import DetectorFn, _codes, _death_ns, _empty, _ns_days, _ns_months, _ns_to_date, _records
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
from rules.detectors.employers import (
    ARREARS_EVIDENCE,
    BASE_EVIDENCE,
    HEADCOUNT_EVIDENCE,
    AgencyRoutingParams,
    ArrearsParams,
    BaseBelowWageParams,
    HeadcountParams,
    agency_routing_records,
    arrears_records,
    base_below_wage_records,
    headcount_records,
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
from rules.detectors.medical import (
    AFTER_DEATH_SOURCES,
    CAPACITY_EVIDENCE,
    MULTI_CLINIC_EVIDENCE,
    OVER_SUPPLY_EVIDENCE,
    OVERLAP_EVIDENCE,
    SPLIT_EVIDENCE,
    STAY_EVIDENCE,
    AfterDeathParams,
    DuringStayParams,
    MultiClinicParams,
    OverCapacityParams,
    OverlapSupplyParams,
    OverSupplyParams,
    SplitAdmissionParams,
    after_death_activity_records,
    capacity_records,
    capacity_stays,
    during_stay_records,
    multi_clinic_records,
    overlapping_supply_records,
    split_admission_records,
    stays_and_sources,
)


def _frame(session: Any, columns: dict[str, np.ndarray]) -> Any:
    return session.createDataFrame(pa.table({k: pa.array(v) for k, v in columns.items()}))


def _collect(frame: Any, order: tuple[str, ...] = ("row",)) -> pd.DataFrame:
    """A frame of integer columns on the driver, sorted by `order` (Spark's order is arbitrary)."""
    got = frame.toPandas()
    if got.empty:
        return pd.DataFrame({c: np.zeros(0, np.int64) for c in frame.columns})
    return got.sort_values(list(order), kind="mergesort").reset_index(drop=True)


def _rows(frame: Any) -> np.ndarray:
    """The `row` column of a frame, ascending."""
    return _collect(frame.select("row"))["row"].to_numpy(np.int64)


def _distinct_over(column: str, *group: str) -> Any:
    """The number of distinct non-null values of `column` in each row's group, as a window: one
    shuffle, and no join of the groups back to their rows (a distinct count and a join took four
    times as long on 3.4M visits)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    return F.size(F.collect_set(column).over(Window.partitionBy(*group))).cast("long")


def _deaths(session: Any, cx: Cache) -> Any:
    """Each dead person's code with the death's day and month numbers: one frame per evaluation,
    shared by the detectors that join to the deaths, and sent to every task whole (a frame made
    from the driver's arrays has no size estimate, so Spark would shuffle both sides)."""
    from pyspark.sql import functions as F

    def build() -> Any:
        death = _death_ns(cx)[:-1]  # per person code (the last slot is code -1's)
        dead = np.flatnonzero(death != NAT)
        return _frame(
            session,
            {
                "person": dead.astype(np.int64),
                "death_day": _ns_days(death[dead]),
                "death_month": _ns_months(death[dead]),
            },
        )

    return F.broadcast(cx.memo("spark_deaths", build))


def multi_clinic_visits(session: Any, ds: Dataset, p: MultiClinicParams, cx: Cache) -> pd.DataFrame:
    from pyspark.sql import functions as F

    v = ds.table("visits")
    ok = cx.notna("visits", "date")
    if p.kinds is not None:
        ok = ok & v["kind"].isin(p.kinds).to_numpy()
    rows = np.flatnonzero(ok)
    if not len(rows):
        return _empty(MULTI_CLINIC_EVIDENCE)
    period = (cx.days("visits", "date") if p.window == "day" else cx.date_months("visits", "date"))[rows]
    sent = _frame(
        session,
        {
            "row": rows.astype(np.int64),
            "person": cx.codes("visits", "person_id", "person")[rows].astype(np.int64),
            "period": np.asarray(period, np.int64),
            "clinic": cx.codes("visits", "clinic_id", "clinic")[rows].astype(np.int64),
        },
    )
    fired = sent.withColumn("n_clinics", _distinct_over("clinic", "person", "period")).filter(
        F.col("n_clinics") >= p.min_clinics
    )
    got = _collect(fired.select("row", "n_clinics"))
    return multi_clinic_records(v.iloc[got["row"].to_numpy(np.int64)], got["n_clinics"].to_numpy(np.int64))


def over_prescribing(session: Any, ds: Dataset, p: OverSupplyParams, cx: Cache) -> pd.DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    e = ds.table("purchases")
    sent = _frame(
        session,
        {
            "row": np.arange(len(e), dtype=np.int64),
            "person": cx.codes("purchases", "person_id", "person").astype(np.int64),
            "days_supply": e["days_supply"].to_numpy(np.float64, na_value=np.nan),
        },
    )
    over = sent.filter(F.col("days_supply") > p.max_days_supply)  # NaN never fires (as in pandas)
    over = over.filter(~F.isnan("days_supply"))
    if p.min_purchases > 1:
        over = over.withColumn("n", F.count(F.lit(1)).over(Window.partitionBy("person")))
        over = over.filter(F.col("n") >= p.min_purchases)
    e = e.iloc[_rows(over)]
    return _records(e["person_id"], {c: e[c] for c in OVER_SUPPLY_EVIDENCE}, ["date", "purchase_id"])


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


def activity_after_death(session: Any, ds: Dataset, p: AfterDeathParams, cx: Cache) -> pd.DataFrame:
    from pyspark.sql import functions as F

    deaths = _deaths(session, cx)
    fired: dict[str, np.ndarray] = {}
    for table, _, _ in AFTER_DEATH_SOURCES:
        if table not in p.sources or not ds.has(table):
            continue
        rows = np.flatnonzero(cx.notna(table, "date"))
        sent = _frame(
            session,
            {
                "row": rows.astype(np.int64),
                "person": cx.codes(table, "person_id", "person")[rows].astype(np.int64),
                "day": np.asarray(cx.days(table, "date")[rows], np.int64),
            },
        )
        after = sent.join(deaths, "person").filter(F.col("day") > F.col("death_day") + p.grace_days)
        fired[table] = _rows(after)
    if "benefits" in p.sources and ds.has("benefits"):
        sent = _frame(
            session,
            {
                "row": np.arange(len(ds.tables["benefits"]), dtype=np.int64),
                "person": cx.codes("benefits", "person_id", "person").astype(np.int64),
                "month": np.asarray(cx.months("benefits", "month"), np.int64),
            },
        )
        after = sent.join(deaths, "person").filter(F.col("month") > F.col("death_month"))
        fired["benefits"] = _rows(after)
    return after_death_activity_records(ds, cx, fired)


def split_admission(session: Any, ds: Dataset, p: SplitAdmissionParams, cx: Cache) -> pd.DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    v = ds.table("visits")
    ok = cx.eq("visits", "kind", p.inpatient_kind) & cx.notna("visits", "date")
    if p.same_diagnosis:
        ok = ok & cx.notna("visits", "diagnosis")
    rows = np.flatnonzero(ok)
    if not len(rows):
        return _empty(SPLIT_EVIDENCE)
    start = np.asarray(cx.days("visits", "date")[rows], np.int64)
    has_end = cx.notna("visits", "discharge_date")[rows]
    end = np.where(has_end, np.asarray(cx.days("visits", "discharge_date")[rows], np.int64), start)
    sent = _frame(
        session,
        {
            "row": rows.astype(np.int64),  # the table is sorted by visit_id: row order is its order
            "person": cx.codes("visits", "person_id", "person")[rows].astype(np.int64),
            "diagnosis": _codes(v["diagnosis"].iloc[rows])[0].astype(np.int64)
            if p.same_diagnosis
            else np.zeros(len(rows), np.int64),
            "start": start,
            "end": end,
        },
    )
    stays = Window.partitionBy("person", "diagnosis").orderBy("start", "row")
    readmitted = (
        sent.select("row", "start", F.lag("row").over(stays).alias("prev"), F.lag("end").over(stays).alias("prev_end"))
        .filter(F.col("prev").isNotNull())
        .select("row", "prev", (F.col("start") - F.col("prev_end")).alias("gap"))
        .filter(F.col("gap") <= p.max_gap_days)
    )
    got = _collect(readmitted)
    return split_admission_records(
        v.iloc[got["row"].to_numpy(np.int64)], v.iloc[got["prev"].to_numpy(np.int64)], got["gap"].to_numpy(np.int64)
    )


def overlapping_supply(session: Any, ds: Dataset, p: OverlapSupplyParams, cx: Cache) -> pd.DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    e = ds.table("purchases")
    supply = e["days_supply"].to_numpy(dtype=np.float64)
    rows = np.flatnonzero(cx.notna("purchases", "date") & cx.notna("purchases", "drug_code") & ~np.isnan(supply))
    if not len(rows):
        return _empty(OVERLAP_EVIDENCE)
    sent = _frame(
        session,
        {
            "row": rows.astype(np.int64),  # the table is sorted by purchase_id: row order is its order
            "person": cx.codes("purchases", "person_id", "person")[rows].astype(np.int64),
            "drug": cx.factor("purchases", "drug_code")[rows].astype(np.int64),
            "day": np.asarray(cx.days("purchases", "date")[rows], np.int64),
            "supply": supply[rows],
        },
    )
    purchases = Window.partitionBy("person", "drug").orderBy("day", "row")
    before = sent.select(
        "row",
        "person",
        F.lag("row").over(purchases).alias("prev"),
        (F.lag(F.col("day") + F.floor("supply")).over(purchases) - F.col("day")).alias("overlap"),
        F.lag("supply").over(purchases).alias("prev_supply"),
    )
    fired = before.filter(F.col("prev").isNotNull() & (F.col("overlap") >= p.min_overlap_days))
    if p.prev_supply_over is not None:
        fired = fired.filter(F.col("prev_supply") > p.prev_supply_over)
    if p.min_overlaps > 1:
        fired = fired.withColumn("n", F.count(F.lit(1)).over(Window.partitionBy("person")))
        fired = fired.filter(F.col("n") >= p.min_overlaps)
    got = _collect(fired.select("row", "prev", "overlap"))
    return overlapping_supply_records(
        e.iloc[got["row"].to_numpy(np.int64)], e.iloc[got["prev"].to_numpy(np.int64)], got["overlap"].to_numpy(np.int64)
    )


def activity_during_stay(session: Any, ds: Dataset, p: DuringStayParams, cx: Cache) -> pd.DataFrame:
    from pyspark.sql import functions as F

    srows, sources = stays_and_sources(ds, p, cx)
    if not len(srows) or not sources:
        return _empty(STAY_EVIDENCE)
    s_person = cx.codes("visits", "person_id", "person")[srows]
    stays = _frame(
        session,
        {
            "stay": srows.astype(np.int64),
            "person": s_person.astype(np.int64),
            "admitted": cx.ns("visits", "date")[srows],
            "discharged": cx.ns("visits", "discharge_date")[srows],
        },
    )
    has_stay = cx.flags("person", s_person)
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for table in sources:
        person = cx.codes(table, "person_id", "person")
        erows = np.flatnonzero(cx.notna(table, "date") & has_stay[person])
        events = _frame(
            session,
            {
                "row": erows.astype(np.int64),
                "person": person[erows].astype(np.int64),
                "at": cx.ns(table, "date")[erows],
            },
        )
        inside = events.join(stays, "person").filter(
            (F.col("at") > F.col("admitted")) & (F.col("at") < F.col("discharged"))
        )
        got = _collect(inside.select("row", "stay"), ("row", "stay"))
        pairs[table] = (got["row"].to_numpy(np.int64), got["stay"].to_numpy(np.int64))
    return during_stay_records(ds, pairs)


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


def base_below_wage(session: Any, ds: Dataset, p: BaseBelowWageParams, cx: Cache) -> pd.DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    wage = ds.table("employment")["monthly_wage"].to_numpy(dtype=np.float64)
    erows = np.flatnonzero(~np.isnan(wage))
    base = ds.table("contributions")["base"].to_numpy(dtype=np.float64)
    crows = np.flatnonzero(~np.isnan(base))
    if not len(crows) or not len(erows):
        return _empty(BASE_EVIDENCE)
    start = cx.ns("employment", "start_date")[erows]
    spells = _frame(
        session,
        {
            "w": erows.astype(np.int64),
            "employer": cx.codes("employment", "employer_id", "employer")[erows].astype(np.int64),
            "person": cx.codes("employment", "person_id", "person")[erows].astype(np.int64),
            "start": np.where(start == NAT, np.iinfo(np.int64).max, start),  # a missing start is the latest
            "wage": wage[erows],
        },
    )
    # the latest spell per (employer, person); of equal starts, the later row (as the pandas sort keeps)
    latest = Window.partitionBy("employer", "person").orderBy(F.col("start").desc(), F.col("w").desc())
    wages = spells.withColumn("n", F.row_number().over(latest)).filter(F.col("n") == 1).drop("n", "start")
    declared = _frame(
        session,
        {
            "c": crows.astype(np.int64),
            "employer": cx.codes("contributions", "employer_id", "employer")[crows].astype(np.int64),
            "person": cx.codes("contributions", "person_id", "person")[crows].astype(np.int64),
            "base": base[crows],
        },
    )
    low = declared.join(wages, ["employer", "person"]).filter(F.col("base") < F.lit(p.ratio) * F.col("wage"))
    got = _collect(low.select("c", "w"), ("c",))
    return base_below_wage_records(ds, p, got["c"].to_numpy(np.int64), got["w"].to_numpy(np.int64))


def headcount_inflation(session: Any, ds: Dataset, p: HeadcountParams, cx: Cache) -> pd.DataFrame:
    if ds.table("contributions").empty:
        return _empty(HEADCOUNT_EVIDENCE)
    return headcount_records(ds, p, cx, cx.memo("peak_insured", lambda: _peak_insured(session, ds, cx)))


def _peak_insured(session: Any, ds: Dataset, cx: Cache) -> pd.DataFrame:
    """rules/detectors/employers.py `_peak_insured` counted on Spark: per employer id (sorted), the
    most contribution rows in one month ("insured") and the first such month."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    employer = cx.codes("contributions", "employer_id", "employer")
    ok = employer >= 0
    rows = _frame(
        session,
        {"e": employer[ok].astype(np.int64), "m": np.asarray(cx.months("contributions", "month"), np.int64)[ok]},
    )
    months = rows.groupBy("e", "m").agg(F.count(F.lit(1)).alias("insured"))
    busiest = Window.partitionBy("e").orderBy(F.col("insured").desc(), F.col("m").asc())
    top = months.withColumn("n", F.row_number().over(busiest)).filter(F.col("n") == 1)
    got = _collect(top.select("e", "m", "insured"), ("e",))
    index = pd.Index(
        cx.ids("employer", got["e"].to_numpy(np.int64)),
        name="employer_id",
        dtype=ds.table("contributions")["employer_id"].dtype,
    )
    return pd.DataFrame({"m": got["m"].to_numpy(np.int64), "insured": got["insured"].to_numpy(np.int64)}, index=index)


def employer_arrears(session: Any, ds: Dataset, p: ArrearsParams, cx: Cache) -> pd.DataFrame:
    """Spark adds each (employer, month)'s due and paid in doubles, in its own order, and keeps
    every month whose shortfall could pass the threshold with room for the rounding of any order;
    the driver decides on those months' rows alone, with the pandas detector's sums."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    c = ds.table("contributions")
    rows = np.flatnonzero(cx.notna("contributions", "due"))
    if not len(rows):
        return _empty(ARREARS_EVIDENCE)
    sent = _frame(
        session,
        {
            "row": rows.astype(np.int64),
            "e": cx.codes("contributions", "employer_id", "employer")[rows].astype(np.int64),
            "m": np.asarray(cx.months("contributions", "month"), np.int64)[rows],
            "due": c["due"].to_numpy(np.float64, na_value=np.nan)[rows],
            "paid": np.nan_to_num(c["paid"].to_numpy(np.float64, na_value=np.nan)[rows], nan=0.0),
        },
    )
    month = Window.partitionBy("e", "m")
    shortfall = F.sum("due").over(month) - F.sum("paid").over(month)
    size = F.sum(F.abs("due")).over(month) + F.sum(F.abs("paid")).over(month)
    # a sum of n doubles in any order is within n·2⁻⁵³ of the exact sum times the sum of magnitudes
    could = sent.withColumn("could", shortfall > p.min_shortfall + 1e-9 - (size * ARREARS_ROOM + ARREARS_ROOM))
    could = could.filter("could").withColumn("months", _distinct_over("m", "e"))
    return arrears_records(ds, p, cx, _rows(could.filter(F.col("months") >= p.min_months)))


ARREARS_ROOM = 1e-6  # relative and absolute: Kahan's pandas sums and Spark's differ by far less


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


def _nullable(codes: np.ndarray) -> pa.Array:
    """Factor codes with -1 (missing) as null, which distinct counts skip as pandas' nunique does."""
    return pa.array(codes, mask=codes < 0)


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


def agency_shell_routing(session: Any, ds: Dataset, p: AgencyRoutingParams, cx: Cache) -> pd.DataFrame:
    """Spark builds every placement (employment's agency, and the placing links joined to the
    person's employers), keeps those into small employers and counts each agency's distinct persons
    and employers; the driver words the agencies that pass as the pandas detector does."""
    from pyspark.sql import functions as F

    employer = cx.codes("employment", "employer_id", "employer").astype(np.int64)
    person = cx.codes("employment", "person_id", "person").astype(np.int64)
    agency = cx.codes("employment", "agency_id", "agency").astype(np.int64)
    jobs = _frame(session, {"e": employer, "person": _nullable(person), "agency": _nullable(agency)})
    sizes = jobs.filter(F.col("e") >= 0).groupBy("e").agg(F.countDistinct("person").alias("size"))
    small = sizes.filter(F.col("size") <= p.max_employer_size).select("e")
    placed = jobs.filter(F.col("agency").isNotNull()).select("agency", "person", "e")
    links = ds.table("agency_links")
    placing = ((links["entity_type"] == "person") & (links["relation"].fillna("placed") == "placed")).to_numpy()
    lrows = np.flatnonzero(placing & cx.notna("agency_links", "agency_id") & links["entity_id"].notna().to_numpy())
    if len(lrows):
        # link ids as person codes where employment has them (no other link can join an employer)
        linked = pd.Index(cx.vocab("person").to_numpy(zero_copy_only=False)).get_indexer(
            links["entity_id"].iloc[lrows].to_numpy(dtype=object)
        )
        via_links = _frame(
            session,
            {
                "agency": cx.codes("agency_links", "agency_id", "agency")[lrows].astype(np.int64),
                "person": linked.astype(np.int64),
            },
        ).filter(F.col("person") >= 0)
        placed = placed.union(via_links.join(jobs.select("person", "e"), "person").select("agency", "person", "e"))
    counts = (
        placed.join(small, "e")
        .groupBy("agency")
        .agg(F.countDistinct("person").alias("persons"), F.countDistinct("e").alias("employers"))
    )
    passing = counts.filter((F.col("persons") >= p.min_persons) & (F.col("employers") >= p.min_employers))
    codes = _collect(passing.select("agency"), ("agency",))["agency"].to_numpy(np.int64)
    return agency_routing_records(ds, p, cx, cx.ids("agency", codes))


def clinic_over_capacity(session: Any, ds: Dataset, p: OverCapacityParams, cx: Cache) -> pd.DataFrame:
    """Each clinic's daily census as a running sum of admissions and discharges over its days, on
    Spark. The pandas detector runs one sum over every clinic in turn and takes the next row's day
    as a day's end, which after a clinic's last day is the next clinic's first (census 0 there, so
    it matters only with negative beds); the same day is taken here."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    stays = capacity_stays(ds, p, cx)
    if stays is None:
        return _empty(CAPACITY_EVIDENCE)
    clinic, names, start, end, beds = stays
    sent = _frame(session, {"c": clinic, "start": start.astype(np.int64), "end": end.astype(np.int64)})
    changes = (
        sent.select("c", F.col("start").alias("d"), F.lit(1).alias("x"))
        .union(sent.select("c", F.col("end").alias("d"), F.lit(-1).alias("x")))
        .groupBy("c", "d")
        .agg(F.sum("x").alias("x"))
    )
    # the day after each clinic's last change: the first day of the next clinic (of the first, after the last)
    firsts = changes.groupBy("c").agg(F.min("d").alias("next_first"))
    firsts = firsts.select(((F.col("c") - 1 + len(names)) % len(names)).alias("c"), "next_first")
    capacity = _frame(session, {"c": np.arange(len(names), dtype=np.int64), "cap": beds.reindex(names).to_numpy()})
    days_of = Window.partitionBy("c").orderBy("d")
    census = (
        changes.withColumn("census", F.sum("x").over(days_of.rowsBetween(Window.unboundedPreceding, 0)))
        .withColumn("nxt", F.lead("d").over(days_of))
        .join(F.broadcast(firsts), "c")
        .join(F.broadcast(capacity), "c")
        .withColumn("nxt", F.coalesce("nxt", "next_first"))
        .withColumn("over", F.col("census").cast("double") > F.col("cap") * F.lit(p.occupancy_ratio) + F.lit(1e-9))
        .withColumn("days", F.when(F.col("over"), F.col("nxt") - F.col("d")).otherwise(0))
        .withColumn("total", F.sum("days").over(Window.partitionBy("c")))
    )
    fired = census.filter(F.col("over") & (F.col("total") >= p.min_days))
    got = _collect(fired.select("c", "d", "nxt", "days", "census"), ("c", "d"))
    clinic, day, nxt, days = (got[k].to_numpy(np.int64) for k in ("c", "d", "nxt", "days"))
    return capacity_records(names, beds, clinic, day, nxt, days, got["census"].to_numpy(np.float64))


SPARK_DETECTORS: dict[str, Callable[..., pd.DataFrame]] = {
    "multi_clinic_visits": multi_clinic_visits,
    "over_prescribing": over_prescribing,
    "benefit_after_death": benefit_after_death,
    "activity_after_death": activity_after_death,
    "split_admission": split_admission,
    "overlapping_supply": overlapping_supply,
    "activity_during_stay": activity_during_stay,
    "benefit_while_contributing": benefit_while_contributing,
    "ineligible_benefits": ineligible_benefits,
    "base_below_wage": base_below_wage,
    "headcount_inflation": headcount_inflation,
    "employer_arrears": employer_arrears,
    "duplicate_benefit": duplicate_benefit,
    "duplicate_enrolment": duplicate_enrolment,
    "benefit_during_custody": benefit_during_custody,
    "agency_shell_routing": agency_shell_routing,
    "clinic_over_capacity": clinic_over_capacity,
}
PYTHON_ONLY = tuple(sorted(name for name in DETECTORS if name not in SPARK_DETECTORS))


def spark_detectors(session: Any) -> dict[str, DetectorFn]:
    """The detectors that run on Spark, bound to a session (for `rules.detectors.base.detected_by`)."""

    def bound(fn: Callable[..., pd.DataFrame]) -> DetectorFn:
        return lambda ds, p, cx: fn(session, ds, p, cx)

    return {name: bound(fn) for name, fn in SPARK_DETECTORS.items()}
