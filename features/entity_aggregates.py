"""Per-entity aggregates: each entity type's derived features from the event tables (visits,
purchases, contributions, employment, benefits, agency links) and the shared identifiers,
followed by the entity table's own attributes.

One row per entity in the projection's order (sorted ids); group-bys run on integer codes from
the projection's `ColumnCodes` (graph/codes.py: ids as codes, dates as day and month numbers)
with the kernels of features/groupby.py, never on the id strings.

Each entity type's derived features come in named groups (`GROUPS`: one per event table, the
same-day pairs, the shared identifiers), computed in order; a later group may read an earlier
group's columns. A caller that computed some groups elsewhere (the Spark engine,
composer/engines/spark_features.py) hands them in as `given` (group name -> its columns in
order), and those groups are not computed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.attributes import in_code_order, with_attributes
from features.groupby import (
    agg,
    count_rows,
    distinct_per_group,
    flag_sum,
    group_max,
    int_or_float,
    isin_sorted,
    pack,
    spread,
    unique_counts,
)
from features.same_day import (
    SameDayPairs,
    repeat_pair_persons,
    same_day_visit_purchase_days,
    top_pair_days,
    top_partner,
    top_partner_share,
    visit_days,
)
from graph.codes import DAY_MIN, DAY_SPAN, MONTH_MIN, MONTH_SPAN, NAT, ColumnCodes, unique_sorted
from graph.dataset import Dataset
from graph.projection import Projection


def _shared_identifier_counts(proj: Projection, entity_type: str) -> dict[str, np.ndarray]:
    """How many other persons/employers share each entity's phone, address, bank account."""
    out: dict[str, np.ndarray] = {}
    for ident, rel in (("phone", "HAS_PHONE"), ("address", "HAS_ADDRESS"), ("bank_account", "HAS_BANK_ACCOUNT")):
        own = proj.matrix(rel, entity_type, ident)
        holders = proj.matrix(rel, "person", ident)
        holders_emp = proj.matrix(rel, "employer", ident)
        per_value = np.asarray(holders.sum(axis=0)).ravel() + np.asarray(holders_emp.sum(axis=0)).ravel()
        shared = own @ per_value - np.asarray(own.sum(axis=1)).ravel()
        out[f"shares_{ident}_with"] = np.maximum(shared, 0)
    return out


def _death(cols: ColumnCodes) -> tuple[np.ndarray, np.ndarray]:
    """Per person code: death date in ns (NAT if none), and whether there is one."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        death = in_code_order(cols, "person", cols.ns("persons", "death_date"))
        return death, death != NAT

    return cols.memo("death", build)


def _after_death(cols: ColumnCodes, table: str, date_col: str) -> np.ndarray:
    """Rows dated after their person's death."""
    p = cols.codes(table, "person_id", "person")
    death, dead = _death(cols)
    ok = cols.notna(table, date_col) & (p >= 0)
    ok[ok] = dead[p[ok]]
    out = np.zeros(len(p), dtype=bool)
    out[ok] = cols.ns(table, date_col)[ok] > death[p[ok]]
    return out


LONG_SUPPLY_DAYS = 7  # a purchase supplying more days than this is a long supply
Columns = dict[str, np.ndarray | pd.Series]  # feature name -> one value per entity (code order)
Given = Mapping[str, Columns]  # group name -> its columns, computed elsewhere


@dataclass(frozen=True)
class Inputs:
    """What a group of one entity type's derived features reads."""

    dataset: Dataset
    proj: Projection
    cols: ColumnCodes
    pairs: SameDayPairs | None
    n: int  # entities of the type


Group = Callable[[Inputs, pd.DataFrame], Columns]  # (inputs, the earlier groups' columns) -> columns


def _derived(x: Inputs, entity_type: str, given: Given | None) -> pd.DataFrame:
    """The entity type's derived features: its groups in order, each computed here unless given."""
    f = pd.DataFrame(index=x.proj.ids[entity_type].rename("entity_id"))
    for name, group in GROUPS[entity_type]:
        part = given[name] if given is not None and name in given else group(x, f)
        for col, values in part.items():
            f[col] = values
    return f


