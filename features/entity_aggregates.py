"""Per-entity aggregates: each entity type's derived features from the event tables (visits,
purchases, contributions, employment, benefits, agency links) and the shared identifiers,
followed by the entity table's own attributes.

One row per entity in the projection's order (sorted ids); group-bys run on integer codes from
the projection's `ColumnCodes` (graph/codes.py: ids as codes, dates as day and month numbers)
with the kernels of features/groupby.py, never on the id strings.
"""

from __future__ import annotations

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


def person_features(
    dataset: Dataset,
    proj: Projection,
    ref: pd.Timestamp | None,
    pairs: SameDayPairs | None = None,
    cols: ColumnCodes | None = None,
) -> pd.DataFrame:
    cols = cols or proj.column_codes.sharing_ids()
    idx = proj.ids["person"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))  # derived features; attributes join at the end
    if dataset.has("visits"):
        vp = cols.codes("visits", "person_id", "person")
        f["visits"] = count_rows(vp, n)
        f["visit_amount"] = agg(vp, n, cols.floats("visits", "amount"), "sum")
        f["visit_claimed"] = agg(vp, n, cols.floats("visits", "claimed"), "sum")
        f["distinct_clinics"] = np.diff(proj.matrix("VISITED", "person", "clinic").indptr)
        f["inpatient_stays"] = flag_sum(vp, n, cols.eq("visits", "kind", "inpatient"))
        if cols.notna("visits", "date").any():
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
    if dataset.has("purchases"):
        pp = cols.codes("purchases", "person_id", "person")
        f["purchases"] = count_rows(pp, n)
        f["purchase_amount"] = agg(pp, n, cols.floats("purchases", "amount"), "sum")
        f["distinct_pharmacies"] = np.diff(proj.matrix("PURCHASED", "person", "pharmacy").indptr)
        f["max_days_supply"] = agg(pp, n, cols.floats("purchases", "days_supply"), "max")
        f["total_days_supply"] = agg(pp, n, cols.floats("purchases", "days_supply"), "sum")
        if cols.notna("purchases", "date").any():
            f["purchases_after_death"] = flag_sum(pp, n, _after_death(cols, "purchases", "date"))
            if dataset.has("visits") and cols.notna("visits", "date").any():
                f["same_day_visit_purchase_days"] = same_day_visit_purchase_days(cols)
                if pairs is not None and len(pairs):
                    f["top_pair_same_days"] = top_pair_days(pairs, cols)
    if dataset.has("contributions"):
        cp = cols.codes("contributions", "person_id", "person")
        f["contribution_months"] = count_rows(cp, n)
        f["contribution_paid"] = agg(cp, n, cols.floats("contributions", "paid"), "sum")
        # good conduct (守信): monthly contributions for the person paid in full
        due, paid = cols.floats("contributions", "due"), cols.floats("contributions", "paid")
        f["months_paid_in_full"] = flag_sum(cp, n, np.nan_to_num(paid) >= np.nan_to_num(due))
        f["contribution_employers"] = np.diff(proj.matrix("CONTRIBUTED", "employer", "person").T.tocsr().indptr)
    if dataset.has("employment"):
        ep = cols.codes("employment", "person_id", "person")
        f["jobs"] = count_rows(ep, n)
        f["max_wage"] = agg(ep, n, cols.floats("employment", "monthly_wage"), "max")
        f["placed_by_agency"] = flag_sum(ep, n, cols.notna("employment", "agency_id"))
    if dataset.has("benefits"):
        b = dataset.tables["benefits"]
        bp = cols.codes("benefits", "person_id", "person")
        amount = cols.floats("benefits", "amount")
        f["benefit_months"] = count_rows(bp, n)
        f["benefit_amount"] = agg(bp, n, amount, "sum")
        kinds, levels = cols.factor("benefits", "benefit_type")
        for kind in sorted(b["benefit_type"].dropna().unique())[:10]:
            mask = kinds == levels.get_loc(kind)
            f[f"benefit_{kind}_amount"] = agg(bp, n, amount, "sum", mask)
        month = cols.months("benefits", "month")
        if dataset.has("contributions"):
            cp = cols.codes("contributions", "person_id", "person")
            cm = cols.months("contributions", "month")
            paid = (
                (np.nan_to_num(cols.floats("contributions", "paid")) > 0)
                & (cp >= 0)
                & cols.notna("contributions", "month")
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
    if dataset.has("agency_links"):
        f["agency_links"] = count_rows(
            cols.codes("agency_links", "entity_id", "person"), n, cols.eq("agency_links", "entity_type", "person")
        )
    for name, values in _shared_identifier_counts(proj, "person").items():
        f[name] = values
    return with_attributes(dataset, "person", ref, f, cols)


def employer_features(
    dataset: Dataset, proj: Projection, ref: pd.Timestamp | None, cols: ColumnCodes | None = None
) -> pd.DataFrame:
    cols = cols or proj.column_codes.sharing_ids()
    idx = proj.ids["employer"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))  # derived features; attributes join at the end
    if dataset.has("employment"):
        ee = cols.codes("employment", "employer_id", "employer")
        f["employees"] = np.diff(proj.matrix("EMPLOYED_BY", "person", "employer").T.tocsr().indptr)
        f["mean_wage"] = agg(ee, n, cols.floats("employment", "monthly_wage"), "mean")
        f["agency_placed"] = flag_sum(ee, n, cols.notna("employment", "agency_id"))
    if dataset.has("contributions"):
        ce = cols.codes("contributions", "employer_id", "employer")
        cp = cols.codes("contributions", "person_id", "person")
        cm = cols.months("contributions", "month")
        has_month = cols.notna("contributions", "month")
        f["insured_persons"] = np.diff(proj.matrix("CONTRIBUTED", "employer", "person").indptr)
        f["contribution_rows"] = count_rows(ce, n)
        due, paid = cols.floats("contributions", "due"), cols.floats("contributions", "paid")
        f["due_total"] = agg(ce, n, due, "sum")
        f["paid_total"] = agg(ce, n, paid, "sum")
        f["paid_share"] = np.where(
            f["due_total"] > 0, f["paid_total"] / f["due_total"].where(f["due_total"] > 0, 1), 1.0
        )
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
        if "employees" in f:
            f["insured_over_employed"] = (f["insured_persons"] + 1) / (f["employees"] + 1)
    if dataset.has("agency_links"):
        f["agency_links"] = count_rows(
            cols.codes("agency_links", "entity_id", "employer"), n, cols.eq("agency_links", "entity_type", "employer")
        )
    for name, values in _shared_identifier_counts(proj, "employer").items():
        f[name] = values
    return with_attributes(dataset, "employer", ref, f, cols)


