"""The employer and agency detectors on Spark (rules/detectors/employers.py): base_below_wage
(each contribution's base against the wage of the latest spell of its employer and person, by a
window's first row), headcount_inflation (each employer's busiest month, counted and ranked),
employer_arrears (Spark narrows to the months that could fire; the driver decides on their rows
with the pandas detector's sums), agency_shell_routing (each agency's distinct persons and
employers among its placements into small employers)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from composer.engines.spark_rule_frames import _collect, _distinct_over, _frame, _nullable, _rows
from graph.dataset import Dataset
from rules.cache import NAT, Cache
from rules.detectors.base import _empty
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
