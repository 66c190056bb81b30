"""Per-entity feature tables, built with vectorised group-bys and sparse products.

`build_features` returns one DataFrame per entity type, indexed by entity id in sorted order
(the projection's order), all columns numeric (categoricals as pandas `category`). Personal
data columns (graph/contract.py `personal`) never become features.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN, TABLES, Kind
from graph.dataset import Dataset
from graph.projection import Projection

MAX_CATEGORIES = 50  # categorical attributes with more levels are dropped (ids in disguise)


def reference_date(dataset: Dataset) -> pd.Timestamp | None:
    """The dataset's 'today': its latest event date, so features never depend on the wall clock."""
    dates = []
    for table, col in (("visits", "date"), ("purchases", "date"), ("employment", "start_date"),
                       ("labels", "as_of")):
        if dataset.has(table):
            dates.append(dataset.tables[table][col].max())
    for table in ("contributions", "benefits"):
        if dataset.has(table):
            m = dataset.tables[table]["month"].max()
            if isinstance(m, str):
                dates.append(pd.Timestamp(m + "-01") + pd.offsets.MonthEnd(0))
    dates = [d for d in dates if isinstance(d, pd.Timestamp) and not pd.isna(d)]
    return max(dates) if dates else None


def _per_entity(index: pd.Index, keys: pd.Series, values: pd.Series | None = None, how: str = "size") -> np.ndarray:
    """Aggregate `values` by entity key onto `index` order (0 where the entity has no rows)."""
    if len(keys) == 0:
        return np.zeros(len(index))
    if values is None:
        agg = keys.value_counts()
    else:
        agg = values.groupby(keys.to_numpy(), sort=False).agg(how)
    return agg.reindex(index).fillna(0).to_numpy(dtype=np.float64)


def attributes(dataset: Dataset, entity_type: str, ref: pd.Timestamp | None) -> pd.DataFrame:
    """The entity table's own columns as features (personal data and ids excluded)."""
    table = TABLES[ENTITY_TABLE[entity_type]]
    df = dataset.table(table.name)
    idcol = ID_COLUMN[entity_type]
    out = pd.DataFrame(index=pd.Index(df[idcol].to_numpy(dtype=object), name="entity_id"))
    for col in df.columns:
        if col == idcol:
            continue
        spec = table.column(col)
        s = df[col].reset_index(drop=True)
        s.index = out.index
        if spec is not None and (spec.personal or spec.kind == Kind.ID):
            continue
        if pd.api.types.is_datetime64_any_dtype(s):
            if ref is not None and s.notna().any():
                out[f"{col}_years_ago"] = (ref - s).dt.days / 365.25
            continue
        if pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(np.float64)
        elif s.nunique() <= MAX_CATEGORIES and s.notna().any():
            out[col] = s.astype("category")
    if entity_type == "person" and "death_date" in df.columns:
        out["is_dead"] = df["death_date"].notna().to_numpy(dtype=np.float64)
        out = out.drop(columns=["death_date_years_ago"], errors="ignore")
    return out


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


def _two_hop_reach(m: sp.csr_matrix) -> np.ndarray:
    """Distinct entities reached through one shared counterpart (rows of m: entities)."""
    b = (m > 0).astype(np.float32).tocsr()
    co = (b @ b.T).tocsr()
    return np.diff(co.indptr) - (b.getnnz(axis=1) > 0)