def _features(
    entity_type: str,
    dataset: Dataset,
    proj: Projection,
    ref: pd.Timestamp | None,
    pairs: SameDayPairs | None,
    cols: ColumnCodes | None,
    given: Given | None,
) -> pd.DataFrame:
    cols = cols or proj.column_codes.sharing_ids()
    x = Inputs(dataset, proj, cols, pairs, len(proj.ids[entity_type]))
    return with_attributes(dataset, entity_type, ref, _derived(x, entity_type, given), cols)


def person_features(
    dataset: Dataset,
    proj: Projection,
    ref: pd.Timestamp | None,
    pairs: SameDayPairs | None = None,
    cols: ColumnCodes | None = None,
    given: Given | None = None,
) -> pd.DataFrame:
    return _features("person", dataset, proj, ref, pairs, cols, given)


def employer_features(
    dataset: Dataset,
    proj: Projection,
    ref: pd.Timestamp | None,
    cols: ColumnCodes | None = None,
    given: Given | None = None,
) -> pd.DataFrame:
    return _features("employer", dataset, proj, ref, None, cols, given)


def clinic_features(
    dataset: Dataset,
    proj: Projection,
    ref: pd.Timestamp | None,
    pairs: SameDayPairs,
    cols: ColumnCodes | None = None,
    given: Given | None = None,
) -> pd.DataFrame:
    return _features("clinic", dataset, proj, ref, pairs, cols, given)


def pharmacy_features(
    dataset: Dataset,
    proj: Projection,
    ref: pd.Timestamp | None,
    pairs: SameDayPairs,
    cols: ColumnCodes | None = None,
    given: Given | None = None,
) -> pd.DataFrame:
    return _features("pharmacy", dataset, proj, ref, pairs, cols, given)


def agency_features(
    dataset: Dataset,
    proj: Projection,
    ref: pd.Timestamp | None,
    cols: ColumnCodes | None = None,
    given: Given | None = None,
) -> pd.DataFrame:
    return _features("agency", dataset, proj, ref, None, cols, given)


def _has_dates(x: Inputs, table: str, column: str = "date") -> bool:
    return x.dataset.has(table) and bool(x.cols.notna(table, column).any())


