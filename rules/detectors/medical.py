"""Medical-insurance detectors: visits, inpatient stays and pharmacy purchases."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from graph.dataset import Dataset
from rules.cache import NAT, Cache
from rules.detectors.base import (
    Detector,
    Params,
    _codes,
    _date_from_days,
    _days,
    _death_ns,
    _empty,
    _group_starts,
    _in_sorted,
    _month_text,
    _months_of_dates,
    _ns_days,
    _ns_months,
    _ns_to_date,
    _pair_key,
    _records,
)


class MultiClinicParams(Params):
    window: Literal["day", "month"] = "day"
    min_clinics: int = Field(2, ge=2)
    kinds: list[str] | None = None  # visit kinds counted; None = all


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
    pt = _pair_key(person, period)  # one key per (person, day or month)
    _, first = np.unique(_pair_key(pt, clinic), return_index=True)  # distinct (person, period, clinic)
    keys, n = np.unique(pt[first], return_counts=True)  # distinct clinics per (person, period)
    fired_keys, fired_n = keys[n >= p.min_clinics], n[n >= p.min_clinics]
    mask, pos = _in_sorted(pt, fired_keys)
    return multi_clinic_records(v.iloc[rows[mask]], fired_n[pos[mask]])


def multi_clinic_records(f: pd.DataFrame, n_clinics: np.ndarray) -> pd.DataFrame:
    """The evidence records of `multi_clinic_visits` (also built by the Spark engine's version)."""
    return _records(
        f["person_id"],
        {
            "visit_id": f["visit_id"],
            "clinic_id": f["clinic_id"],
            "date": f["date"],
            "kind": f["kind"],
            "amount": f["amount"],
            "claimed": f["claimed"],
            "n_clinics": n_clinics.astype(np.int64),
        },
        ["date", "clinic_id", "visit_id"],
    )


class SplitAdmissionParams(Params):
    max_gap_days: int = Field(15, ge=0)
    same_diagnosis: bool = True
    inpatient_kind: str = "inpatient"


SPLIT_EVIDENCE = (
    "visit_id",
    "clinic_id",
    "date",
    "discharge_date",
    "diagnosis",
    "amount",
    "prev_visit_id",
    "prev_clinic_id",
    "prev_date",
    "prev_discharge_date",
    "gap_days",
)


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
    end = np.where(v["discharge_date"].notna().to_numpy(), _days(v["discharge_date"].fillna(v["date"])), start)
    prev_end = np.roll(end, 1)
    gap = start - prev_end
    fire = same & (gap <= p.max_gap_days)
    prev = np.flatnonzero(fire) - 1
    return split_admission_records(v.iloc[np.flatnonzero(fire)], v.iloc[prev], gap[fire])


def split_admission_records(cur: pd.DataFrame, before: pd.DataFrame, gap: np.ndarray) -> pd.DataFrame:
    """`split_admission`'s evidence: each readmission's visit (`cur`), the stay before it
    (`before`, row for row) and the days between, whoever found them (pandas or Spark)."""
    return _records(
        cur["person_id"],
        {
            "visit_id": cur["visit_id"],
            "clinic_id": cur["clinic_id"],
            "date": cur["date"],
            "discharge_date": cur["discharge_date"],
            "diagnosis": cur["diagnosis"],
            "amount": cur["amount"],
            "prev_visit_id": before["visit_id"],
            "prev_clinic_id": before["clinic_id"],
            "prev_date": before["date"],
            "prev_discharge_date": before["discharge_date"],
            "gap_days": gap,
        },
        ["date", "visit_id"],
    )


def _sources(*tables: Any) -> list[Any]:
    """A default list of source tables (typed as the Literal list of the field it fills)."""
    return list(tables)


class DuringStayParams(Params):
    inpatient_kind: str = "inpatient"
    sources: list[Literal["visits", "purchases"]] = Field(
        default_factory=lambda: _sources("visits", "purchases"), min_length=1
    )


STAY_EVIDENCE = (
    "source",
    "record_id",
    "place_id",
    "date",
    "amount",
    "stay_visit_id",
    "stay_clinic_id",
    "stay_date",
    "stay_discharge_date",
)


def stays_and_sources(ds: Dataset, p: DuringStayParams, cx: Cache) -> tuple[np.ndarray, list[str]]:
    """`activity_during_stay`'s inpatient stays (visit rows with a day strictly inside: discharged
    two days or more after admission) and the source tables whose events it checks."""
    ok = cx.eq("visits", "kind", p.inpatient_kind) & cx.notna("visits", "date") & cx.notna("visits", "discharge_date")
    srows = np.flatnonzero(ok)
    srows = srows[cx.days("visits", "discharge_date")[srows] - cx.days("visits", "date")[srows] >= 2]
    return srows, [t for t in ("visits", "purchases") if t in p.sources and (t == "visits" or ds.has(t))]


def activity_during_stay(ds: Dataset, p: DuringStayParams, cx: Cache) -> pd.DataFrame:
    """Visits or purchases strictly between an inpatient stay's admission and discharge dates."""
    srows, sources = stays_and_sources(ds, p, cx)
    if not len(srows) or not sources:
        return _empty(STAY_EVIDENCE)
    # Stays grouped by person (table order within a person), then each event of a person with a
    # stay paired with that person's stays by integer codes; strings only for the pairs inside.
    s_person = cx.codes("visits", "person_id", "person")[srows]
    order = np.argsort(s_person, kind="stable")
    srows, s_person = srows[order], s_person[order]
    has_stay = cx.flags("person", s_person)
    s_start, s_end = cx.ns("visits", "date")[srows], cx.ns("visits", "discharge_date")[srows]
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for table in sources:
        person = cx.codes(table, "person_id", "person")
        erows = np.flatnonzero(cx.notna(table, "date") & has_stay[person])
        ep = person[erows]
        lo, hi = np.searchsorted(s_person, ep, "left"), np.searchsorted(s_person, ep, "right")
        n = hi - lo
        ev_i = np.repeat(np.arange(len(erows)), n)
        st_i = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        day = cx.ns(table, "date")[erows][ev_i]
        inside = (day > s_start[st_i]) & (day < s_end[st_i])
        pairs[table] = (erows[ev_i[inside]], srows[st_i[inside]])
    return during_stay_records(ds, pairs)


def during_stay_records(ds: Dataset, pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """`activity_during_stay`'s evidence: per source table, its rows and the rows of the stays
    (visits) they fall inside, pair for pair, ordered by event row, then stay row within one
    person's stays in table order; whoever paired them (pandas or Spark)."""
    v = ds.table("visits")
    parts = []
    for table, (erows, srows) in pairs.items():
        rid, place = ("visit_id", "clinic_id") if table == "visits" else ("purchase_id", "pharmacy_id")
        e, st = ds.tables[table].iloc[erows], v.iloc[srows]
        m = pd.DataFrame(
            {
                "person_id": e["person_id"].to_numpy(),
                "source": table,
                "record_id": e[rid].to_numpy(),
                "place_id": e[place].to_numpy(),
                "date": e["date"].to_numpy(),
                "amount": e["amount"].to_numpy(),
                "stay_visit_id": st["visit_id"].to_numpy(),
                "stay_clinic_id": st["clinic_id"].to_numpy(),
                "stay_date": st["date"].to_numpy(),
                "stay_discharge_date": st["discharge_date"].to_numpy(),
            }
        )
        parts.append(m[(m["record_id"] != m["stay_visit_id"]).to_numpy()])
    m = pd.concat(parts, ignore_index=True)
    return _records(m["person_id"], {c: m[c] for c in STAY_EVIDENCE}, ["date", "source", "record_id"])


class AfterDeathParams(Params):
    sources: list[Literal["visits", "purchases", "benefits"]] = Field(
        default_factory=lambda: _sources("visits", "purchases", "benefits"), min_length=1
    )
    grace_days: int = Field(0, ge=0)  # visits/purchases this many days after death are ignored


DEATH_EVIDENCE = ("source", "record_id", "place_id", "date", "month", "amount", "death_date")


AFTER_DEATH_SOURCES = (("visits", "visit_id", "clinic_id"), ("purchases", "purchase_id", "pharmacy_id"))


def activity_after_death(ds: Dataset, p: AfterDeathParams, cx: Cache) -> pd.DataFrame:
    """Visits or purchases dated after the death date; benefits for a month after the death month."""
    death = _death_ns(cx)
    fired: dict[str, np.ndarray] = {}
    for table, _, _ in AFTER_DEATH_SOURCES:
        if table not in p.sources or not ds.has(table):
            continue
        d = death[cx.codes(table, "person_id", "person")]
        rows = np.flatnonzero(cx.notna(table, "date") & (d != NAT))
        fired[table] = rows[cx.days(table, "date")[rows] > _ns_days(d[rows]) + p.grace_days]
    if "benefits" in p.sources and ds.has("benefits"):
        d = death[cx.codes("benefits", "person_id", "person")]
        rows = np.flatnonzero(d != NAT)
        fired["benefits"] = rows[cx.months("benefits", "month")[rows] > _ns_months(d[rows])]
    return after_death_activity_records(ds, cx, fired)


def after_death_activity_records(ds: Dataset, cx: Cache, fired: dict[str, np.ndarray]) -> pd.DataFrame:
    """`activity_after_death`'s evidence for the rows (ascending positions) of each source table
    that fire, whoever decided which (the pandas detector, or the Spark engine's)."""
    death = _death_ns(cx)
    parts = []
    for table, rid, place in AFTER_DEATH_SOURCES:
        if table not in fired:
            continue
        rows = fired[table]
        d = death[cx.codes(table, "person_id", "person")[rows]]
        e = ds.tables[table].iloc[rows]
        parts.append(
            pd.DataFrame(
                {
                    "person_id": e["person_id"],
                    "source": table,
                    "record_id": e[rid],
                    "place_id": e[place],
                    "date": e["date"],
                    "month": _month_text(_months_of_dates(e["date"])),
                    "amount": e["amount"],
                    "death_date": pd.Series(_ns_to_date(d), index=e.index),
                }
            )
        )
    if "benefits" in fired:
        rows = fired["benefits"]
        d = death[cx.codes("benefits", "person_id", "person")[rows]]
        b = ds.tables["benefits"].iloc[rows].assign(death_date=_ns_to_date(d))
        parts.append(
            pd.DataFrame(
                {
                    "person_id": b["person_id"],
                    "source": "benefits",
                    "record_id": pd.NA,
                    "place_id": b["benefit_type"],
                    "date": pd.NaT,
                    "month": b["month"],
                    "amount": b["amount"],
                    "death_date": b["death_date"],
                }
            )
        )
    parts = [x for x in parts if len(x)]
    if not parts:
        return _empty(DEATH_EVIDENCE)
    m = pd.concat(parts, ignore_index=True)
    m["date"] = m["date"].astype("datetime64[ns]")
    return _records(m["person_id"], {c: m[c] for c in DEATH_EVIDENCE}, ["month", "date", "source"])


class OverSupplyParams(Params):
    max_days_supply: float = Field(7, gt=0)
    min_purchases: int = Field(1, ge=1)


OVER_SUPPLY_EVIDENCE = (
    "purchase_id",
    "pharmacy_id",
    "clinic_id",
    "date",
    "drug_code",
    "quantity",
    "days_supply",
    "amount",
)


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
    prev_supply_over: float | None = Field(None, ge=0)  # only overlaps of an earlier supply of > N days


OVERLAP_EVIDENCE = (
    "purchase_id",
    "pharmacy_id",
    "date",
    "drug_code",
    "days_supply",
    "prev_purchase_id",
    "prev_pharmacy_id",
    "prev_date",
    "prev_days_supply",
    "overlap_days",
)


def overlapping_supply(ds: Dataset, p: OverlapSupplyParams, cx: Cache) -> pd.DataFrame:
    """A purchase of a drug before the previous purchase's supply (date + days_supply) ran out.

    With `prev_supply_over` set, only overlaps of a previous purchase supplying more than that
    many days count (regular short refills bought a day early are not over-prescribing).
    """
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
    if p.prev_supply_over is not None:
        fire &= np.roll(supply[rows], 1) > p.prev_supply_over
    at = np.flatnonzero(fire)
    if p.min_overlaps > 1:
        counts = np.bincount(person[at] + 1, minlength=cx.n("person") + 1)
        at = at[counts[person[at] + 1] >= p.min_overlaps]
    return overlapping_supply_records(e.iloc[rows[at]], e.iloc[rows[at - 1]], overlap[at])


def overlapping_supply_records(cur: pd.DataFrame, prev: pd.DataFrame, overlap: np.ndarray) -> pd.DataFrame:
    """`overlapping_supply`'s evidence: each purchase (`cur`), the one of the same drug before it
    (`prev`, row for row) and the days their supplies overlap, whoever found them (pandas or Spark)."""
    return _records(
        cur["person_id"],
        {
            "purchase_id": cur["purchase_id"],
            "pharmacy_id": cur["pharmacy_id"],
            "date": cur["date"],
            "drug_code": cur["drug_code"],
            "days_supply": cur["days_supply"],
            "prev_purchase_id": prev["purchase_id"],
            "prev_pharmacy_id": prev["pharmacy_id"],
            "prev_date": prev["date"],
            "prev_days_supply": prev["days_supply"],
            "overlap_days": overlap,
        },
        ["drug_code", "date", "purchase_id"],
    )


class OverCapacityParams(Params):
    inpatient_kind: str = "inpatient"
    occupancy_ratio: float = Field(1.0, gt=0)  # fires when inpatients > beds * ratio
    min_days: int = Field(1, ge=1)


CAPACITY_EVIDENCE = ("date_from", "date_to", "days", "inpatients", "beds")


def clinic_over_capacity(ds: Dataset, p: OverCapacityParams, cx: Cache) -> pd.DataFrame:
    """Clinics with more inpatients on a day (admitted on or before it, discharged after it) than beds."""
    stays = capacity_stays(ds, p, cx)
    if stays is None:
        return _empty(CAPACITY_EVIDENCE)
    clinic, names, start, end, beds = stays
    # +1 on admission, -1 on discharge; each clinic's changes sum to 0, so one running sum over
    # rows sorted by (clinic, day) gives every clinic's daily census.
    ch = pd.DataFrame(
        {
            "c": np.concatenate([clinic, clinic]),
            "d": np.concatenate([start, end]),
            "x": np.concatenate([np.ones(len(start)), -np.ones(len(end))]),
        }
    )
    ch = ch.groupby(["c", "d"], sort=True)["x"].sum().reset_index()
    census = ch["x"].cumsum().to_numpy()
    nxt = np.roll(ch["d"].to_numpy(), -1)
    cap = beds.reindex(names[ch["c"].to_numpy()]).to_numpy()
    over = census > cap * p.occupancy_ratio + 1e-9
    days = np.where(over, nxt - ch["d"].to_numpy(), 0)
    total = pd.Series(days).groupby(ch["c"].to_numpy()).transform("sum").to_numpy()
    fire = over & (total >= p.min_days)
    f = ch[fire]
    return capacity_records(names, beds, f["c"].to_numpy(), f["d"].to_numpy(), nxt[fire], days[fire], census[fire])


def capacity_stays(
    ds: Dataset, p: OverCapacityParams, cx: Cache
) -> tuple[np.ndarray, pd.Index, np.ndarray, np.ndarray, pd.Series] | None:
    """The inpatient stays at clinics with a bed count: clinic codes (in order of appearance),
    the clinics' ids, first and past-the-last day numbers, and the beds by clinic id; None when
    there are none."""
    beds = ds.table("clinics").set_index("clinic_id")["beds"].dropna()
    v = ds.table("visits")
    v = v.iloc[np.flatnonzero(cx.eq("visits", "kind", p.inpatient_kind) & cx.notna("visits", "date"))]
    v = v[v["clinic_id"].isin(beds.index)]
    if v.empty:
        return None
    start = _days(v["date"])
    end = np.where(v["discharge_date"].notna().to_numpy(), _days(v["discharge_date"].fillna(v["date"])), start)
    end = np.maximum(end, start + 1)  # a stay occupies a bed at least on its admission day
    clinic, names = pd.factorize(v["clinic_id"])
    return clinic.astype(np.int64), pd.Index(names), start, end, beds


def capacity_records(
    names: pd.Index,
    beds: pd.Series,
    clinic: np.ndarray,
    day: np.ndarray,
    nxt: np.ndarray,
    days: np.ndarray,
    census: np.ndarray,
) -> pd.DataFrame:
    """Evidence of the over-capacity days: per clinic code and first day, the next change's day,
    the days over and the census."""
    return _records(
        names[clinic],
        {
            "date_from": _date_from_days(day),
            "date_to": _date_from_days(nxt - 1),
            "days": days,
            "inpatients": census.astype(np.int64),
            "beds": beds.reindex(names[clinic]).to_numpy(),
        },
        ["date_from"],
    )


MEDICAL: tuple[Detector, ...] = (
    Detector(
        "multi_clinic_visits", "person", MultiClinicParams, multi_clinic_visits, MULTI_CLINIC_EVIDENCE, ("visits.date",)
    ),
    Detector(
        "split_admission",
        "person",
        SplitAdmissionParams,
        split_admission,
        SPLIT_EVIDENCE,
        ("visits.date", "visits.kind", "visits.diagnosis"),
    ),
    Detector(
        "activity_during_stay",
        "person",
        DuringStayParams,
        activity_during_stay,
        STAY_EVIDENCE,
        ("visits.date", "visits.kind", "visits.discharge_date"),
    ),
    Detector(
        "activity_after_death",
        "person",
        AfterDeathParams,
        activity_after_death,
        DEATH_EVIDENCE,
        ("persons.death_date",),
        ("visits.date", "purchases.date", "benefits.month"),
    ),
    Detector(
        "over_prescribing",
        "person",
        OverSupplyParams,
        over_prescribing,
        OVER_SUPPLY_EVIDENCE,
        ("purchases.days_supply",),
    ),
    Detector(
        "overlapping_supply",
        "person",
        OverlapSupplyParams,
        overlapping_supply,
        OVERLAP_EVIDENCE,
        ("purchases.date", "purchases.drug_code", "purchases.days_supply"),
    ),
    Detector(
        "clinic_over_capacity",
        "clinic",
        OverCapacityParams,
        clinic_over_capacity,
        CAPACITY_EVIDENCE,
        ("clinics.beds", "visits.date", "visits.kind"),
    ),
)
