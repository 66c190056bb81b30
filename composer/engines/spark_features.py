"""Per-entity aggregates (features/entity_aggregates.py) as Spark DataFrame joins and aggregations.

The driver turns each event table into integer codes (the projection's `ColumnCodes`, graph/codes.py:
ids as codes, dates as day numbers, months as month numbers), amounts and flags, and hands them to
Spark as Arrow tables: Spark never sees an id, a name or another personal value. Spark groups,
counts, joins and sums; every aggregate of every group goes into one long frame (code, column
number, value) that one Spark job collects. The driver then spreads the per-entity values over the
entity codes and derives the ratios of per-entity columns (visits per patient, paid share) with
the same helpers as the pandas engine, so the columns, their order and their dtypes are the
pandas engine's.

On Spark: the groups in `SPARK_GROUPS` (the event-table aggregates over visits, purchases,
contributions, employment, benefits and agency links; the visit-day counts of features/same_day.py;
the shared-identifier counts come from the engine's `graph_counts`). Sums are exact decimal sums
(DECIMAL(38, 18)) turned into doubles, so the order in which Spark adds does not matter; the
pandas engine's sums are compensated (Kahan), so both are the sum correctly rounded, to 1 ulp.

On the driver (`DRIVER_GROUPS`): the same-day pair features (top clinic-pharmacy pairs and their
shares), because the pairs are built on the driver anyway for the reasons' wording
(explain/context.py `same_day_partners`); the entity tables' own attributes; the conduct tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from composer.engines.spark_aggregation import (
    SUM_TYPE,
    Assemble,
    Query,
    Results,
    Sources,
    count_if,
    exact_mean,
    exact_sum,
)
from features.entity_aggregates import (
    GROUPS,
    LONG_SUPPLY_DAYS,
    Columns,
    Given,
    benefit_kinds,
    clinic_beds,
    insured_over_employed,
    paid_share,
    per,
    per_bed,
    share,
)
from graph.dataset import Dataset
from graph.projection import IDENTIFIER_RELATIONSHIPS, Projection

DRIVER_GROUPS = {t: ("same_day_pairs",) for t in ("person", "clinic", "pharmacy")}
SPARK_GROUPS = {t: tuple(name for name, _ in GROUPS[t] if name not in DRIVER_GROUPS.get(t, ())) for t in GROUPS}


# -- person ------------------------------------------------------------------------------------
def _person_visits(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("visits"):
        return _nothing
    n = s.n("person")
    v = s.visits()
    mine = v.filter(F.col("person") >= 0).withColumnRenamed("person", "code")
    basic = q.add(
        mine.groupBy("code").agg(
            F.count(F.lit(1)).alias("visits"),
            exact_sum("amount").alias("amount"),
            exact_sum("claimed").alias("claimed"),
            F.countDistinct(F.when(F.col("clinic") >= 0, F.col("clinic"))).alias("clinics"),
            count_if(F.col("inpatient")).alias("inpatient"),
        ),
        "visits",
        "amount",
        "claimed",
        "clinics",
        "inpatient",
    )
    dated: list[int] = []
    if s.has_dates("visits"):
        per_day = _clinics_per_person_day(s)
        dated += q.add(per_day.groupBy(F.col("person").alias("code")).agg(F.max("clinics").alias("m")), "m")
        dated += q.add(
            per_day.groupBy(F.col("person").alias("code")).agg(count_if(F.col("clinics") >= 2).alias("d")), "d"
        )
        per_month = _dated_visits(s).groupBy("person", "month").agg(F.countDistinct("clinic").alias("clinics"))
        dated += q.add(per_month.groupBy(F.col("person").alias("code")).agg(F.max("clinics").alias("m")), "m")
        after = mine.filter(F.col("day").isNotNull()).join(s.deaths().withColumnRenamed("person", "code"), "code")
        dated += q.add(after.filter(F.col("day") > F.col("death_day")).groupBy("code").count(), "count")
    dtype = s.count_dtype("VISITED", "person", "clinic")

    def assemble(r: Results, earlier: Columns) -> Columns:
        f: Columns = {
            "visits": r.dense(basic[0], n),
            "visit_amount": r.dense(basic[1], n),
            "visit_claimed": r.dense(basic[2], n),
            "distinct_clinics": r.counts(basic[3], n, dtype),
            "inpatient_stays": r.dense(basic[4], n),
        }
        if dated:
            f["max_clinics_one_day"] = r.spread(dated[0], n)
            f["days_multi_clinic"] = r.spread(dated[1], n)
            f["max_clinics_one_month"] = r.spread(dated[2], n)
            f["visits_after_death"] = r.dense(dated[3], n)
        return f

    return assemble


def _dated_visits(s: Sources) -> Any:
    """Visits with a date, a person and a clinic (features/same_day.py `VisitDays.rows`)."""
    from pyspark.sql import functions as F

    return s.visits().filter(F.col("day").isNotNull() & (F.col("person") >= 0) & (F.col("clinic") >= 0))


def _clinics_per_person_day(s: Sources) -> Any:
    from pyspark.sql import functions as F

    return s.memo(
        "clinics_per_person_day",
        lambda: _dated_visits(s).groupBy("person", "day").agg(F.countDistinct("clinic").alias("clinics")),
    )


def _person_purchases(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("purchases"):
        return _nothing
    n = s.n("person")
    p = s.purchases()
    mine = p.filter(F.col("person") >= 0).withColumnRenamed("person", "code")
    basic = q.add(
        mine.groupBy("code").agg(
            F.count(F.lit(1)).alias("purchases"),
            exact_sum("amount").alias("amount"),
            F.countDistinct(F.when(F.col("pharmacy") >= 0, F.col("pharmacy"))).alias("pharmacies"),
            F.max("days_supply").alias("max_supply"),
            exact_sum("days_supply").alias("supply"),
        ),
        "purchases",
        "amount",
        "pharmacies",
        "max_supply",
        "supply",
    )
    dated: list[int] = []
    if s.has_dates("purchases"):
        after = mine.filter(F.col("day").isNotNull()).join(s.deaths().withColumnRenamed("person", "code"), "code")
        dated += q.add(after.filter(F.col("day") > F.col("death_day")).groupBy("code").count(), "count")
        if s.has_dates("visits"):
            days = [
                t.filter(F.col("day").isNotNull() & (F.col("person") >= 0)).select("person", "day").distinct()
                for t in (s.visits(), p)
            ]
            both = days[0].join(days[1], ["person", "day"]).groupBy(F.col("person").alias("code")).count()
            dated += q.add(both, "count")
    dtype = s.count_dtype("PURCHASED", "person", "pharmacy")

    def assemble(r: Results, earlier: Columns) -> Columns:
        f: Columns = {
            "purchases": r.dense(basic[0], n),
            "purchase_amount": r.dense(basic[1], n),
            "distinct_pharmacies": r.counts(basic[2], n, dtype),
            "max_days_supply": r.dense(basic[3], n),
            "total_days_supply": r.dense(basic[4], n),
        }
        if dated:
            f["purchases_after_death"] = r.dense(dated[0], n)
        if len(dated) > 1:
            f["same_day_visit_purchase_days"] = r.dense(dated[1], n)
        return f

    return assemble


def _person_contributions(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("contributions"):
        return _nothing
    n = s.n("person")
    mine = s.contributions().filter(F.col("person") >= 0).withColumnRenamed("person", "code")
    keys = q.add(
        mine.groupBy("code").agg(
            F.count(F.lit(1)).alias("months"),
            exact_sum("paid").alias("paid"),
            count_if(F.coalesce("paid", F.lit(0.0)) >= F.coalesce("due", F.lit(0.0))).alias("in_full"),
            F.countDistinct(F.when(F.col("employer") >= 0, F.col("employer"))).alias("employers"),
        ),
        "months",
        "paid",
        "in_full",
        "employers",
    )
    dtype = s.count_dtype("CONTRIBUTED", "employer", "person")

    def assemble(r: Results, earlier: Columns) -> Columns:
        return {
            "contribution_months": r.dense(keys[0], n),
            "contribution_paid": r.dense(keys[1], n),
            "months_paid_in_full": r.dense(keys[2], n),
            "contribution_employers": r.counts(keys[3], n, dtype),
        }

    return assemble


def _employment_of(entity_type: str) -> Callable[[Sources, Query], Assemble]:
    """A person's jobs, or an employer's employees, from the employment table."""

    def group(s: Sources, q: Query) -> Assemble:
        from pyspark.sql import functions as F

        if not s.has("employment"):
            return _nothing
        n = s.n(entity_type)
        other = "employer" if entity_type == "person" else "person"
        mine = s.employment().filter(F.col(entity_type) >= 0).withColumnRenamed(entity_type, "code")
        keys = q.add(
            mine.groupBy("code").agg(
                F.count(F.lit(1)).alias("jobs"),
                F.max("wage").alias("max_wage"),
                exact_mean("wage").alias("mean_wage"),
                count_if(F.col("placed")).alias("placed"),
                F.countDistinct(F.when(F.col(other) >= 0, F.col(other))).alias("others"),
            ),
            "jobs",
            "max_wage",
            "mean_wage",
            "placed",
            "others",
        )
        if entity_type == "person":
            return lambda r, earlier: {
                "jobs": r.dense(keys[0], n),
                "max_wage": r.dense(keys[1], n),
                "placed_by_agency": r.dense(keys[3], n),
            }
        dtype = s.count_dtype("EMPLOYED_BY", "person", "employer")
        return lambda r, earlier: {
            "employees": r.counts(keys[4], n, dtype),
            "mean_wage": r.dense(keys[2], n),
            "agency_placed": r.dense(keys[3], n),
        }

    return group


def _person_benefits(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("benefits"):
        return _nothing
    n = s.n("person")
    _, levels = s.cols.factor("benefits", "benefit_type")
    names = benefit_kinds(s.dataset)
    mine = s.benefits().filter(F.col("person") >= 0).withColumnRenamed("person", "code")
    by_kind = [
        F.sum(F.when(F.col("kind") == int(levels.get_loc(k)), F.col("amount").cast(SUM_TYPE)))
        .cast("double")
        .alias(f"kind{i}")
        for i, k in enumerate(names)
    ]
    keys = q.add(
        mine.groupBy("code").agg(F.count(F.lit(1)).alias("months"), exact_sum("amount").alias("amount"), *by_kind),
        "months",
        "amount",
        *[f"kind{i}" for i in range(len(names))],
    )
    dated = mine.filter(F.col("month").isNotNull())
    while_paid: list[int] = []
    if s.has("contributions"):
        unemployment = int(levels.get_loc("unemployment")) if "unemployment" in levels else -2
        paid = (
            s.contributions()
            .filter((F.coalesce("paid", F.lit(0.0)) > 0) & (F.col("person") >= 0) & F.col("month").isNotNull())
            .select(F.col("person").alias("code"), "month")
            .distinct()
        )
        both = dated.filter(F.col("kind") == unemployment).join(paid, ["code", "month"], "left_semi")
        while_paid = q.add(both.groupBy("code").count(), "count")
    deaths = s.deaths().withColumnRenamed("person", "code")
    after = dated.join(deaths, "code").filter(F.col("month") > F.col("death_month"))
    after_death = q.add(after.groupBy("code").agg(exact_sum("amount").alias("amount")), "amount")

    def assemble(r: Results, earlier: Columns) -> Columns:
        f: Columns = {"benefit_months": r.dense(keys[0], n), "benefit_amount": r.dense(keys[1], n)}
        for i, kind in enumerate(names):
            f[f"benefit_{kind}_amount"] = r.dense(keys[2 + i], n)
        if while_paid:
            f["unemployment_while_contributing"] = r.dense(while_paid[0], n)
        f["benefits_after_death"] = r.dense(after_death[0], n)
        return f

    return assemble


def _agency_links_of(entity_type: str) -> Callable[[Sources, Query], Assemble]:
    def group(s: Sources, q: Query) -> Assemble:
        from pyspark.sql import functions as F

        if not s.has("agency_links"):
            return _nothing
        n = s.n(entity_type)
        links = s.agency_links().filter(F.col(f"is_{entity_type}") & (F.col(entity_type) >= 0))
        keys = q.add(links.groupBy(F.col(entity_type).alias("code")).count(), "count")
        return lambda r, earlier: {"agency_links": r.dense(keys[0], n)}

    return group


def _shared_identifiers_of(entity_type: str) -> Callable[[Sources, Query], Assemble]:
    """The counts the engine's `graph_counts` made on Spark (handed in as `counts`)."""

    def group(s: Sources, q: Query) -> Assemble:
        lo, n = s.proj.offsets[entity_type], s.n(entity_type)
        names = [f"shares_{i}_with" for i in IDENTIFIER_RELATIONSHIPS]
        return lambda r, earlier: {name: s.counts[name][lo : lo + n] for name in names}

    return group