def person_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None,
                    pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    idx = proj.ids["person"]
    f = attributes(dataset, "person", ref)
    death = dataset.table("persons").set_index("person_id")["death_date"]
    if dataset.has("visits"):
        v = dataset.tables["visits"]
        f["visits"] = _per_entity(idx, v["person_id"])
        f["visit_amount"] = _per_entity(idx, v["person_id"], v["amount"], "sum")
        f["visit_claimed"] = _per_entity(idx, v["person_id"], v["claimed"], "sum")
        f["distinct_clinics"] = np.diff(proj.matrix("VISITED", "person", "clinic").indptr)
        f["inpatient_stays"] = _per_entity(idx, v["person_id"], (v["kind"] == "inpatient").astype(float), "sum")
        if v["date"].notna().any():
            day = v.dropna(subset=["date"]).groupby(["person_id", "date"])["clinic_id"].nunique()
            per = day.groupby(level=0)
            f["max_clinics_one_day"] = per.max().reindex(idx).fillna(0).to_numpy()
            f["days_multi_clinic"] = (day >= 2).groupby(level=0).sum().reindex(idx).fillna(0).to_numpy()
            month = v["date"].dt.to_period("M")
            mon = v.groupby([v["person_id"], month])["clinic_id"].nunique()
            f["max_clinics_one_month"] = mon.groupby(level=0).max().reindex(idx).fillna(0).to_numpy()
            after = v["date"] > v["person_id"].map(death)
            f["visits_after_death"] = _per_entity(idx, v["person_id"], after.astype(float), "sum")
    if dataset.has("purchases"):
        p = dataset.tables["purchases"]
        f["purchases"] = _per_entity(idx, p["person_id"])
        f["purchase_amount"] = _per_entity(idx, p["person_id"], p["amount"], "sum")
        f["distinct_pharmacies"] = np.diff(proj.matrix("PURCHASED", "person", "pharmacy").indptr)
        f["max_days_supply"] = _per_entity(idx, p["person_id"], p["days_supply"], "max")
        f["total_days_supply"] = _per_entity(idx, p["person_id"], p["days_supply"], "sum")
        if p["date"].notna().any():
            after = p["date"] > p["person_id"].map(death)
            f["purchases_after_death"] = _per_entity(idx, p["person_id"], after.astype(float), "sum")
            if dataset.has("visits") and dataset.tables["visits"]["date"].notna().any():
                f["same_day_visit_purchase_days"] = _same_day_pairs_per_person(dataset, idx)
                if pairs is not None and len(pairs):
                    f["top_pair_same_days"] = _top_pair_days(pairs, idx)
    if dataset.has("contributions"):
        c = dataset.tables["contributions"]
        f["contribution_months"] = _per_entity(idx, c["person_id"])
        f["contribution_paid"] = _per_entity(idx, c["person_id"], c["paid"], "sum")
        f["contribution_employers"] = np.diff(proj.matrix("CONTRIBUTED", "employer", "person").T.tocsr().indptr)
    if dataset.has("employment"):
        e = dataset.tables["employment"]
        f["jobs"] = _per_entity(idx, e["person_id"])
        f["max_wage"] = _per_entity(idx, e["person_id"], e["monthly_wage"], "max")
        f["placed_by_agency"] = _per_entity(idx, e["person_id"], e["agency_id"].notna().astype(float), "sum")
    if dataset.has("benefits"):
        b = dataset.tables["benefits"]
        f["benefit_months"] = _per_entity(idx, b["person_id"])
        f["benefit_amount"] = _per_entity(idx, b["person_id"], b["amount"], "sum")
        for kind in sorted(b["benefit_type"].dropna().unique())[:10]:
            mask = b["benefit_type"] == kind
            f[f"benefit_{kind}_amount"] = _per_entity(idx, b.loc[mask, "person_id"], b.loc[mask, "amount"], "sum")
        if dataset.has("contributions"):
            c = dataset.tables["contributions"]
            paid = c[c["paid"].fillna(0) > 0][["person_id", "month"]].drop_duplicates()
            both = b[b["benefit_type"] == "unemployment"].merge(paid, on=["person_id", "month"])
            f["unemployment_while_contributing"] = _per_entity(idx, both["person_id"])
        dm = dataset.table("persons").set_index("person_id")["death_date"].dt.strftime("%Y-%m")
        after = b["month"] > b["person_id"].map(dm).fillna("9999-99")
        f["benefits_after_death"] = _per_entity(idx, b["person_id"], b["amount"].where(after, 0), "sum")
    if dataset.has("agency_links"):
        links = dataset.tables["agency_links"]
        f["agency_links"] = _per_entity(idx, links.loc[links["entity_type"] == "person", "entity_id"])
    for name, values in _shared_identifier_counts(proj, "person").items():
        f[name] = values
    return f