# -- person ----------------------------------------------------------------------------------
def _person_visits(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("visits"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    vp = cols.codes("visits", "person_id", "person")
    f["visits"] = count_rows(vp, n)
    f["visit_amount"] = agg(vp, n, cols.floats("visits", "amount"), "sum")
    f["visit_claimed"] = agg(vp, n, cols.floats("visits", "claimed"), "sum")
    f["distinct_clinics"] = np.diff(x.proj.matrix("VISITED", "person", "clinic").indptr)
    f["inpatient_stays"] = flag_sum(vp, n, cols.eq("visits", "kind", "inpatient"))
    if _has_dates(x, "visits"):
        vd = visit_days(cols)
        person = vd.person_day // DAY_SPAN
        present = np.bincount(person, minlength=n) > 0
        f["max_clinics_one_day"] = int_or_float(group_max(person, n, vd.clinics), present)
        f["days_multi_clinic"] = int_or_float(np.bincount(person[vd.clinics >= 2], minlength=n), present)
        rows = vd.rows
        mk = pack(
            [
                (vp[rows], n),
                (cols.date_months("visits", "date")[rows] - MONTH_MIN, MONTH_SPAN),
                (cols.codes("visits", "clinic_id", "clinic")[rows], vd.nc),
            ]
        )
        pm, clinics = distinct_per_group(mk, vd.nc)
        person = pm // MONTH_SPAN
        present = np.bincount(person, minlength=n) > 0
        f["max_clinics_one_month"] = int_or_float(group_max(person, n, clinics), present)
        f["visits_after_death"] = flag_sum(vp, n, _after_death(cols, "visits", "date"))
    return f


def _person_purchases(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("purchases"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    pp = cols.codes("purchases", "person_id", "person")
    f["purchases"] = count_rows(pp, n)
    f["purchase_amount"] = agg(pp, n, cols.floats("purchases", "amount"), "sum")
    f["distinct_pharmacies"] = np.diff(x.proj.matrix("PURCHASED", "person", "pharmacy").indptr)
    f["max_days_supply"] = agg(pp, n, cols.floats("purchases", "days_supply"), "max")
    f["total_days_supply"] = agg(pp, n, cols.floats("purchases", "days_supply"), "sum")
    if _has_dates(x, "purchases"):
        f["purchases_after_death"] = flag_sum(pp, n, _after_death(cols, "purchases", "date"))
        if _has_dates(x, "visits"):
            f["same_day_visit_purchase_days"] = same_day_visit_purchase_days(cols)
    return f


def _person_same_day_pairs(x: Inputs, _: pd.DataFrame) -> Columns:
    if not (_has_dates(x, "purchases") and _has_dates(x, "visits")) or x.pairs is None or not len(x.pairs):
        return {}
    return {"top_pair_same_days": top_pair_days(x.pairs, x.cols)}


def _person_contributions(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("contributions"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    cp = cols.codes("contributions", "person_id", "person")
    f["contribution_months"] = count_rows(cp, n)
    f["contribution_paid"] = agg(cp, n, cols.floats("contributions", "paid"), "sum")
    # good conduct (守信): monthly contributions for the person paid in full
    due, paid = cols.floats("contributions", "due"), cols.floats("contributions", "paid")
    f["months_paid_in_full"] = flag_sum(cp, n, np.nan_to_num(paid) >= np.nan_to_num(due))
    f["contribution_employers"] = np.diff(x.proj.matrix("CONTRIBUTED", "employer", "person").T.tocsr().indptr)
    return f


def _person_employment(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("employment"):
        return {}
    cols, n = x.cols, x.n
    ep = cols.codes("employment", "person_id", "person")
    return {
        "jobs": count_rows(ep, n),
        "max_wage": agg(ep, n, cols.floats("employment", "monthly_wage"), "max"),
        "placed_by_agency": flag_sum(ep, n, cols.notna("employment", "agency_id")),
    }


def benefit_kinds(dataset: Dataset) -> list[str]:
    """The benefit types that get an amount column each (the first ten, sorted)."""
    kinds: list[str] = sorted(dataset.tables["benefits"]["benefit_type"].dropna().unique())[:10]
    return kinds


def _person_benefits(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("benefits"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    bp = cols.codes("benefits", "person_id", "person")
    amount = cols.floats("benefits", "amount")
    f["benefit_months"] = count_rows(bp, n)
    f["benefit_amount"] = agg(bp, n, amount, "sum")
    kinds, levels = cols.factor("benefits", "benefit_type")
    for kind in benefit_kinds(x.dataset):
        mask = kinds == levels.get_loc(kind)
        f[f"benefit_{kind}_amount"] = agg(bp, n, amount, "sum", mask)
    month = cols.months("benefits", "month")
    if x.dataset.has("contributions"):
        cp = cols.codes("contributions", "person_id", "person")
        cm = cols.months("contributions", "month")
        paid = (
            (np.nan_to_num(cols.floats("contributions", "paid")) > 0) & (cp >= 0) & cols.notna("contributions", "month")
        )
        paid_keys = unique_sorted(pack([(cp[paid], n), (cm[paid] - MONTH_MIN, MONTH_SPAN)]))
        unemp = cols.eq("benefits", "benefit_type", "unemployment") & (bp >= 0) & cols.notna("benefits", "month")
        both = np.zeros(len(bp), dtype=bool)
        both[unemp] = isin_sorted(pack([(bp[unemp], n), (month[unemp] - MONTH_MIN, MONTH_SPAN)]), paid_keys)
        f["unemployment_while_contributing"] = count_rows(bp, n, both)
    _, dead = _death(cols)
    death_month = in_code_order(cols, "person", cols.date_months("persons", "death_date"))
    ok = (bp >= 0) & cols.notna("benefits", "month")
    ok[ok] = dead[bp[ok]]
    after = np.zeros(len(bp), dtype=bool)
    after[ok] = month[ok] > death_month[bp[ok]]
    f["benefits_after_death"] = agg(bp, n, np.where(after, amount, 0.0), "sum")
    return f


def _agency_links_of(entity_type: str) -> Group:
    def group(x: Inputs, _: pd.DataFrame) -> Columns:
        if not x.dataset.has("agency_links"):
            return {}
        cols = x.cols
        linked = cols.eq("agency_links", "entity_type", entity_type)
        return {"agency_links": count_rows(cols.codes("agency_links", "entity_id", entity_type), x.n, linked)}

    return group


def _shared_identifiers_of(entity_type: str) -> Group:
    return lambda x, _: dict(_shared_identifier_counts(x.proj, entity_type))


# -- employer --------------------------------------------------------------------------------
def _employer_employment(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("employment"):
        return {}
    cols, n = x.cols, x.n
    ee = cols.codes("employment", "employer_id", "employer")
    return {
        "employees": np.diff(x.proj.matrix("EMPLOYED_BY", "person", "employer").T.tocsr().indptr),
        "mean_wage": agg(ee, n, cols.floats("employment", "monthly_wage"), "mean"),
        "agency_placed": flag_sum(ee, n, cols.notna("employment", "agency_id")),
    }


def _employer_contributions(x: Inputs, earlier: pd.DataFrame) -> Columns:
    if not x.dataset.has("contributions"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    ce = cols.codes("contributions", "employer_id", "employer")
    cp = cols.codes("contributions", "person_id", "person")
    cm = cols.months("contributions", "month")
    has_month = cols.notna("contributions", "month")
    f["insured_persons"] = np.diff(x.proj.matrix("CONTRIBUTED", "employer", "person").indptr)
    f["contribution_rows"] = count_rows(ce, n)
    due, paid = cols.floats("contributions", "due"), cols.floats("contributions", "paid")
    f["due_total"] = agg(ce, n, due, "sum")
    f["paid_total"] = agg(ce, n, paid, "sum")
    f["paid_share"] = paid_share(f["due_total"], f["paid_total"])
    short = (np.nan_to_num(paid) < np.nan_to_num(due)) & (ce >= 0) & has_month
    emp, months = distinct_per_group(pack([(ce[short], n), (cm[short] - MONTH_MIN, MONTH_SPAN)]), MONTH_SPAN)
    f["arrears_months"] = spread(emp, months, n)
    # good conduct (守信): months whose every contribution due was paid in full
    ok = (ce >= 0) & has_month
    emp, months = distinct_per_group(pack([(ce[ok], n), (cm[ok] - MONTH_MIN, MONTH_SPAN)]), MONTH_SPAN)
    f["months_paid_in_full"] = spread(emp, months, n) - f["arrears_months"]
    f["mean_base"] = agg(ce, n, cols.floats("contributions", "base"), "mean")
    ok = (cp >= 0) & has_month
    person, months = distinct_per_group(
        pack([(cp[ok], cols.n("person")), (cm[ok] - MONTH_MIN, MONTH_SPAN)]), MONTH_SPAN
    )
    per_person = np.full(cols.n("person") + 1, np.nan)  # last slot: code -1
    per_person[person] = months
    f["mean_person_months"] = agg(ce, n, per_person[cp], "mean")
    if "employees" in earlier:
        f["insured_over_employed"] = insured_over_employed(f["insured_persons"], earlier["employees"])
    return f


def paid_share(due_total: np.ndarray, paid_total: np.ndarray) -> np.ndarray:
    """Paid over due per employer (1 where nothing was due)."""
    due = np.asarray(due_total, dtype=np.float64)
    out: np.ndarray = np.where(due > 0, np.asarray(paid_total) / np.where(due > 0, due, 1), 1.0)
    return out


def insured_over_employed(insured: np.ndarray, employees: np.ndarray | pd.Series) -> np.ndarray:
    out: np.ndarray = (np.asarray(insured) + 1) / (np.asarray(employees) + 1)
    return out


# -- clinic ----------------------------------------------------------------------------------
def _clinic_visits(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("visits"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    vc = cols.codes("visits", "clinic_id", "clinic")
    amount = cols.floats("visits", "amount")
    m = x.proj.matrix("VISITED", "person", "clinic")
    f["visits"] = count_rows(vc, n)
    f["patients"] = np.diff(m.T.tocsr().indptr)
    f["visits_per_patient"] = per(f["visits"], f["patients"])
    f["inpatient_share"] = share(flag_sum(vc, n, cols.eq("visits", "kind", "inpatient")), f["visits"])
    f["amount_total"] = agg(vc, n, amount, "sum")
    f["amount_per_visit"] = agg(vc, n, amount, "mean")
    f["claimed_total"] = agg(vc, n, cols.floats("visits", "claimed"), "sum")
    return f


def per(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """values / max(of, 1)."""
    out: np.ndarray = np.asarray(values) / np.maximum(np.asarray(of), 1)
    return out


def share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole where whole > 0, else 0."""
    whole = np.asarray(whole)
    out: np.ndarray = np.divide(part, whole, out=np.zeros(len(whole)), where=whole > 0)
    return out


def _same_day_partner_columns(x: Inputs, earlier: pd.DataFrame, kt: str) -> Columns:
    if not x.dataset.has("visits" if kt == "clinic" else "purchases") or x.pairs is None or not len(x.pairs):
        return {}
    pairs, cols, n = x.pairs, x.cols, x.n
    pt, events, people = ("pharmacy", "visits", "patients") if kt == "clinic" else ("clinic", "purchases", "customers")
    top, persons = top_partner(pairs, kt, pt, cols)
    return {
        f"same_day_{pt}_share": per(count_rows(getattr(pairs, kt), n), earlier[events].to_numpy()),
        f"top_{pt}_share": top_partner_share(pairs, kt, pt, cols),
        f"top_{pt}_{people[:-1]}_share": persons / np.maximum(earlier[people].to_numpy(), 1),
        f"top_{pt}_repeat_{people}": repeat_pair_persons(pairs, kt, top, cols),
    }


def _clinic_visit_days(x: Inputs, earlier: pd.DataFrame) -> Columns:
    if not x.dataset.has("visits"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    vc = cols.codes("visits", "clinic_id", "clinic")
    if _has_dates(x, "visits"):
        vd = visit_days(cols)
        rows = vd.rows
        multi = np.zeros(len(vc), dtype=bool)
        multi[rows] = (vd.clinics >= 2)[vd.row_group]
        f["multi_clinic_day_visits"] = per(count_rows(vc, n, multi), earlier["visits"].to_numpy())
    if _has_dates(x, "visits", "discharge_date"):
        idx = x.proj.ids["clinic"]
        f["max_daily_admissions_per_bed"] = _admissions_per_bed(cols, idx, clinic_beds(cols, idx))
    return f


def clinic_beds(cols: ColumnCodes, idx: pd.Index) -> pd.Series:
    return pd.Series(in_code_order(cols, "clinic", cols.floats("clinics", "beds")), index=idx)


def _admissions_per_bed(cols: ColumnCodes, idx: pd.Index, beds: pd.Series) -> np.ndarray:
    n = len(idx)
    vc = cols.codes("visits", "clinic_id", "clinic")
    adm = cols.eq("visits", "kind", "inpatient") & cols.notna("visits", "date") & (vc >= 0)
    clinic, counts = _distinct_per_day(vc[adm], n, cols.days("visits", "date")[adm] - DAY_MIN)
    daily = np.zeros(n, dtype=np.int64)
    np.maximum.at(daily, clinic, counts)
    present = np.zeros(n, dtype=bool)
    present[clinic] = True
    return per_bed(int_or_float(daily, present), beds)


def per_bed(daily_admissions: np.ndarray, beds: pd.Series) -> np.ndarray:
    """A clinic's most admissions in one day over its beds (at least 1; 1 when unknown)."""
    daily = pd.Series(daily_admissions, index=beds.index)
    out: np.ndarray = (daily / beds.clip(lower=1).fillna(1)).to_numpy()
    return out


def _distinct_per_day(codes: np.ndarray, n: int, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows per (entity, day): (entity of each group, its row count); days as day numbers - DAY_MIN."""
    key, counts = unique_counts(pack([(codes, n), (days, DAY_SPAN)]))
    return key // DAY_SPAN, counts


# -- pharmacy --------------------------------------------------------------------------------
def _pharmacy_purchases(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("purchases"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    ph = cols.codes("purchases", "pharmacy_id", "pharmacy")
    amount = cols.floats("purchases", "amount")
    f["purchases"] = count_rows(ph, n)
    f["customers"] = np.diff(x.proj.matrix("PURCHASED", "person", "pharmacy").T.tocsr().indptr)
    f["purchases_per_customer"] = per(f["purchases"], f["customers"])
    f["amount_total"] = agg(ph, n, amount, "sum")
    f["amount_per_purchase"] = agg(ph, n, amount, "mean")
    long_supply = cols.floats("purchases", "days_supply") > LONG_SUPPLY_DAYS
    f["long_supply_share"] = share(flag_sum(ph, n, long_supply), f["purchases"])
    return f


# -- agency ----------------------------------------------------------------------------------
def _agency_links(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("agency_links"):
        return {}
    la = x.cols.codes("agency_links", "agency_id", "agency")
    return {
        f"linked_{et}s": count_rows(la, x.n, x.cols.eq("agency_links", "entity_type", et))
        for et in ("person", "employer")
    }


def _agency_employment(x: Inputs, _: pd.DataFrame) -> Columns:
    if not x.dataset.has("employment"):
        return {}
    cols, n = x.cols, x.n
    f: Columns = {}
    ea = cols.codes("employment", "agency_id", "agency")
    ee = cols.codes("employment", "employer_id", "employer")
    ep = cols.codes("employment", "person_id", "person")
    ne = cols.n("employer")
    placed = cols.notna("employment", "agency_id")
    f["placements"] = count_rows(ea, n, placed)
    ok = placed & (ea >= 0) & (ee >= 0)
    agency, employers = distinct_per_group(pack([(ea[ok], n), (ee[ok], ne)]), ne)
    f["placed_employers"] = spread(agency, employers, n)
    ok = (ee >= 0) & (ep >= 0)
    emp, persons = distinct_per_group(pack([(ee[ok], ne), (ep[ok], cols.n("person"))]), cols.n("person"))
    size = np.full(ne + 1, np.nan)  # last slot: code -1
    size[emp] = persons
    f["placed_employer_median_size"] = agg(ea, n, size[ee], "median", placed)
    return f


# Each entity type's groups of derived features, in column order (see the module doc).
GROUPS: dict[str, tuple[tuple[str, Group], ...]] = {
    "person": (
        ("visits", _person_visits),
        ("purchases", _person_purchases),
        ("same_day_pairs", _person_same_day_pairs),
        ("contributions", _person_contributions),
        ("employment", _person_employment),
        ("benefits", _person_benefits),
        ("agency_links", _agency_links_of("person")),
        ("shared_identifiers", _shared_identifiers_of("person")),
    ),
    "employer": (
        ("employment", _employer_employment),
        ("contributions", _employer_contributions),
        ("agency_links", _agency_links_of("employer")),
        ("shared_identifiers", _shared_identifiers_of("employer")),
    ),
    "clinic": (
        ("visits", _clinic_visits),
        ("same_day_pairs", lambda x, f: _same_day_partner_columns(x, f, "clinic")),
        ("visit_days", _clinic_visit_days),
    ),
    "pharmacy": (
        ("purchases", _pharmacy_purchases),
        ("same_day_pairs", lambda x, f: _same_day_partner_columns(x, f, "pharmacy")),
    ),
    "agency": (
        ("agency_links", _agency_links),
        ("employment", _agency_employment),
    ),
}