def clinic_features(
    dataset: Dataset, proj: Projection, ref: pd.Timestamp | None, pairs: SameDayPairs, cols: ColumnCodes | None = None
) -> pd.DataFrame:
    cols = cols or proj.column_codes.sharing_ids()
    idx = proj.ids["clinic"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))  # derived features; attributes join at the end
    if dataset.has("visits"):
        vc = cols.codes("visits", "clinic_id", "clinic")
        amount = cols.floats("visits", "amount")
        m = proj.matrix("VISITED", "person", "clinic")
        f["visits"] = count_rows(vc, n)
        f["patients"] = np.diff(m.T.tocsr().indptr)
        f["visits_per_patient"] = f["visits"] / np.maximum(f["patients"], 1)
        inpatient = cols.eq("visits", "kind", "inpatient")
        f["inpatient_share"] = np.divide(
            flag_sum(vc, n, inpatient), f["visits"].to_numpy(), out=np.zeros(n), where=f["visits"].to_numpy() > 0
        )
        f["amount_total"] = agg(vc, n, amount, "sum")
        f["amount_per_visit"] = agg(vc, n, amount, "mean")
        f["claimed_total"] = agg(vc, n, cols.floats("visits", "claimed"), "sum")
        if len(pairs):
            f["same_day_pharmacy_share"] = count_rows(pairs.clinic, n) / np.maximum(f["visits"], 1)
            f["top_pharmacy_share"] = top_partner_share(pairs, "clinic", "pharmacy", cols)
            top, persons = top_partner(pairs, "clinic", "pharmacy", cols)
            f["top_pharmacy_patient_share"] = persons / np.maximum(f["patients"].to_numpy(), 1)
            f["top_pharmacy_repeat_patients"] = repeat_pair_persons(pairs, "clinic", top, cols)
        if cols.notna("visits", "date").any():
            vd = visit_days(cols)
            rows = vd.rows
            multi = np.zeros(len(vc), dtype=bool)
            multi[rows] = (vd.clinics >= 2)[vd.row_group]
            f["multi_clinic_day_visits"] = count_rows(vc, n, multi) / np.maximum(f["visits"], 1)
        if cols.notna("visits", "discharge_date").any():
            beds = pd.Series(in_code_order(cols, "clinic", cols.floats("clinics", "beds")), index=idx)
            f["max_daily_admissions_per_bed"] = _admissions_per_bed(cols, idx, beds)
    return with_attributes(dataset, "clinic", ref, f, cols)