def _same_day_pairs_per_person(dataset: Dataset, idx: pd.Index) -> np.ndarray:
    """Days on which the person both visited a clinic and bought at a pharmacy."""
    v = dataset.tables["visits"][["person_id", "date"]].dropna().drop_duplicates()
    p = dataset.tables["purchases"][["person_id", "date"]].dropna().drop_duplicates()
    both = v.merge(p, on=["person_id", "date"])
    return _per_entity(idx, both["person_id"])


def _top_pair_days(pairs: pd.DataFrame, idx: pd.Index) -> np.ndarray:
    """Per person: days on which they visited one clinic and bought at one pharmacy the same day,
    for their most repeated (clinic, pharmacy) pair (collusion rings repeat one pair)."""
    days = pairs.groupby(["person_id", "clinic_id", "pharmacy_id"], sort=False)["date"].nunique()
    return days.groupby(level=0).max().reindex(idx).fillna(0).to_numpy(dtype=np.float64)


def top_partners(pairs: pd.DataFrame, key: str, partner: str) -> pd.DataFrame:
    """Per `key` entity: its top same-day partner, and the share of the key's persons who met
    that partner on the same day (ties broken by id, so the result is deterministic)."""
    if len(pairs) == 0:
        return pd.DataFrame(columns=["partner", "persons", "share"])
    per = pairs.groupby([key, partner], sort=True)["person_id"].nunique().rename("persons").reset_index()
    per = per.sort_values([key, "persons", partner], ascending=[True, False, True], kind="mergesort")
    top = per.drop_duplicates(key).set_index(key)
    total = pairs.groupby(key)["person_id"].nunique()
    return pd.DataFrame({"partner": top[partner], "persons": top["persons"].astype(float),
                         "share": top["persons"] / total.reindex(top.index)})


def employer_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None) -> pd.DataFrame:
    idx = proj.ids["employer"]
    f = attributes(dataset, "employer", ref)
    if dataset.has("employment"):
        e = dataset.tables["employment"]
        f["employees"] = np.diff(proj.matrix("EMPLOYED_BY", "person", "employer").T.tocsr().indptr)
        f["mean_wage"] = _per_entity(idx, e["employer_id"], e["monthly_wage"], "mean")
        f["agency_placed"] = _per_entity(idx, e["employer_id"], e["agency_id"].notna().astype(float), "sum")
    if dataset.has("contributions"):
        c = dataset.tables["contributions"]
        f["insured_persons"] = np.diff(proj.matrix("CONTRIBUTED", "employer", "person").indptr)
        f["contribution_rows"] = _per_entity(idx, c["employer_id"])
        f["due_total"] = _per_entity(idx, c["employer_id"], c["due"], "sum")
        f["paid_total"] = _per_entity(idx, c["employer_id"], c["paid"], "sum")
        f["paid_share"] = np.where(f["due_total"] > 0, f["paid_total"] / f["due_total"].where(f["due_total"] > 0, 1), 1.0)
        short = c[c["paid"].fillna(0) < c["due"].fillna(0)]
        f["arrears_months"] = short.groupby("employer_id")["month"].nunique().reindex(idx).fillna(0).to_numpy()
        f["mean_base"] = _per_entity(idx, c["employer_id"], c["base"], "mean")
        months = c.groupby("person_id")["month"].nunique()
        f["mean_person_months"] = _per_entity(idx, c["employer_id"], c["person_id"].map(months).astype(float), "mean")
        if "employees" in f:
            f["insured_over_employed"] = (f["insured_persons"] + 1) / (f["employees"] + 1)
    if dataset.has("agency_links"):
        links = dataset.tables["agency_links"]
        f["agency_links"] = _per_entity(idx, links.loc[links["entity_type"] == "employer", "entity_id"])
    for name, values in _shared_identifier_counts(proj, "employer").items():
        f[name] = values
    return f