# -- employer ----------------------------------------------------------------------------------
def _employer_contributions(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("contributions"):
        return _nothing
    n = s.n("employer")
    c = s.contributions()
    mine = c.filter(F.col("employer") >= 0).withColumnRenamed("employer", "code")
    short = F.coalesce("paid", F.lit(0.0)) < F.coalesce("due", F.lit(0.0))
    dated = mine.filter(F.col("month").isNotNull())
    person_months = (
        c.filter((F.col("person") >= 0) & F.col("month").isNotNull())
        .groupBy("person")
        .agg(F.countDistinct("month").alias("person_months"))
    )
    basic = q.add(
        mine.groupBy("code").agg(
            F.countDistinct(F.when(F.col("person") >= 0, F.col("person"))).alias("persons"),
            F.count(F.lit(1)).alias("rows"),
            exact_sum("due").alias("due"),
            exact_sum("paid").alias("paid"),
            exact_mean("base").alias("base"),
        ),
        "persons",
        "rows",
        "due",
        "paid",
        "base",
    )
    arrears = q.add(dated.filter(short).groupBy("code").agg(F.countDistinct("month").alias("m")), "m")
    months = q.add(dated.groupBy("code").agg(F.countDistinct("month").alias("m")), "m")
    tenure = q.add(
        mine.join(person_months, "person", "left")
        .groupBy("code")
        .agg(F.try_divide(F.sum("person_months").cast("double"), F.count("person_months").cast("double")).alias("m")),
        "m",
    )
    dtype = s.count_dtype("CONTRIBUTED", "employer", "person")

    def assemble(r: Results, earlier: Columns) -> Columns:
        f: Columns = {"insured_persons": r.counts(basic[0], n, dtype), "contribution_rows": r.dense(basic[1], n)}
        f["due_total"], f["paid_total"] = r.dense(basic[2], n), r.dense(basic[3], n)
        f["paid_share"] = paid_share(f["due_total"], f["paid_total"])
        f["arrears_months"] = r.spread(arrears[0], n)
        f["months_paid_in_full"] = r.spread(months[0], n) - f["arrears_months"]
        f["mean_base"] = r.dense(basic[4], n)
        f["mean_person_months"] = r.dense(tenure[0], n)
        if "employees" in earlier:
            f["insured_over_employed"] = insured_over_employed(f["insured_persons"], earlier["employees"])
        return f

    return assemble


# -- clinic ------------------------------------------------------------------------------------
def _clinic_visits(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("visits"):
        return _nothing
    n = s.n("clinic")
    mine = s.visits().filter(F.col("clinic") >= 0).withColumnRenamed("clinic", "code")
    keys = q.add(
        mine.groupBy("code").agg(
            F.count(F.lit(1)).alias("visits"),
            F.countDistinct(F.when(F.col("person") >= 0, F.col("person"))).alias("patients"),
            count_if(F.col("inpatient")).alias("inpatient"),
            exact_sum("amount").alias("amount"),
            exact_mean("amount").alias("mean_amount"),
            exact_sum("claimed").alias("claimed"),
        ),
        "visits",
        "patients",
        "inpatient",
        "amount",
        "mean_amount",
        "claimed",
    )
    dtype = s.count_dtype("VISITED", "person", "clinic")

    def assemble(r: Results, earlier: Columns) -> Columns:
        f: Columns = {"visits": r.dense(keys[0], n), "patients": r.counts(keys[1], n, dtype)}
        f["visits_per_patient"] = per(f["visits"], f["patients"])
        f["inpatient_share"] = share(r.dense(keys[2], n), f["visits"])
        f["amount_total"] = r.dense(keys[3], n)
        f["amount_per_visit"] = r.dense(keys[4], n)
        f["claimed_total"] = r.dense(keys[5], n)
        return f

    return assemble


def _clinic_visit_days(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("visits"):
        return _nothing
    n = s.n("clinic")
    multi: list[int] = []
    if s.has_dates("visits"):
        days = _clinics_per_person_day(s).filter(F.col("clinics") >= 2).select("person", "day")
        rows = _dated_visits(s).join(days, ["person", "day"], "left_semi")
        multi = q.add(rows.groupBy(F.col("clinic").alias("code")).count(), "count")
    admissions: list[int] = []
    if s.has_dates("visits", "discharge_date"):
        adm = s.visits().filter(F.col("inpatient") & F.col("day").isNotNull() & (F.col("clinic") >= 0))
        daily = adm.groupBy("clinic", "day").count().groupBy(F.col("clinic").alias("code"))
        admissions = q.add(daily.agg(F.max("count").alias("m")), "m")
    idx = s.proj.ids["clinic"]

    def assemble(r: Results, earlier: Columns) -> Columns:
        f: Columns = {}
        if multi:
            f["multi_clinic_day_visits"] = per(r.dense(multi[0], n), earlier["visits"])
        if admissions:
            f["max_daily_admissions_per_bed"] = per_bed(r.spread(admissions[0], n), clinic_beds(s.cols, idx))
        return f

    return assemble


# -- pharmacy ----------------------------------------------------------------------------------
def _pharmacy_purchases(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("purchases"):
        return _nothing
    n = s.n("pharmacy")
    mine = s.purchases().filter(F.col("pharmacy") >= 0).withColumnRenamed("pharmacy", "code")
    keys = q.add(
        mine.groupBy("code").agg(
            F.count(F.lit(1)).alias("purchases"),
            F.countDistinct(F.when(F.col("person") >= 0, F.col("person"))).alias("customers"),
            exact_sum("amount").alias("amount"),
            exact_mean("amount").alias("mean_amount"),
            count_if(F.col("days_supply") > LONG_SUPPLY_DAYS).alias("long"),
        ),
        "purchases",
        "customers",
        "amount",
        "mean_amount",
        "long",
    )
    dtype = s.count_dtype("PURCHASED", "person", "pharmacy")

    def assemble(r: Results, earlier: Columns) -> Columns:
        f: Columns = {"purchases": r.dense(keys[0], n), "customers": r.counts(keys[1], n, dtype)}
        f["purchases_per_customer"] = per(f["purchases"], f["customers"])
        f["amount_total"] = r.dense(keys[2], n)
        f["amount_per_purchase"] = r.dense(keys[3], n)
        f["long_supply_share"] = share(r.dense(keys[4], n), f["purchases"])
        return f

    return assemble


# -- agency ------------------------------------------------------------------------------------
def _agency_links(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("agency_links"):
        return _nothing
    n = s.n("agency")
    mine = s.agency_links().filter(F.col("agency") >= 0).withColumnRenamed("agency", "code")
    keys = q.add(
        mine.groupBy("code").agg(
            count_if(F.col("is_person")).alias("persons"), count_if(F.col("is_employer")).alias("employers")
        ),
        "persons",
        "employers",
    )
    return lambda r, earlier: {"linked_persons": r.dense(keys[0], n), "linked_employers": r.dense(keys[1], n)}


def _agency_employment(s: Sources, q: Query) -> Assemble:
    from pyspark.sql import functions as F

    if not s.has("employment"):
        return _nothing
    n = s.n("agency")
    e = s.employment()
    placed = e.filter(F.col("placed") & (F.col("agency") >= 0)).withColumnRenamed("agency", "code")
    size = (
        e.filter((F.col("employer") >= 0) & (F.col("person") >= 0))
        .groupBy("employer")
        .agg(F.countDistinct("person").alias("size"))
    )
    keys = q.add(
        placed.join(size, "employer", "left")
        .groupBy("code")
        .agg(F.count(F.lit(1)).alias("placements"), F.median("size").alias("median")),
        "placements",
        "median",
    )
    employers = q.add(
        placed.filter(F.col("employer") >= 0).groupBy("code").agg(F.countDistinct("employer").alias("e")), "e"
    )
    return lambda r, earlier: {
        "placements": r.dense(keys[0], n),
        "placed_employers": r.spread(employers[0], n),
        "placed_employer_median_size": r.dense(keys[1], n),
    }


def _nothing(r: Results, earlier: Columns) -> Columns:
    return {}


Builder = Callable[[Sources, Query], Assemble]
BUILDERS: dict[str, dict[str, Builder]] = {
    "person": {
        "visits": _person_visits,
        "purchases": _person_purchases,
        "contributions": _person_contributions,
        "employment": _employment_of("person"),
        "benefits": _person_benefits,
        "agency_links": _agency_links_of("person"),
        "shared_identifiers": _shared_identifiers_of("person"),
    },
    "employer": {
        "employment": _employment_of("employer"),
        "contributions": _employer_contributions,
        "agency_links": _agency_links_of("employer"),
        "shared_identifiers": _shared_identifiers_of("employer"),
    },
    "clinic": {"visits": _clinic_visits, "visit_days": _clinic_visit_days},
    "pharmacy": {"purchases": _pharmacy_purchases},
    "agency": {"agency_links": _agency_links, "employment": _agency_employment},
}


def spark_aggregates(
    session: Any, dataset: Dataset, proj: Projection, counts: Mapping[str, np.ndarray]
) -> dict[str, Given]:
    """Per entity type, the groups of derived features in `SPARK_GROUPS` (for `build_features`'s
    `given`): every aggregate computed by one Spark job, then assembled per group on the driver."""
    s = Sources(session, dataset, proj, proj.column_codes.sharing_ids(), counts)
    q = Query()
    plans = {t: [(name, BUILDERS[t][name](s, q)) for name in SPARK_GROUPS[t]] for t in SPARK_GROUPS}
    results = q.collect()
    out: dict[str, Given] = {}
    for t, groups in plans.items():
        earlier: Columns = {}
        given: dict[str, Columns] = {}
        for name, assemble in groups:
            given[name] = assemble(results, earlier)
            earlier.update(given[name])
        out[t] = given
    return out
