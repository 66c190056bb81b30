"""The fixed registry of built-in, vectorised detectors that rule packs can name.

A detector is a plain function `(dataset, params, cache) -> DataFrame`: one row per evidence
record, column `entity_id` (the entity the rule fires for) plus the record's columns. It works on
whole tables with integer keys, sorts and numpy, never a Python loop over entities: ids are integer
codes from the per-evaluation `Cache` (rules/cache.py, shared by all detectors of one run), and
string columns are only gathered for the rows that fire. Its parameters are a pydantic model
(unknown keys rejected), and it declares the table columns it needs so that the engine can skip
it, and say why, on datasets without them.
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
from rules.cache import NAT, Cache, VocabularyChanged


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Detector:
    """A built-in detector: what it finds, its parameters and the data it needs."""

    name: str
    entity_type: str
    params: type[Params]
    fn: Callable[[Dataset, Any, Cache], pd.DataFrame]
    evidence: tuple[str, ...]          # record columns it returns, in order
    needs: tuple[str, ...]             # "table.column" that must all have values
    needs_any: tuple[str, ...] = ()    # at least one of these must have values

    @property
    def doc(self) -> str:
        """What the detector finds: its function's docstring."""
        return self.fn.__doc__ or ""

    def run(self, dataset: Dataset, params: Any, cache: Cache | None = None) -> pd.DataFrame:
        """The evidence records; pass the evaluation's cache to share codes across detectors."""
        cache = cache if cache is not None else Cache(dataset)
        while True:
            try:
                return self.fn(dataset, params, cache)
            except VocabularyChanged:   # ids outside the entity tables: the cache was reset, run again
                continue

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


def _death_ns(cx: Cache) -> np.ndarray:
    """Death date (int64 ns, NAT when alive or unknown) per person code, plus a NAT slot for code -1."""
    def build() -> np.ndarray:
        out = np.full(cx.n("person") + 1, NAT, dtype=np.int64)
        ok = cx.notna("persons", "death_date")
        out[cx.codes("persons", "person_id", "person")[ok]] = cx.ns("persons", "death_date")[ok]
        out[-1] = NAT
        return out
    return cx.memo("death_ns", build)


def _ns_to_date(ns: np.ndarray) -> np.ndarray:
    return np.asarray(ns, dtype=np.int64).view("datetime64[ns]")