def _top_partner_share(pairs: pd.DataFrame, key: str, partner: str, idx: pd.Index) -> np.ndarray:
    """Per `key` entity: share of its same-day co-occurrences that go to its top partner."""
    if len(pairs) == 0:
        return np.zeros(len(idx))
    counts = pairs.groupby([key, partner]).size()
    total = counts.groupby(level=0).sum()
    top = counts.groupby(level=0).max()
    return (top / total).reindex(idx).fillna(0).to_numpy()


def same_day_clinic_pharmacy(dataset: Dataset, *, person_id: pd.Index | None = None,
                             clinic_id: pd.Index | None = None, pharmacy_id: pd.Index | None = None) -> pd.DataFrame:
    """(person, date, clinic, pharmacy) rows where a visit and a purchase fall on one day,
    optionally only for some persons, clinics or pharmacies."""
    if not (dataset.has("visits") and dataset.has("purchases")):
        return pd.DataFrame(columns=["person_id", "date", "clinic_id", "pharmacy_id"])
    v = dataset.tables["visits"][["person_id", "date", "clinic_id"]]
    p = dataset.tables["purchases"][["person_id", "date", "pharmacy_id"]]
    if person_id is not None:
        v, p = v[v["person_id"].isin(person_id)], p[p["person_id"].isin(person_id)]
    if clinic_id is not None:
        v = v[v["clinic_id"].isin(clinic_id)]
    if pharmacy_id is not None:
        p = p[p["pharmacy_id"].isin(pharmacy_id)]
    return v.dropna().drop_duplicates().merge(p.dropna().drop_duplicates(), on=["person_id", "date"])


def clinic_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None, pairs: pd.DataFrame) -> pd.DataFrame:
    idx = proj.ids["clinic"]
    f = attributes(dataset, "clinic", ref)
    if dataset.has("visits"):
        v = dataset.tables["visits"]
        m = proj.matrix("VISITED", "person", "clinic")
        f["visits"] = _per_entity(idx, v["clinic_id"])
        f["patients"] = np.diff(m.T.tocsr().indptr)
        f["visits_per_patient"] = f["visits"] / np.maximum(f["patients"], 1)
        f["inpatient_share"] = _per_entity(idx, v["clinic_id"], (v["kind"] == "inpatient").astype(float), "mean")
        f["amount_total"] = _per_entity(idx, v["clinic_id"], v["amount"], "sum")
        f["amount_per_visit"] = _per_entity(idx, v["clinic_id"], v["amount"], "mean")
        f["claimed_total"] = _per_entity(idx, v["clinic_id"], v["claimed"], "sum")
        if len(pairs):
            f["same_day_pharmacy_share"] = _per_entity(idx, pairs["clinic_id"]) / np.maximum(f["visits"], 1)
            f["top_pharmacy_share"] = _top_partner_share(pairs, "clinic_id", "pharmacy_id", idx)
            top = top_partners(pairs, "clinic_id", "pharmacy_id")
            f["top_pharmacy_patient_share"] = (top["persons"].reindex(idx).fillna(0).to_numpy()
                                               / np.maximum(f["patients"].to_numpy(), 1))
            f["top_pharmacy_repeat_patients"] = _repeat_pair_persons(pairs, "clinic_id", top, idx)
        if v["date"].notna().any():
            day = v.dropna(subset=["date"]).groupby(["person_id", "date"])["clinic_id"].transform("nunique")
            multi = v.dropna(subset=["date"])[day >= 2]
            f["multi_clinic_day_visits"] = _per_entity(idx, multi["clinic_id"]) / np.maximum(f["visits"], 1)
        if "beds" in f and v["discharge_date"].notna().any():
            f["max_daily_admissions_per_bed"] = _admissions_per_bed(v, idx, f["beds"])
    return f


REPEAT_PAIR_DAYS = 3  # same-day clinic+pharmacy days that make a person a repeat co-visitor