def _admissions_per_bed(cols: ColumnCodes, idx: pd.Index, beds: pd.Series) -> np.ndarray:
    n = len(idx)
    vc = cols.codes("visits", "clinic_id", "clinic")
    adm = cols.eq("visits", "kind", "inpatient") & cols.notna("visits", "date") & (vc >= 0)
    clinic, counts = _distinct_per_day(vc[adm], n, cols.days("visits", "date")[adm] - DAY_MIN)
    daily = np.zeros(n, dtype=np.int64)
    np.maximum.at(daily, clinic, counts)
    present = np.zeros(n, dtype=bool)
    present[clinic] = True
    daily_s = pd.Series(int_or_float(daily, present), index=idx)
    out: np.ndarray = (daily_s / beds.clip(lower=1).fillna(1)).to_numpy()
    return out


def _distinct_per_day(codes: np.ndarray, n: int, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows per (entity, day): (entity of each group, its row count); days as day numbers - DAY_MIN."""
    key, counts = unique_counts(pack([(codes, n), (days, DAY_SPAN)]))
    return key // DAY_SPAN, counts


def pharmacy_features(
    dataset: Dataset, proj: Projection, ref: pd.Timestamp | None, pairs: SameDayPairs, cols: ColumnCodes | None = None
) -> pd.DataFrame:
    cols = cols or proj.column_codes.sharing_ids()
    idx = proj.ids["pharmacy"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))  # derived features; attributes join at the end
    if dataset.has("purchases"):
        ph = cols.codes("purchases", "pharmacy_id", "pharmacy")
        amount = cols.floats("purchases", "amount")
        f["purchases"] = count_rows(ph, n)
        f["customers"] = np.diff(proj.matrix("PURCHASED", "person", "pharmacy").T.tocsr().indptr)
        f["purchases_per_customer"] = f["purchases"] / np.maximum(f["customers"], 1)
        f["amount_total"] = agg(ph, n, amount, "sum")
        f["amount_per_purchase"] = agg(ph, n, amount, "mean")
        long_supply = cols.floats("purchases", "days_supply") > 7
        f["long_supply_share"] = np.divide(
            flag_sum(ph, n, long_supply),
            f["purchases"].to_numpy(),
            out=np.zeros(n),
            where=f["purchases"].to_numpy() > 0,
        )
        if len(pairs):
            f["same_day_clinic_share"] = count_rows(pairs.pharmacy, n) / np.maximum(f["purchases"], 1)
            f["top_clinic_share"] = top_partner_share(pairs, "pharmacy", "clinic", cols)
            top, persons = top_partner(pairs, "pharmacy", "clinic", cols)
            f["top_clinic_customer_share"] = persons / np.maximum(f["customers"].to_numpy(), 1)
            f["top_clinic_repeat_customers"] = repeat_pair_persons(pairs, "pharmacy", top, cols)
    return with_attributes(dataset, "pharmacy", ref, f, cols)


def agency_features(
    dataset: Dataset, proj: Projection, ref: pd.Timestamp | None, cols: ColumnCodes | None = None
) -> pd.DataFrame:
    cols = cols or proj.column_codes.sharing_ids()
    idx = proj.ids["agency"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))  # derived features; attributes join at the end
    if dataset.has("agency_links"):
        la = cols.codes("agency_links", "agency_id", "agency")
        for et in ("person", "employer"):
            f[f"linked_{et}s"] = count_rows(la, n, cols.eq("agency_links", "entity_type", et))
    if dataset.has("employment"):
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
    return with_attributes(dataset, "agency", ref, f, cols)
