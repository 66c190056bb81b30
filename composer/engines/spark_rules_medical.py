"""The medical detectors on Spark (rules/detectors/medical.py): multi_clinic_visits (distinct
clinics per person and day or month, over a window), over_prescribing (supplies over the limit,
per-person counts), activity_after_death (visits, purchases and benefits joined to the deaths),
split_admission (each person's (and diagnosis's) inpatient stays in date order, the one before each
by a window's lag), overlapping_supply (each person's purchases of a drug in date order, the supply
of the one before by a window's lag), activity_during_stay (visits and purchases joined to the same
person's inpatient stays), clinic_over_capacity (each clinic's daily census as a running sum over
its days)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from composer.engines.spark_rule_frames import _collect, _deaths, _distinct_over, _frame, _rows
from graph.dataset import Dataset
from rules.cache import Cache
from rules.detectors.base import _codes, _empty, _records
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