def _repeat_pair_persons(pairs: pd.DataFrame, key: str, top: pd.DataFrame, idx: pd.Index) -> np.ndarray:
    """Persons who met the entity and its top partner on the same day on >= REPEAT_PAIR_DAYS days."""
    partner = "pharmacy_id" if key == "clinic_id" else "clinic_id"
    p = pairs[pairs[partner].to_numpy() == top["partner"].reindex(pairs[key]).to_numpy()]
    days = p.groupby([key, "person_id"], sort=False)["date"].nunique()
    repeat = (days >= REPEAT_PAIR_DAYS).groupby(level=0).sum()
    return repeat.reindex(idx).fillna(0).to_numpy(dtype=np.float64)


def _admissions_per_bed(v: pd.DataFrame, idx: pd.Index, beds: pd.Series) -> np.ndarray:
    adm = v[(v["kind"] == "inpatient") & v["date"].notna()]
    daily = adm.groupby(["clinic_id", "date"]).size().groupby(level=0).max()
    return (daily.reindex(idx).fillna(0) / beds.clip(lower=1).fillna(1)).to_numpy()


def pharmacy_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None, pairs: pd.DataFrame) -> pd.DataFrame:
    idx = proj.ids["pharmacy"]
    f = attributes(dataset, "pharmacy", ref)
    if dataset.has("purchases"):
        p = dataset.tables["purchases"]
        f["purchases"] = _per_entity(idx, p["pharmacy_id"])
        f["customers"] = np.diff(proj.matrix("PURCHASED", "person", "pharmacy").T.tocsr().indptr)
        f["purchases_per_customer"] = f["purchases"] / np.maximum(f["customers"], 1)
        f["amount_total"] = _per_entity(idx, p["pharmacy_id"], p["amount"], "sum")
        f["amount_per_purchase"] = _per_entity(idx, p["pharmacy_id"], p["amount"], "mean")
        f["long_supply_share"] = _per_entity(idx, p["pharmacy_id"], (p["days_supply"] > 7).astype(float), "mean")
        if len(pairs):
            f["same_day_clinic_share"] = _per_entity(idx, pairs["pharmacy_id"]) / np.maximum(f["purchases"], 1)
            f["top_clinic_share"] = _top_partner_share(pairs, "pharmacy_id", "clinic_id", idx)
            top = top_partners(pairs, "pharmacy_id", "clinic_id")
            f["top_clinic_customer_share"] = (top["persons"].reindex(idx).fillna(0).to_numpy()
                                              / np.maximum(f["customers"].to_numpy(), 1))
            f["top_clinic_repeat_customers"] = _repeat_pair_persons(pairs, "pharmacy_id", top, idx)
    return f


def agency_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None) -> pd.DataFrame:
    idx = proj.ids["agency"]
    f = attributes(dataset, "agency", ref)
    if dataset.has("agency_links"):
        links = dataset.tables["agency_links"]
        for et in ("person", "employer"):
            f[f"linked_{et}s"] = _per_entity(idx, links.loc[links["entity_type"] == et, "agency_id"])
    if dataset.has("employment"):
        e = dataset.tables["employment"]
        placed = e[e["agency_id"].notna()]
        f["placements"] = _per_entity(idx, placed["agency_id"])
        f["placed_employers"] = placed.groupby("agency_id")["employer_id"].nunique().reindex(idx).fillna(0).to_numpy()
        size = e.groupby("employer_id")["person_id"].nunique()
        f["placed_employer_median_size"] = _per_entity(
            idx, placed["agency_id"], placed["employer_id"].map(size).astype(float), "median")
    return f


def build_features(dataset: Dataset, proj: Projection) -> dict[str, pd.DataFrame]:
    """Feature table per entity type (rows in the projection's sorted id order)."""
    ref = reference_date(dataset)
    pairs = same_day_clinic_pharmacy(dataset)
    out = {
        "person": person_features(dataset, proj, ref, pairs),
        "employer": employer_features(dataset, proj, ref),
        "clinic": clinic_features(dataset, proj, ref, pairs),
        "pharmacy": pharmacy_features(dataset, proj, ref, pairs),
        "agency": agency_features(dataset, proj, ref),
    }
    for t in ENTITY_TYPES:
        out[t].index.name = "entity_id"
    return out
