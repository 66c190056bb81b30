"""The fixed registry of built-in, vectorised detectors that rule packs can name.

A detector is a plain function `(dataset, params) -> DataFrame`: one row per evidence record,
column `entity_id` (the entity the rule fires for) plus the record's columns. It works on whole
tables with merges, group-bys and numpy, never a Python loop over entities. Its parameters are a
pydantic model (unknown keys rejected), and it declares the table columns it needs so that the
engine can skip it, and say why, on datasets without them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from graph.dataset import Dataset


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Detector:
    """A built-in detector: what it finds, its parameters and the data it needs."""

    name: str
    entity_type: str
    params: type[Params]
    fn: Callable[[Dataset, Any], pd.DataFrame]
    evidence: tuple[str, ...]          # record columns it returns, in order
    needs: tuple[str, ...]             # "table.column" that must all have values
    needs_any: tuple[str, ...] = ()    # at least one of these must have values
    doc: str = ""

    def missing(self, dataset: Dataset) -> str | None:
        """Why the detector cannot run on this dataset, or None when it can."""
        absent = [n for n in self.needs if not _has_column(dataset, n)]
        if absent:
            return "needs " + ", ".join(absent) + ", absent or empty in this dataset"
        if self.needs_any and not any(_has_column(dataset, n) for n in self.needs_any):
            return "needs one of " + ", ".join(self.needs_any) + ", none present in this dataset"
        return None


def _has_column(dataset: Dataset, name: str) -> bool:
    table, col = name.split(".")
    if not dataset.has(table):
        return False
    df = dataset.tables[table]
    return col in df.columns and bool(df[col].notna().any())


# ---------------------------------------------------------------------------------------------
# Vectorised helpers


def _days(s: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 as int64 (call only on non-missing dates)."""
    return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def _date_from_days(d: np.ndarray) -> np.ndarray:
    return np.asarray(d, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")


def _months_of_dates(s: pd.Series) -> np.ndarray:
    """Months since 1970-01 of dates (call only on non-missing dates)."""
    return s.to_numpy(dtype="datetime64[ns]").astype("datetime64[M]").astype(np.int64)


def _months(s: pd.Series) -> np.ndarray:
    """Months since 1970-01 of 'YYYY-MM' strings; -1 where missing. Parses each distinct month once."""
    codes, uniques = pd.factorize(s)
    if len(uniques) == 0:
        return np.full(len(s), -1, dtype=np.int64)
    u = np.array([(int(m[:4]) - 1970) * 12 + int(m[5:7]) - 1 for m in uniques], dtype=np.int64)
    return np.where(codes >= 0, u[np.maximum(codes, 0)], -1)


def _month_text(m: np.ndarray) -> np.ndarray:
    return np.asarray(m, dtype=np.int64).astype("datetime64[M]").astype(str)


def _codes(*cols: pd.Series) -> list[np.ndarray]:
    """Integer codes of id columns over one shared vocabulary (-1 for missing)."""
    joint = pd.concat([c.reset_index(drop=True) for c in cols], ignore_index=True)
    codes, _ = pd.factorize(joint)
    out, start = [], 0
    for c in cols:
        out.append(codes[start:start + len(c)])
        start += len(c)
    return out


def _group_starts(keys: np.ndarray) -> np.ndarray:
    """For sorted keys, True where a row continues the previous row's group."""
    same = np.zeros(len(keys), dtype=bool)
    if len(keys) > 1:
        same[1:] = keys[1:] == keys[:-1]
    return same


def _records(entity: pd.Series | np.ndarray, cols: dict[str, Any], sort: list[str]) -> pd.DataFrame:
    """Evidence records sorted by entity then `sort`, so hits and their evidence are deterministic."""
    def plain(v: Any) -> Any:
        return v.reset_index(drop=True) if isinstance(v, pd.Series) else v
    df = pd.DataFrame({"entity_id": plain(entity), **{k: plain(v) for k, v in cols.items()}})
    df["entity_id"] = df["entity_id"].astype("str")
    return df.sort_values(["entity_id", *sort], kind="mergesort").reset_index(drop=True)


def _empty(evidence: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({"entity_id": pd.Series([], dtype="str"), **{c: [] for c in evidence}})


def _dead(ds: Dataset) -> pd.DataFrame:
    p = ds.table("persons")
    return p.loc[p["death_date"].notna(), ["person_id", "death_date"]]


# ---------------------------------------------------------------------------------------------
# Medical insurance: visits and purchases


class MultiClinicParams(Params):
    window: Literal["day", "month"] = "day"
    min_clinics: int = Field(2, ge=2)
    kinds: list[str] | None = None   # visit kinds counted; None = all


MULTI_CLINIC_EVIDENCE = ("visit_id", "clinic_id", "date", "kind", "amount", "claimed", "n_clinics")


def multi_clinic_visits(ds: Dataset, p: MultiClinicParams) -> pd.DataFrame:
    """Persons visiting >= min_clinics different clinics within one day or calendar month."""
    v = ds.table("visits")
    v = v[v["date"].notna()]
    if p.kinds is not None:
        v = v[v["kind"].isin(p.kinds)]
    if v.empty:
        return _empty(MULTI_CLINIC_EVIDENCE)
    period = _days(v["date"]) if p.window == "day" else _months_of_dates(v["date"])
    person, clinic = _codes(v["person_id"])[0], _codes(v["clinic_id"])[0]
    span = int(period.max() - period.min() + 1)
    pt = person.astype(np.int64) * span + (period - period.min())
    distinct = pd.DataFrame({"pt": pt, "c": clinic}).drop_duplicates()
    counts = distinct["pt"].value_counts()
    fired = counts[counts >= p.min_clinics]
    mask = np.isin(pt, fired.index.to_numpy())
    f = v[mask]
    return _records(f["person_id"], {
        "visit_id": f["visit_id"], "clinic_id": f["clinic_id"], "date": f["date"], "kind": f["kind"],
        "amount": f["amount"], "claimed": f["claimed"],
        "n_clinics": fired.reindex(pt[mask]).to_numpy(dtype=np.int64),
    }, ["date", "clinic_id", "visit_id"])


class SplitAdmissionParams(Params):
    max_gap_days: int = Field(15, ge=0)
    same_diagnosis: bool = True
    inpatient_kind: str = "inpatient"


SPLIT_EVIDENCE = ("visit_id", "clinic_id", "date", "discharge_date", "diagnosis", "amount",
                  "prev_visit_id", "prev_clinic_id", "prev_date", "prev_discharge_date", "gap_days")


def split_admission(ds: Dataset, p: SplitAdmissionParams) -> pd.DataFrame:
    """Inpatient readmissions (same person, same diagnosis) within max_gap_days of the last discharge."""
    v = ds.table("visits")
    v = v[(v["kind"] == p.inpatient_kind) & v["date"].notna()]
    if p.same_diagnosis:
        v = v[v["diagnosis"].notna()]
    if v.empty:
        return _empty(SPLIT_EVIDENCE)
    keys = ["person_id", "diagnosis"] if p.same_diagnosis else ["person_id"]
    v = v.sort_values([*keys, "date", "visit_id"], kind="mergesort")
    group = _codes(v["person_id"])[0].astype(np.int64)
    if p.same_diagnosis:
        group = group * (len(v) + 1) + _codes(v["diagnosis"])[0]
    same = _group_starts(group)
    start = _days(v["date"])
    end = np.where(v["discharge_date"].notna().to_numpy(),
                   _days(v["discharge_date"].fillna(v["date"])), start)
    prev_end = np.roll(end, 1)
    gap = start - prev_end
    fire = same & (gap <= p.max_gap_days)
    prev = np.flatnonzero(fire) - 1
    cur, before = v.iloc[np.flatnonzero(fire)], v.iloc[prev]
    return _records(cur["person_id"], {
        "visit_id": cur["visit_id"], "clinic_id": cur["clinic_id"], "date": cur["date"],
        "discharge_date": cur["discharge_date"], "diagnosis": cur["diagnosis"], "amount": cur["amount"],
        "prev_visit_id": before["visit_id"], "prev_clinic_id": before["clinic_id"],
        "prev_date": before["date"], "prev_discharge_date": before["discharge_date"],
        "gap_days": gap[fire],
    }, ["date", "visit_id"])


class DuringStayParams(Params):
    inpatient_kind: str = "inpatient"
    sources: list[Literal["visits", "purchases"]] = Field(default_factory=lambda: ["visits", "purchases"],
                                                          min_length=1)


STAY_EVIDENCE = ("source", "record_id", "place_id", "date", "amount", "stay_visit_id",
                 "stay_clinic_id", "stay_date", "stay_discharge_date")


def activity_during_stay(ds: Dataset, p: DuringStayParams) -> pd.DataFrame:
    """Visits or purchases strictly between an inpatient stay's admission and discharge dates."""
    v = ds.table("visits")
    stays = v[(v["kind"] == p.inpatient_kind) & v["date"].notna() & v["discharge_date"].notna()]
    stays = stays[_days(stays["discharge_date"]) - _days(stays["date"]) >= 2]  # has an inner day
    events = []
    if "visits" in p.sources:
        e = v[v["date"].notna()]
        events.append(pd.DataFrame({"person_id": e["person_id"], "source": "visits", "record_id": e["visit_id"],
                                    "place_id": e["clinic_id"], "date": e["date"], "amount": e["amount"]}))
    if "purchases" in p.sources and ds.has("purchases"):
        e = ds.tables["purchases"]
        e = e[e["date"].notna()]
        events.append(pd.DataFrame({"person_id": e["person_id"], "source": "purchases",
                                    "record_id": e["purchase_id"], "place_id": e["pharmacy_id"],
                                    "date": e["date"], "amount": e["amount"]}))
    if stays.empty or not events:
        return _empty(STAY_EVIDENCE)
    ev = pd.concat(events, ignore_index=True)
    ev = ev[ev["person_id"].isin(stays["person_id"].unique())]
    s = pd.DataFrame({"person_id": stays["person_id"], "stay_visit_id": stays["visit_id"],
                      "stay_clinic_id": stays["clinic_id"], "stay_date": stays["date"],
                      "stay_discharge_date": stays["discharge_date"]})
    m = ev.merge(s, on="person_id", how="inner")
    inside = (m["date"] > m["stay_date"]) & (m["date"] < m["stay_discharge_date"]) & (
        m["record_id"] != m["stay_visit_id"])
    m = m[inside]
    return _records(m["person_id"], {c: m[c] for c in STAY_EVIDENCE}, ["date", "source", "record_id"])


class AfterDeathParams(Params):
    sources: list[Literal["visits", "purchases", "benefits"]] = Field(
        default_factory=lambda: ["visits", "purchases", "benefits"], min_length=1)
    grace_days: int = Field(0, ge=0)   # visits/purchases this many days after death are ignored


DEATH_EVIDENCE = ("source", "record_id", "place_id", "date", "month", "amount", "death_date")


def activity_after_death(ds: Dataset, p: AfterDeathParams) -> pd.DataFrame:
    """Visits or purchases dated after the death date; benefits for a month after the death month."""
    dead = _dead(ds)
    parts = []
    for table, rid, place in (("visits", "visit_id", "clinic_id"), ("purchases", "purchase_id", "pharmacy_id")):
        if table not in p.sources or not ds.has(table):
            continue
        e = ds.tables[table]
        e = e[e["date"].notna()].merge(dead, on="person_id", how="inner")
        e = e[_days(e["date"]) > _days(e["death_date"]) + p.grace_days]
        parts.append(pd.DataFrame({
            "person_id": e["person_id"], "source": table, "record_id": e[rid], "place_id": e[place],
            "date": e["date"], "month": _month_text(_months_of_dates(e["date"])), "amount": e["amount"],
            "death_date": e["death_date"]}))
    if "benefits" in p.sources and ds.has("benefits"):
        b = ds.tables["benefits"].merge(dead, on="person_id", how="inner")
        b = b[_months(b["month"]) > _months_of_dates(b["death_date"])]
        parts.append(pd.DataFrame({
            "person_id": b["person_id"], "source": "benefits", "record_id": pd.NA, "place_id": b["benefit_type"],
            "date": pd.NaT, "month": b["month"], "amount": b["amount"], "death_date": b["death_date"]}))
    parts = [x for x in parts if len(x)]
    if not parts:
        return _empty(DEATH_EVIDENCE)
    m = pd.concat(parts, ignore_index=True)
    m["date"] = m["date"].astype("datetime64[ns]")
    return _records(m["person_id"], {c: m[c] for c in DEATH_EVIDENCE}, ["month", "date", "source"])


class OverSupplyParams(Params):
    max_days_supply: float = Field(7, gt=0)
    min_purchases: int = Field(1, ge=1)


OVER_SUPPLY_EVIDENCE = ("purchase_id", "pharmacy_id", "clinic_id", "date", "drug_code", "quantity",
                        "days_supply", "amount")


def over_prescribing(ds: Dataset, p: OverSupplyParams) -> pd.DataFrame:
    """Purchases supplying more than max_days_supply days (persons with >= min_purchases of them)."""
    e = ds.table("purchases")
    e = e[e["days_supply"] > p.max_days_supply]
    counts = e["person_id"].value_counts()
    e = e[e["person_id"].isin(counts.index[counts >= p.min_purchases])]
    return _records(e["person_id"], {c: e[c] for c in OVER_SUPPLY_EVIDENCE}, ["date", "purchase_id"])


class OverlapSupplyParams(Params):
    min_overlap_days: int = Field(1, ge=1)
    min_overlaps: int = Field(1, ge=1)


OVERLAP_EVIDENCE = ("purchase_id", "pharmacy_id", "date", "drug_code", "days_supply",
                    "prev_purchase_id", "prev_pharmacy_id", "prev_date", "prev_days_supply", "overlap_days")


def overlapping_supply(ds: Dataset, p: OverlapSupplyParams) -> pd.DataFrame:
    """A purchase of a drug before the previous purchase's supply (date + days_supply) ran out."""
    e = ds.table("purchases")
    e = e[e["date"].notna() & e["drug_code"].notna() & e["days_supply"].notna()]
    if e.empty:
        return _empty(OVERLAP_EVIDENCE)
    person, drug = _codes(e["person_id"])[0], _codes(e["drug_code"])[0]
    group = person.astype(np.int64) * (int(drug.max()) + 1) + drug
    day = _days(e["date"])
    order = np.lexsort((day, group))  # integer sort; ties keep the table's purchase_id order
    e, group, day = e.iloc[order], group[order], day[order]
    same = _group_starts(group)
    end = day + np.floor(e["days_supply"].to_numpy()).astype(np.int64)
    overlap = np.roll(end, 1) - day
    fire = same & (overlap >= p.min_overlap_days)
    cur, prev = e.iloc[np.flatnonzero(fire)], e.iloc[np.flatnonzero(fire) - 1]
    counts = cur["person_id"].value_counts()
    keep = cur["person_id"].isin(counts.index[counts >= p.min_overlaps]).to_numpy()
    cur, prev = cur[keep], prev[keep]
    return _records(cur["person_id"], {
        "purchase_id": cur["purchase_id"], "pharmacy_id": cur["pharmacy_id"], "date": cur["date"],
        "drug_code": cur["drug_code"], "days_supply": cur["days_supply"],
        "prev_purchase_id": prev["purchase_id"], "prev_pharmacy_id": prev["pharmacy_id"],
        "prev_date": prev["date"], "prev_days_supply": prev["days_supply"], "overlap_days": overlap[fire][keep],
    }, ["drug_code", "date", "purchase_id"])


class OverCapacityParams(Params):
    inpatient_kind: str = "inpatient"
    occupancy_ratio: float = Field(1.0, gt=0)   # fires when inpatients > beds * ratio
    min_days: int = Field(1, ge=1)


CAPACITY_EVIDENCE = ("date_from", "date_to", "days", "inpatients", "beds")


def clinic_over_capacity(ds: Dataset, p: OverCapacityParams) -> pd.DataFrame:
    """Clinics with more inpatients on a day (admitted on or before it, discharged after it) than beds."""
    beds = ds.table("clinics").set_index("clinic_id")["beds"].dropna()
    v = ds.table("visits")
    v = v[(v["kind"] == p.inpatient_kind) & v["date"].notna() & v["clinic_id"].isin(beds.index)]
    if v.empty:
        return _empty(CAPACITY_EVIDENCE)
    start = _days(v["date"])
    end = np.where(v["discharge_date"].notna().to_numpy(), _days(v["discharge_date"].fillna(v["date"])), start)
    end = np.maximum(end, start + 1)  # a stay occupies a bed at least on its admission day
    clinic_codes, clinic_names = pd.factorize(v["clinic_id"])
    # +1 on admission, -1 on discharge; each clinic's changes sum to 0, so one running sum over
    # rows sorted by (clinic, day) gives every clinic's daily census.
    ch = pd.DataFrame({"c": np.concatenate([clinic_codes, clinic_codes]),
                       "d": np.concatenate([start, end]),
                       "x": np.concatenate([np.ones(len(start)), -np.ones(len(end))])})
    ch = ch.groupby(["c", "d"], sort=True)["x"].sum().reset_index()
    census = ch["x"].cumsum().to_numpy()
    nxt = np.roll(ch["d"].to_numpy(), -1)
    cap = beds.reindex(clinic_names[ch["c"].to_numpy()]).to_numpy()
    over = census > cap * p.occupancy_ratio + 1e-9
    days = np.where(over, nxt - ch["d"].to_numpy(), 0)
    total = pd.Series(days).groupby(ch["c"].to_numpy()).transform("sum").to_numpy()
    fire = over & (total >= p.min_days)
    f = ch[fire]
    return _records(clinic_names[f["c"].to_numpy()], {
        "date_from": _date_from_days(f["d"].to_numpy()), "date_to": _date_from_days(nxt[fire] - 1),
        "days": days[fire], "inpatients": census[fire].astype(np.int64), "beds": cap[fire],
    }, ["date_from"])


# ---------------------------------------------------------------------------------------------
# Pensions and benefits


class BenefitWhileContributingParams(Params):
    benefit_types: list[str] = Field(default_factory=lambda: ["unemployment"], min_length=1)
    min_paid: float = Field(0, ge=0)   # contributions count when paid > min_paid


CONTRIB_BENEFIT_EVIDENCE = ("month", "benefit_type", "amount", "employer_id", "paid")


def benefit_while_contributing(ds: Dataset, p: BenefitWhileContributingParams) -> pd.DataFrame:
    """Benefits (unemployment by default) for a month in which an employer paid contributions for the person."""
    b = ds.table("benefits")
    b = b[b["benefit_type"].isin(p.benefit_types)]
    c = ds.table("contributions")
    c = c[(c["paid"] > p.min_paid) & c["person_id"].isin(b["person_id"].unique())]
    m = b.merge(c[["person_id", "month", "employer_id", "paid"]], on=["person_id", "month"], how="inner")
    return _records(m["person_id"], {k: m[k] for k in CONTRIB_BENEFIT_EVIDENCE},
                    ["month", "benefit_type", "employer_id"])


class BenefitAfterDeathParams(Params):
    benefit_types: list[str] = Field(default_factory=lambda: ["pension"], min_length=1)
    min_months_after: int = Field(1, ge=1)   # months after the death month


BENEFIT_DEATH_EVIDENCE = ("month", "benefit_type", "amount", "death_date", "months_after_death")


def benefit_after_death(ds: Dataset, p: BenefitAfterDeathParams) -> pd.DataFrame:
    """Benefits of the given types paid for a month at least min_months_after the death month."""
    b = ds.table("benefits")
    b = b[b["benefit_type"].isin(p.benefit_types)].merge(_dead(ds), on="person_id", how="inner")
    after = _months(b["month"]) - _months_of_dates(b["death_date"])
    keep = after >= p.min_months_after
    b = b[keep]
    return _records(b["person_id"], {
        "month": b["month"], "benefit_type": b["benefit_type"], "amount": b["amount"],
        "death_date": b["death_date"], "months_after_death": after[keep]}, ["month", "benefit_type"])


class IneligibleBenefitParams(Params):
    after_death: bool = True
    while_employed_types: list[str] = Field(default_factory=lambda: ["unemployment"])
    amount_over: float = Field(0, ge=0)    # fires when the ineligible total is > amount_over
    months_over: int = Field(0, ge=0)      # and the distinct ineligible months are > months_over


INELIGIBLE_EVIDENCE = ("month", "benefit_type", "amount", "reason", "total_amount", "n_months")


def ineligible_benefits(ds: Dataset, p: IneligibleBenefitParams) -> pd.DataFrame:
    """Benefits drawn while not eligible (after death; while employed) over an amount or month count.

    'While employed' means contributions with paid > 0 for that person and month, or an employment
    spell that covers the whole month (start on or before its first day, no end or an end on or
    after its last day).
    """
    b = ds.table("benefits").reset_index(drop=True)
    if b.empty:
        return _empty(INELIGIBLE_EVIDENCE)
    month = _months(b["month"])
    reason = pd.Series(pd.NA, index=b.index, dtype="str")
    if p.after_death:
        d = b[["person_id"]].merge(_dead(ds), on="person_id", how="left")["death_date"]
        ok = d.notna().to_numpy()
        dead = np.zeros(len(b), dtype=bool)
        dead[ok] = month[ok] > _months_of_dates(d[ok])
        reason[dead] = "after_death"
    emp_rows = np.flatnonzero(b["benefit_type"].isin(p.while_employed_types).to_numpy() & reason.isna().to_numpy())
    if len(emp_rows):
        cand = pd.DataFrame({"row": emp_rows, "person_id": b["person_id"].to_numpy()[emp_rows],
                             "month": b["month"].to_numpy()[emp_rows], "m": month[emp_rows]})
        employed = np.zeros(len(b), dtype=bool)
        c = ds.table("contributions")
        c = c[(c["paid"] > 0) & c["person_id"].isin(cand["person_id"].unique())][["person_id", "month"]]
        hit = cand.merge(c.drop_duplicates(), on=["person_id", "month"], how="inner")["row"].to_numpy()
        employed[hit] = True
        e = ds.table("employment")
        e = e[e["start_date"].notna() & e["person_id"].isin(cand["person_id"].unique())]
        spells = cand.merge(e[["person_id", "start_date", "end_date"]], on="person_id", how="inner")
        if len(spells):
            first = spells["m"].to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
            last = (spells["m"].to_numpy() + 1).astype("datetime64[M]").astype("datetime64[ns]") - np.timedelta64(1, "D")
            covers = (spells["start_date"].to_numpy() <= first) & (
                spells["end_date"].isna().to_numpy() | (spells["end_date"].to_numpy() >= last))
            employed[spells["row"].to_numpy()[covers]] = True
        reason[employed] = "while_employed"
    bad = reason.notna().to_numpy()
    f = b[bad].assign(reason=reason[bad].to_numpy(), m=month[bad])
    total = f.groupby("person_id")["amount"].transform("sum")
    n_months = f.groupby("person_id")["m"].transform("nunique")
    keep = ((total > p.amount_over) & (n_months > p.months_over)).to_numpy()
    f, total, n_months = f[keep], total[keep], n_months[keep]
    return _records(f["person_id"], {
        "month": f["month"], "benefit_type": f["benefit_type"], "amount": f["amount"], "reason": f["reason"],
        "total_amount": total, "n_months": n_months.astype(np.int64)}, ["month", "benefit_type"])


# ---------------------------------------------------------------------------------------------
# Employers and agencies


class ArrearsParams(Params):
    min_months: int = Field(3, ge=1)
    min_shortfall: float = Field(0, ge=0)   # a month is in arrears when due - paid > min_shortfall


ARREARS_EVIDENCE = ("month", "due", "paid", "shortfall", "persons")


def employer_arrears(ds: Dataset, p: ArrearsParams) -> pd.DataFrame:
    """Employers with >= min_months months whose paid contributions fall short of what was due."""
    c = ds.table("contributions")
    c = c[c["due"].notna()]
    if c.empty:
        return _empty(ARREARS_EVIDENCE)
    emp_codes, emp_names = pd.factorize(c["employer_id"])
    month = _months(c["month"])
    g = pd.DataFrame({"e": emp_codes, "m": month, "due": c["due"].to_numpy(),
                      "paid": c["paid"].fillna(0).to_numpy()})
    agg = g.groupby(["e", "m"], sort=True).agg(due=("due", "sum"), paid=("paid", "sum"), persons=("due", "size"))
    agg = agg.reset_index()
    agg["shortfall"] = agg["due"] - agg["paid"]
    agg = agg[agg["shortfall"] > p.min_shortfall + 1e-9]
    n = agg.groupby("e")["m"].transform("size")
    agg = agg[n >= p.min_months]
    return _records(emp_names[agg["e"].to_numpy()], {
        "month": _month_text(agg["m"].to_numpy()), "due": agg["due"], "paid": agg["paid"],
        "shortfall": agg["shortfall"], "persons": agg["persons"].astype(np.int64)}, ["month"])


class BaseBelowWageParams(Params):
    ratio: float = Field(0.8, gt=0, le=1)   # fires when base < ratio * monthly_wage
    min_persons: int = Field(1, ge=1)


BASE_EVIDENCE = ("person_id", "month", "base", "monthly_wage", "base_to_wage")


def base_below_wage(ds: Dataset, p: BaseBelowWageParams) -> pd.DataFrame:
    """Employers declaring a contribution base below ratio x the wage on the person's employment record.

    The wage is that of the person's latest employment spell at the same employer.
    """
    e = ds.table("employment")
    e = e[e["monthly_wage"].notna()].sort_values(["employer_id", "person_id", "start_date"], kind="mergesort")
    wage = e.drop_duplicates(["employer_id", "person_id"], keep="last")
    c = ds.table("contributions")
    c = c[c["base"].notna()]
    if c.empty or wage.empty:
        return _empty(BASE_EVIDENCE)
    ce, cp, we, wp = _codes(c["employer_id"], c["person_id"], wage["employer_id"], wage["person_id"])
    n = int(max(cp.max(), wp.max())) + 1
    ckey = ce.astype(np.int64) * n + cp
    wkey = pd.Series(wage["monthly_wage"].to_numpy(), index=we.astype(np.int64) * n + wp)
    w = wkey.reindex(ckey).to_numpy()
    low = c["base"].to_numpy() < p.ratio * w  # NaN wage compares False
    f, fw = c[low], w[low]
    persons = f.groupby("employer_id")["person_id"].transform("nunique")
    keep = (persons >= p.min_persons).to_numpy()
    f, fw = f[keep], fw[keep]
    return _records(f["employer_id"], {
        "person_id": f["person_id"], "month": f["month"], "base": f["base"], "monthly_wage": fw,
        "base_to_wage": np.round(f["base"].to_numpy() / fw, 4)}, ["month", "person_id"])


class HeadcountParams(Params):
    ratio: float = Field(3.0, ge=1)          # insured > ratio * real headcount
    min_insured: int = Field(10, ge=1)
    min_excess: int = Field(0, ge=0)         # insured - real headcount >= min_excess
    headcount_column: str | None = None      # an extra employers column with the real staff count


HEADCOUNT_EVIDENCE = ("peak_month", "insured", "headcount", "headcount_source", "excess")


def headcount_inflation(ds: Dataset, p: HeadcountParams) -> pd.DataFrame:
    """Employers insuring far more persons in a month than they really employ.

    Insured = the most persons with a contribution row in any one month. Real headcount = the
    employers' `headcount_column` when given and filled in, else distinct persons on employment
    records at that employer.
    """
    c = ds.table("contributions")
    if c.empty:
        return _empty(HEADCOUNT_EVIDENCE)
    per_month = pd.DataFrame({"employer_id": c["employer_id"].to_numpy(), "m": _months(c["month"])}) \
        .groupby(["employer_id", "m"]).size().rename("insured").reset_index()
    per_month = per_month.sort_values(["employer_id", "insured", "m"], ascending=[True, False, True], kind="mergesort")
    peak = per_month.drop_duplicates("employer_id").set_index("employer_id")
    employed = ds.table("employment").groupby("employer_id")["person_id"].nunique()
    head = employed.reindex(peak.index).fillna(0)
    source = pd.Series("employment", index=peak.index, dtype="str")
    emp = ds.table("employers")
    if p.headcount_column and p.headcount_column in emp.columns:
        given = pd.to_numeric(emp.set_index("employer_id")[p.headcount_column], errors="coerce").reindex(peak.index)
        head = given.where(given.notna(), head)
        source = source.where(given.isna(), p.headcount_column)
    insured = peak["insured"].astype(np.int64)
    excess = insured - head
    fire = (insured >= p.min_insured) & (insured > p.ratio * head) & (excess >= p.min_excess)
    f = peak[fire]
    return _records(f.index.to_numpy(), {
        "peak_month": _month_text(f["m"].to_numpy()), "insured": insured[fire], "headcount": head[fire],
        "headcount_source": source[fire], "excess": excess[fire]}, [])


class AgencyRoutingParams(Params):
    min_persons: int = Field(20, ge=1)
    min_employers: int = Field(5, ge=1)
    max_employer_size: int = Field(10, ge=1)   # "small": at most this many persons on employment records


AGENCY_EVIDENCE = ("employer_id", "persons_placed", "employer_size")


def agency_shell_routing(ds: Dataset, p: AgencyRoutingParams) -> pd.DataFrame:
    """Agencies placing >= min_persons persons into >= min_employers small employers.

    Placements come from employment.agency_id, and from agency_links (relation 'placed', entity
    type person) joined to the person's employers.
    """
    e = ds.table("employment")
    parts = [e.loc[e["agency_id"].notna(), ["agency_id", "person_id", "employer_id"]]]
    links = ds.table("agency_links")
    links = links[(links["entity_type"] == "person") & (links["relation"].fillna("placed") == "placed")]
    if len(links):
        parts.append(links[["agency_id", "entity_id"]].rename(columns={"entity_id": "person_id"})
                     .merge(e[["person_id", "employer_id"]], on="person_id", how="inner"))
    placed = pd.concat(parts, ignore_index=True).drop_duplicates()
    size = e.groupby("employer_id")["person_id"].nunique()
    small = size[size <= p.max_employer_size]
    placed = placed[placed["employer_id"].isin(small.index)]
    persons = placed.groupby("agency_id")["person_id"].transform("nunique")
    employers = placed.groupby("agency_id")["employer_id"].transform("nunique")
    placed = placed[(persons >= p.min_persons) & (employers >= p.min_employers)]
    per = placed.groupby(["agency_id", "employer_id"])["person_id"].nunique().rename("persons_placed").reset_index()
    return _records(per["agency_id"], {
        "employer_id": per["employer_id"], "persons_placed": per["persons_placed"].astype(np.int64),
        "employer_size": small.reindex(per["employer_id"]).to_numpy().astype(np.int64)}, ["employer_id"])


# ---------------------------------------------------------------------------------------------
# The registry

DETECTORS: MappingProxyType[str, Detector] = MappingProxyType({d.name: d for d in (
    Detector("multi_clinic_visits", "person", MultiClinicParams, multi_clinic_visits, MULTI_CLINIC_EVIDENCE,
             ("visits.date",), doc=multi_clinic_visits.__doc__ or ""),
    Detector("split_admission", "person", SplitAdmissionParams, split_admission, SPLIT_EVIDENCE,
             ("visits.date", "visits.kind", "visits.diagnosis"), doc=split_admission.__doc__ or ""),
    Detector("activity_during_stay", "person", DuringStayParams, activity_during_stay, STAY_EVIDENCE,
             ("visits.date", "visits.kind", "visits.discharge_date"), doc=activity_during_stay.__doc__ or ""),
    Detector("activity_after_death", "person", AfterDeathParams, activity_after_death, DEATH_EVIDENCE,
             ("persons.death_date",), ("visits.date", "purchases.date", "benefits.month"),
             doc=activity_after_death.__doc__ or ""),
    Detector("over_prescribing", "person", OverSupplyParams, over_prescribing, OVER_SUPPLY_EVIDENCE,
             ("purchases.days_supply",), doc=over_prescribing.__doc__ or ""),
    Detector("overlapping_supply", "person", OverlapSupplyParams, overlapping_supply, OVERLAP_EVIDENCE,
             ("purchases.date", "purchases.drug_code", "purchases.days_supply"), doc=overlapping_supply.__doc__ or ""),
    Detector("clinic_over_capacity", "clinic", OverCapacityParams, clinic_over_capacity, CAPACITY_EVIDENCE,
             ("clinics.beds", "visits.date", "visits.kind"), doc=clinic_over_capacity.__doc__ or ""),
    Detector("benefit_while_contributing", "person", BenefitWhileContributingParams, benefit_while_contributing,
             CONTRIB_BENEFIT_EVIDENCE, ("benefits.month", "contributions.paid"),
             doc=benefit_while_contributing.__doc__ or ""),
    Detector("benefit_after_death", "person", BenefitAfterDeathParams, benefit_after_death,
             BENEFIT_DEATH_EVIDENCE, ("benefits.month", "persons.death_date"), doc=benefit_after_death.__doc__ or ""),
    Detector("ineligible_benefits", "person", IneligibleBenefitParams, ineligible_benefits, INELIGIBLE_EVIDENCE,
             ("benefits.month",), ("persons.death_date", "contributions.paid", "employment.start_date"),
             doc=ineligible_benefits.__doc__ or ""),
    Detector("employer_arrears", "employer", ArrearsParams, employer_arrears, ARREARS_EVIDENCE,
             ("contributions.due",), doc=employer_arrears.__doc__ or ""),
    Detector("base_below_wage", "employer", BaseBelowWageParams, base_below_wage, BASE_EVIDENCE,
             ("contributions.base", "employment.monthly_wage"), doc=base_below_wage.__doc__ or ""),
    Detector("headcount_inflation", "employer", HeadcountParams, headcount_inflation, HEADCOUNT_EVIDENCE,
             ("contributions.month",), doc=headcount_inflation.__doc__ or ""),
    Detector("agency_shell_routing", "agency", AgencyRoutingParams, agency_shell_routing, AGENCY_EVIDENCE,
             ("employment.employer_id",), ("employment.agency_id", "agency_links.agency_id"),
             doc=agency_shell_routing.__doc__ or ""),
)})