def _ns_days(ns: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of int64 nanoseconds (like _days on the same dates)."""
    return _ns_to_date(ns).astype("datetime64[D]").astype(np.int64)


def _ns_months(ns: np.ndarray) -> np.ndarray:
    return _ns_to_date(ns).astype("datetime64[M]").astype(np.int64)


def _pair_key(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One int64 key per row of two int arrays, equal iff both values are equal.

    Keys are only comparable within one call: join two tables by passing both sides
    concatenated and splitting the result.
    """
    if not len(a):
        return np.zeros(0, dtype=np.int64)
    a = a.astype(np.int64) - a.min()
    b = b.astype(np.int64) - b.min()
    nb = int(b.max()) + 1
    if int(a.max()) >= (2 ** 62) // nb:
        return pd.factorize(pd.MultiIndex.from_arrays([a, b]))[0].astype(np.int64)
    return a * nb + b


def _join_keys(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Comparable pair keys for two tables' (a, b) columns."""
    k = _pair_key(np.concatenate([a1, a2]), np.concatenate([b1, b2]))
    return k[:len(a1)], k[len(a1):]


def _in_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of values found in sorted unique keys, their positions there)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[pos] == values, pos


# ---------------------------------------------------------------------------------------------
# Medical insurance: visits and purchases


class MultiClinicParams(Params):
    window: Literal["day", "month"] = "day"
    min_clinics: int = Field(2, ge=2)
    kinds: list[str] | None = None   # visit kinds counted; None = all


MULTI_CLINIC_EVIDENCE = ("visit_id", "clinic_id", "date", "kind", "amount", "claimed", "n_clinics")


def multi_clinic_visits(ds: Dataset, p: MultiClinicParams, cx: Cache) -> pd.DataFrame:
    """Persons visiting >= min_clinics different clinics within one day or calendar month."""
    v = ds.table("visits")
    ok = cx.notna("visits", "date")
    if p.kinds is not None:
        ok = ok & v["kind"].isin(p.kinds).to_numpy()
    rows = np.flatnonzero(ok)
    if not len(rows):
        return _empty(MULTI_CLINIC_EVIDENCE)
    period = (cx.days("visits", "date") if p.window == "day" else cx.date_months("visits", "date"))[rows]
    person = cx.codes("visits", "person_id", "person")[rows]
    clinic = cx.codes("visits", "clinic_id", "clinic")[rows]
    pt = _pair_key(person, period)                          # one key per (person, day or month)
    _, first = np.unique(_pair_key(pt, clinic), return_index=True)   # distinct (person, period, clinic)
    keys, n = np.unique(pt[first], return_counts=True)     # distinct clinics per (person, period)
    fired_keys, fired_n = keys[n >= p.min_clinics], n[n >= p.min_clinics]
    mask, pos = _in_sorted(pt, fired_keys)
    f = v.iloc[rows[mask]]
    return _records(f["person_id"], {
        "visit_id": f["visit_id"], "clinic_id": f["clinic_id"], "date": f["date"], "kind": f["kind"],
        "amount": f["amount"], "claimed": f["claimed"],
        "n_clinics": fired_n[pos[mask]].astype(np.int64),
    }, ["date", "clinic_id", "visit_id"])


class SplitAdmissionParams(Params):
    max_gap_days: int = Field(15, ge=0)
    same_diagnosis: bool = True
    inpatient_kind: str = "inpatient"


SPLIT_EVIDENCE = ("visit_id", "clinic_id", "date", "discharge_date", "diagnosis", "amount",
                  "prev_visit_id", "prev_clinic_id", "prev_date", "prev_discharge_date", "gap_days")


def split_admission(ds: Dataset, p: SplitAdmissionParams, cx: Cache) -> pd.DataFrame:
    """Inpatient readmissions (same person, same diagnosis) within max_gap_days of the last discharge."""
    v = ds.table("visits")
    ok = cx.eq("visits", "kind", p.inpatient_kind) & cx.notna("visits", "date")
    if p.same_diagnosis:
        ok = ok & cx.notna("visits", "diagnosis")
    v = v.iloc[np.flatnonzero(ok)]
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


def activity_during_stay(ds: Dataset, p: DuringStayParams, cx: Cache) -> pd.DataFrame:
    """Visits or purchases strictly between an inpatient stay's admission and discharge dates."""
    v = ds.table("visits")
    ok = cx.eq("visits", "kind", p.inpatient_kind) & cx.notna("visits", "date") & cx.notna("visits", "discharge_date")
    srows = np.flatnonzero(ok)
    srows = srows[cx.days("visits", "discharge_date")[srows] - cx.days("visits", "date")[srows] >= 2]  # inner day
    sources = [t for t in ("visits", "purchases") if t in p.sources and (t == "visits" or ds.has(t))]
    if not len(srows) or not sources:
        return _empty(STAY_EVIDENCE)
    # Stays grouped by person (table order within a person), then each event of a person with a
    # stay paired with that person's stays by integer codes; strings only for the pairs inside.
    s_person = cx.codes("visits", "person_id", "person")[srows]
    order = np.argsort(s_person, kind="stable")
    srows, s_person = srows[order], s_person[order]
    has_stay = cx.flags("person", s_person)
    s_start, s_end = cx.ns("visits", "date")[srows], cx.ns("visits", "discharge_date")[srows]
    parts = []
    for table in sources:
        rid, place = ("visit_id", "clinic_id") if table == "visits" else ("purchase_id", "pharmacy_id")
        person = cx.codes(table, "person_id", "person")
        erows = np.flatnonzero(cx.notna(table, "date") & has_stay[person])
        ep = person[erows]
        lo, hi = np.searchsorted(s_person, ep, "left"), np.searchsorted(s_person, ep, "right")
        n = hi - lo
        ev_i = np.repeat(np.arange(len(erows)), n)
        st_i = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        day = cx.ns(table, "date")[erows][ev_i]
        inside = (day > s_start[st_i]) & (day < s_end[st_i])
        ev_i, st_i = ev_i[inside], st_i[inside]
        e, st = ds.tables[table].iloc[erows[ev_i]], v.iloc[srows[st_i]]
        m = pd.DataFrame({"person_id": e["person_id"].to_numpy(), "source": table,
                          "record_id": e[rid].to_numpy(), "place_id": e[place].to_numpy(),
                          "date": e["date"].to_numpy(), "amount": e["amount"].to_numpy(),
                          "stay_visit_id": st["visit_id"].to_numpy(), "stay_clinic_id": st["clinic_id"].to_numpy(),
                          "stay_date": st["date"].to_numpy(), "stay_discharge_date": st["discharge_date"].to_numpy()})
        parts.append(m[(m["record_id"] != m["stay_visit_id"]).to_numpy()])
    m = pd.concat(parts, ignore_index=True)
    return _records(m["person_id"], {c: m[c] for c in STAY_EVIDENCE}, ["date", "source", "record_id"])


class AfterDeathParams(Params):
    sources: list[Literal["visits", "purchases", "benefits"]] = Field(
        default_factory=lambda: ["visits", "purchases", "benefits"], min_length=1)
    grace_days: int = Field(0, ge=0)   # visits/purchases this many days after death are ignored


DEATH_EVIDENCE = ("source", "record_id", "place_id", "date", "month", "amount", "death_date")


def activity_after_death(ds: Dataset, p: AfterDeathParams, cx: Cache) -> pd.DataFrame:
    """Visits or purchases dated after the death date; benefits for a month after the death month."""
    death = _death_ns(cx)
    parts = []
    for table, rid, place in (("visits", "visit_id", "clinic_id"), ("purchases", "purchase_id", "pharmacy_id")):
        if table not in p.sources or not ds.has(table):
            continue
        d = death[cx.codes(table, "person_id", "person")]
        rows = np.flatnonzero(cx.notna(table, "date") & (d != NAT))
        after = cx.days(table, "date")[rows] > _ns_days(d[rows]) + p.grace_days
        rows = rows[after]
        d = d[rows]
        e = ds.tables[table].iloc[rows]
        parts.append(pd.DataFrame({
            "person_id": e["person_id"], "source": table, "record_id": e[rid], "place_id": e[place],
            "date": e["date"], "month": _month_text(_months_of_dates(e["date"])), "amount": e["amount"],
            "death_date": pd.Series(_ns_to_date(d), index=e.index)}))
    if "benefits" in p.sources and ds.has("benefits"):
        d = death[cx.codes("benefits", "person_id", "person")]
        rows = np.flatnonzero(d != NAT)
        after = cx.months("benefits", "month")[rows] > _ns_months(d[rows])
        rows = rows[after]
        b = ds.tables["benefits"].iloc[rows].assign(death_date=_ns_to_date(d[rows]))
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


def over_prescribing(ds: Dataset, p: OverSupplyParams, cx: Cache) -> pd.DataFrame:
    """Purchases supplying more than max_days_supply days (persons with >= min_purchases of them)."""
    e = ds.table("purchases")
    rows = np.flatnonzero((e["days_supply"] > p.max_days_supply).to_numpy())
    if p.min_purchases > 1:
        person = cx.codes("purchases", "person_id", "person")[rows]
        counts = np.bincount(person + 1, minlength=cx.n("person") + 1)
        rows = rows[counts[person + 1] >= p.min_purchases]
    e = e.iloc[rows]
    return _records(e["person_id"], {c: e[c] for c in OVER_SUPPLY_EVIDENCE}, ["date", "purchase_id"])


class OverlapSupplyParams(Params):
    min_overlap_days: int = Field(1, ge=1)
    min_overlaps: int = Field(1, ge=1)


OVERLAP_EVIDENCE = ("purchase_id", "pharmacy_id", "date", "drug_code", "days_supply",
                    "prev_purchase_id", "prev_pharmacy_id", "prev_date", "prev_days_supply", "overlap_days")


def overlapping_supply(ds: Dataset, p: OverlapSupplyParams, cx: Cache) -> pd.DataFrame:
    """A purchase of a drug before the previous purchase's supply (date + days_supply) ran out."""
    e = ds.table("purchases")
    supply = e["days_supply"].to_numpy(dtype=np.float64)
    rows = np.flatnonzero(cx.notna("purchases", "date") & cx.notna("purchases", "drug_code") & ~np.isnan(supply))
    if not len(rows):
        return _empty(OVERLAP_EVIDENCE)
    person = cx.codes("purchases", "person_id", "person")[rows]
    group = _pair_key(person, cx.factor("purchases", "drug_code")[rows])
    day = cx.days("purchases", "date")[rows]
    order = np.lexsort((day, group))  # integer sort; ties keep the table's purchase_id order
    rows, group, day, person = rows[order], group[order], day[order], person[order]
    same = _group_starts(group)
    end = day + np.floor(supply[rows]).astype(np.int64)
    overlap = np.roll(end, 1) - day
    fire = same & (overlap >= p.min_overlap_days)
    at = np.flatnonzero(fire)
    if p.min_overlaps > 1:
        counts = np.bincount(person[at] + 1, minlength=cx.n("person") + 1)
        at = at[counts[person[at] + 1] >= p.min_overlaps]
    cur, prev = e.iloc[rows[at]], e.iloc[rows[at - 1]]
    return _records(cur["person_id"], {
        "purchase_id": cur["purchase_id"], "pharmacy_id": cur["pharmacy_id"], "date": cur["date"],
        "drug_code": cur["drug_code"], "days_supply": cur["days_supply"],
        "prev_purchase_id": prev["purchase_id"], "prev_pharmacy_id": prev["pharmacy_id"],
        "prev_date": prev["date"], "prev_days_supply": prev["days_supply"], "overlap_days": overlap[at],
    }, ["drug_code", "date", "purchase_id"])


class OverCapacityParams(Params):
    inpatient_kind: str = "inpatient"
    occupancy_ratio: float = Field(1.0, gt=0)   # fires when inpatients > beds * ratio
    min_days: int = Field(1, ge=1)


CAPACITY_EVIDENCE = ("date_from", "date_to", "days", "inpatients", "beds")


def clinic_over_capacity(ds: Dataset, p: OverCapacityParams, cx: Cache) -> pd.DataFrame:
    """Clinics with more inpatients on a day (admitted on or before it, discharged after it) than beds."""
    beds = ds.table("clinics").set_index("clinic_id")["beds"].dropna()
    v = ds.table("visits")
    v = v.iloc[np.flatnonzero(cx.eq("visits", "kind", p.inpatient_kind) & cx.notna("visits", "date"))]
    v = v[v["clinic_id"].isin(beds.index)]
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


def benefit_while_contributing(ds: Dataset, p: BenefitWhileContributingParams, cx: Cache) -> pd.DataFrame:
    """Benefits (unemployment by default) for a month in which an employer paid contributions for the person."""
    b = ds.table("benefits")
    brows = np.flatnonzero(b["benefit_type"].isin(p.benefit_types).to_numpy())
    bp = cx.codes("benefits", "person_id", "person")[brows]
    c = ds.table("contributions")
    cp = cx.codes("contributions", "person_id", "person")
    crows = np.flatnonzero((c["paid"] > p.min_paid).to_numpy() & cx.flags("person", bp)[cp])
    # join on integer (person, month) keys; months are validated YYYY-MM text, so equal text = equal number
    bkey, ckey = _join_keys(bp, cx.months("benefits", "month")[brows], cp[crows],
                            cx.months("contributions", "month")[crows])
    j = pd.DataFrame({"k": bkey, "b": brows}).merge(pd.DataFrame({"k": ckey, "c": crows}), on="k", how="inner")
    bj, cj = b.iloc[j["b"].to_numpy()], c.iloc[j["c"].to_numpy()]
    m = pd.DataFrame({"person_id": bj["person_id"].to_numpy(), "month": bj["month"].to_numpy(),
                      "benefit_type": bj["benefit_type"].to_numpy(), "amount": bj["amount"].to_numpy(),
                      "employer_id": cj["employer_id"].to_numpy(), "paid": cj["paid"].to_numpy()})
    return _records(m["person_id"], {k: m[k] for k in CONTRIB_BENEFIT_EVIDENCE},
                    ["month", "benefit_type", "employer_id"])


class BenefitAfterDeathParams(Params):
    benefit_types: list[str] = Field(default_factory=lambda: ["pension"], min_length=1)
    min_months_after: int = Field(1, ge=1)   # months after the death month


BENEFIT_DEATH_EVIDENCE = ("month", "benefit_type", "amount", "death_date", "months_after_death")


def benefit_after_death(ds: Dataset, p: BenefitAfterDeathParams, cx: Cache) -> pd.DataFrame:
    """Benefits of the given types paid for a month at least min_months_after the death month."""
    b = ds.table("benefits")
    d = _death_ns(cx)[cx.codes("benefits", "person_id", "person")]
    rows = np.flatnonzero((d != NAT) & b["benefit_type"].isin(p.benefit_types).to_numpy())
    after = cx.months("benefits", "month")[rows] - _ns_months(d[rows])
    keep = after >= p.min_months_after
    rows = rows[keep]
    b = b.iloc[rows].assign(death_date=_ns_to_date(d[rows]))
    return _records(b["person_id"], {
        "month": b["month"], "benefit_type": b["benefit_type"], "amount": b["amount"],
        "death_date": b["death_date"], "months_after_death": after[keep]}, ["month", "benefit_type"])


class IneligibleBenefitParams(Params):
    after_death: bool = True
    while_employed_types: list[str] = Field(default_factory=lambda: ["unemployment"])
    amount_over: float = Field(0, ge=0)    # fires when the ineligible total is > amount_over
    months_over: int = Field(0, ge=0)      # and the distinct ineligible months are > months_over


INELIGIBLE_EVIDENCE = ("month", "benefit_type", "amount", "reason", "total_amount", "n_months")


def ineligible_benefits(ds: Dataset, p: IneligibleBenefitParams, cx: Cache) -> pd.DataFrame:
    """Benefits drawn while not eligible (after death; while employed) over an amount or month count.

    'While employed' means contributions with paid > 0 for that person and month, or an employment
    spell that covers the whole month (start on or before its first day, no end or an end on or
    after its last day).
    """
    b = ds.table("benefits").reset_index(drop=True)
    if b.empty:
        return _empty(INELIGIBLE_EVIDENCE)
    reason = cx.memo(("ineligible", p.after_death, tuple(p.while_employed_types)),
                     lambda: _ineligible_reason(ds, p, cx))
    bad = np.flatnonzero(reason > 0)
    person, month = cx.codes("benefits", "person_id", "person")[bad], cx.months("benefits", "month")[bad]
    g = pd.DataFrame({"p": person, "amount": b["amount"].to_numpy()[bad], "m": month}).groupby("p")
    total, n_months = g["amount"].transform("sum"), g["m"].transform("nunique")
    keep = ((total > p.amount_over) & (n_months > p.months_over)).to_numpy()
    rows = bad[keep]
    f = b.iloc[rows]
    return _records(f["person_id"], {
        "month": f["month"], "benefit_type": f["benefit_type"], "amount": f["amount"],
        "reason": np.array(["", "after_death", "while_employed"], dtype=object)[reason[rows]],
        "total_amount": total.to_numpy()[keep], "n_months": n_months.to_numpy()[keep].astype(np.int64)},
        ["month", "benefit_type"])


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
        found, _ = _in_sorted(bkey, np.unique(ckey))
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
            first = cand_m[ci].astype("datetime64[M]").astype("datetime64[ns]").view(np.int64)
            last = ((cand_m[ci] + 1).astype("datetime64[M]").astype("datetime64[ns]")
                    - np.timedelta64(1, "D")).view(np.int64)
            start, stop = cx.ns("employment", "start_date")[si], cx.ns("employment", "end_date")[si]
            covers = (start <= first) & ((stop == NAT) | (stop >= last))
            employed[emp_rows[ci[covers]]] = True
        reason[employed] = 2
    return reason


# ---------------------------------------------------------------------------------------------
# Employers and agencies


class ArrearsParams(Params):
    min_months: int = Field(3, ge=1)
    min_shortfall: float = Field(0, ge=0)   # a month is in arrears when due - paid > min_shortfall


ARREARS_EVIDENCE = ("month", "due", "paid", "shortfall", "persons")


def employer_arrears(ds: Dataset, p: ArrearsParams, cx: Cache) -> pd.DataFrame:
    """Employers with >= min_months months whose paid contributions fall short of what was due."""
    c = ds.table("contributions")
    rows = np.flatnonzero(cx.notna("contributions", "due"))
    if not len(rows):
        return _empty(ARREARS_EVIDENCE)
    emp = cx.codes("contributions", "employer_id", "employer")[rows]
    month = cx.months("contributions", "month")[rows]
    key = _pair_key(emp, month)
    g = pd.DataFrame({"k": key, "due": c["due"].to_numpy()[rows], "paid": c["paid"].fillna(0).to_numpy()[rows]})
    agg = g.groupby("k", sort=True).agg(due=("due", "sum"), paid=("paid", "sum"), persons=("due", "size"))
    first = np.unique(key, return_index=True)[1]   # a row of each (employer, month), in key order
    agg = agg.reset_index(drop=True).assign(e=emp[first], m=month[first])
    agg["shortfall"] = agg["due"] - agg["paid"]
    agg = agg[agg["shortfall"] > p.min_shortfall + 1e-9]
    n = agg.groupby("e")["m"].transform("size")
    agg = agg[n >= p.min_months]
    return _records(cx.ids("employer", agg["e"].to_numpy()), {
        "month": _month_text(agg["m"].to_numpy()), "due": agg["due"], "paid": agg["paid"],
        "shortfall": agg["shortfall"], "persons": agg["persons"].astype(np.int64)}, ["month"])


class BaseBelowWageParams(Params):
    ratio: float = Field(0.8, gt=0, le=1)   # fires when base < ratio * monthly_wage
    min_persons: int = Field(1, ge=1)


BASE_EVIDENCE = ("person_id", "month", "base", "monthly_wage", "base_to_wage")


def base_below_wage(ds: Dataset, p: BaseBelowWageParams, cx: Cache) -> pd.DataFrame:
    """Employers declaring a contribution base below ratio x the wage on the person's employment record.

    The wage is that of the person's latest employment spell at the same employer.
    """
    wage = ds.table("employment")["monthly_wage"].to_numpy(dtype=np.float64)
    erows = np.flatnonzero(~np.isnan(wage))
    c = ds.table("contributions")
    base = c["base"].to_numpy(dtype=np.float64)
    crows = np.flatnonzero(~np.isnan(base))
    if not len(crows) or not len(erows):
        return _empty(BASE_EVIDENCE)
    wkey, ckey = _join_keys(cx.codes("employment", "employer_id", "employer")[erows],
                            cx.codes("employment", "person_id", "person")[erows],
                            cx.codes("contributions", "employer_id", "employer")[crows],
                            cx.codes("contributions", "person_id", "person")[crows])
    # the latest spell per (employer, person): sort by start date (missing last, ties in table order)
    start = cx.ns("employment", "start_date")[erows]
    start = np.where(start == NAT, np.iinfo(np.int64).max, start)
    order = np.lexsort((start, wkey))
    wkey, wrow = wkey[order], erows[order]
    last = np.ones(len(wkey), dtype=bool)
    last[:-1] = wkey[1:] != wkey[:-1]
    wkey, wrow = wkey[last], wrow[last]
    found, pos = _in_sorted(ckey, wkey)
    low = found & (base[crows] < p.ratio * wage[wrow[pos]])
    f, fw = c.iloc[crows[low]], wage[wrow[pos[low]]]
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


def _employer_persons(ds: Dataset, cx: Cache) -> pd.Series:
    """Distinct persons on employment records per employer id (employers with a record only)."""
    def build() -> pd.Series:
        e = ds.table("employment")
        emp = cx.codes("employment", "employer_id", "employer")
        person = cx.codes("employment", "person_id", "person")
        ok = emp >= 0
        present = np.unique(emp[ok])
        has_person = ok & (person >= 0)
        _, first = np.unique(_pair_key(emp[has_person], person[has_person]), return_index=True)
        counts = np.bincount(emp[has_person][first], minlength=cx.n("employer"))[present]
        return pd.Series(counts.astype(np.int64), index=pd.Index(cx.ids("employer", present), name="employer_id",
                                                                  dtype=e["employer_id"].dtype), name="person_id")
    return cx.memo("employer_persons", build)


def headcount_inflation(ds: Dataset, p: HeadcountParams, cx: Cache) -> pd.DataFrame:
    """Employers insuring far more persons in a month than they really employ.

    Insured = the most persons with a contribution row in any one month. Real headcount = the
    employers' `headcount_column` when given and filled in, else distinct persons on employment
    records at that employer.
    """
    c = ds.table("contributions")
    if c.empty:
        return _empty(HEADCOUNT_EVIDENCE)
    peak = cx.memo("peak_insured", lambda: _peak_insured(ds, cx))
    employed = _employer_persons(ds, cx)
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


def _peak_insured(ds: Dataset, cx: Cache) -> pd.DataFrame:
    """Per employer id (sorted): the most contribution rows in one month ("insured") and the first such month."""
    emp = cx.codes("contributions", "employer_id", "employer")
    month = cx.months("contributions", "month")
    ok = emp >= 0
    emp, month = emp[ok], month[ok]
    _, first, size = np.unique(_pair_key(emp, month), return_index=True, return_counts=True)
    e, m = emp[first], month[first]
    order = np.lexsort((m, -size, e))             # per employer: most rows first, then earliest month
    e, m, size = e[order], m[order], size[order]
    top = np.ones(len(e), dtype=bool)
    top[1:] = e[1:] != e[:-1]
    e, m, size = e[top], m[top], size[top]
    index = pd.Index(cx.ids("employer", e), name="employer_id", dtype=ds.table("contributions")["employer_id"].dtype)
    return pd.DataFrame({"m": m, "insured": size.astype(np.int64)}, index=index)


class AgencyRoutingParams(Params):
    min_persons: int = Field(20, ge=1)
    min_employers: int = Field(5, ge=1)
    max_employer_size: int = Field(10, ge=1)   # "small": at most this many persons on employment records


AGENCY_EVIDENCE = ("employer_id", "persons_placed", "employer_size")


def agency_shell_routing(ds: Dataset, p: AgencyRoutingParams, cx: Cache) -> pd.DataFrame:
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
    size = _employer_persons(ds, cx)
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
             ("visits.date",)),
    Detector("split_admission", "person", SplitAdmissionParams, split_admission, SPLIT_EVIDENCE,
             ("visits.date", "visits.kind", "visits.diagnosis")),
    Detector("activity_during_stay", "person", DuringStayParams, activity_during_stay, STAY_EVIDENCE,
             ("visits.date", "visits.kind", "visits.discharge_date")),
    Detector("activity_after_death", "person", AfterDeathParams, activity_after_death, DEATH_EVIDENCE,
             ("persons.death_date",), ("visits.date", "purchases.date", "benefits.month")),
    Detector("over_prescribing", "person", OverSupplyParams, over_prescribing, OVER_SUPPLY_EVIDENCE,
             ("purchases.days_supply",)),
    Detector("overlapping_supply", "person", OverlapSupplyParams, overlapping_supply, OVERLAP_EVIDENCE,
             ("purchases.date", "purchases.drug_code", "purchases.days_supply")),
    Detector("clinic_over_capacity", "clinic", OverCapacityParams, clinic_over_capacity, CAPACITY_EVIDENCE,
             ("clinics.beds", "visits.date", "visits.kind")),
    Detector("benefit_while_contributing", "person", BenefitWhileContributingParams, benefit_while_contributing,
             CONTRIB_BENEFIT_EVIDENCE, ("benefits.month", "contributions.paid")),
    Detector("benefit_after_death", "person", BenefitAfterDeathParams, benefit_after_death,
             BENEFIT_DEATH_EVIDENCE, ("benefits.month", "persons.death_date")),
    Detector("ineligible_benefits", "person", IneligibleBenefitParams, ineligible_benefits, INELIGIBLE_EVIDENCE,
             ("benefits.month",), ("persons.death_date", "contributions.paid", "employment.start_date")),
    Detector("employer_arrears", "employer", ArrearsParams, employer_arrears, ARREARS_EVIDENCE,
             ("contributions.due",)),
    Detector("base_below_wage", "employer", BaseBelowWageParams, base_below_wage, BASE_EVIDENCE,
             ("contributions.base", "employment.monthly_wage")),
    Detector("headcount_inflation", "employer", HeadcountParams, headcount_inflation, HEADCOUNT_EVIDENCE,
             ("contributions.month",)),
    Detector("agency_shell_routing", "agency", AgencyRoutingParams, agency_shell_routing, AGENCY_EVIDENCE,
             ("employment.employer_id",), ("employment.agency_id", "agency_links.agency_id")),
)})
