"""Employer and agency detectors: arrears, declared base, headcount inflation, shell routing."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from graph.codes import unique_sorted
from graph.dataset import Dataset
from rules.cache import NAT, Cache
from rules.detectors.base import (
    Detector,
    Params,
    _empty,
    _in_sorted,
    _join_keys,
    _month_text,
    _pair_key,
    _records,
)


class ArrearsParams(Params):
    min_months: int = Field(3, ge=1)
    min_shortfall: float = Field(0, ge=0)  # a month is in arrears when due - paid > min_shortfall


ARREARS_EVIDENCE = ("month", "due", "paid", "shortfall", "persons")


def employer_arrears(ds: Dataset, p: ArrearsParams, cx: Cache) -> pd.DataFrame:
    """Employers with >= min_months months whose paid contributions fall short of what was due."""
    rows = np.flatnonzero(cx.notna("contributions", "due"))
    if not len(rows):
        return _empty(ARREARS_EVIDENCE)
    return arrears_records(ds, p, cx, rows)


def arrears_records(ds: Dataset, p: ArrearsParams, cx: Cache, rows: np.ndarray) -> pd.DataFrame:
    """The months in arrears among contribution `rows` (ascending, `due` present), with every row
    of each (employer, month) they hold: the whole decision, on however few rows."""
    c = ds.table("contributions")
    emp = cx.codes("contributions", "employer_id", "employer")[rows]
    month = cx.months("contributions", "month")[rows]
    key = _pair_key(emp, month)
    g = pd.DataFrame({"k": key, "due": c["due"].to_numpy()[rows], "paid": c["paid"].fillna(0).to_numpy()[rows]})
    agg = g.groupby("k", sort=True).agg(due=("due", "sum"), paid=("paid", "sum"), persons=("due", "size"))
    first = np.unique(key, return_index=True)[1]  # a row of each (employer, month), in key order
    agg = agg.reset_index(drop=True).assign(e=emp[first], m=month[first])
    agg["shortfall"] = agg["due"] - agg["paid"]
    agg = agg[agg["shortfall"] > p.min_shortfall + 1e-9]
    n = agg.groupby("e")["m"].transform("size")
    agg = agg[n >= p.min_months]
    return _records(
        cx.ids("employer", agg["e"].to_numpy()),
        {
            "month": _month_text(agg["m"].to_numpy()),
            "due": agg["due"],
            "paid": agg["paid"],
            "shortfall": agg["shortfall"],
            "persons": agg["persons"].astype(np.int64),
        },
        ["month"],
    )


class BaseBelowWageParams(Params):
    ratio: float = Field(0.8, gt=0, le=1)  # fires when base < ratio * monthly_wage
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
    wkey, ckey = _join_keys(
        cx.codes("employment", "employer_id", "employer")[erows],
        cx.codes("employment", "person_id", "person")[erows],
        cx.codes("contributions", "employer_id", "employer")[crows],
        cx.codes("contributions", "person_id", "person")[crows],
    )
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
    return base_below_wage_records(ds, p, crows[low], wrow[pos[low]])


def base_below_wage_records(ds: Dataset, p: BaseBelowWageParams, crows: np.ndarray, wrows: np.ndarray) -> pd.DataFrame:
    """`base_below_wage`'s evidence: the contribution rows (ascending) whose base is below the
    ratio of the wage on their employment row (`wrows`, row for row), whoever matched them (pandas
    or Spark), kept for employers with at least `min_persons` such persons."""
    f, fw = ds.table("contributions").iloc[crows], ds.table("employment")["monthly_wage"].to_numpy(np.float64)[wrows]
    persons = f.groupby("employer_id")["person_id"].transform("nunique")
    keep = (persons >= p.min_persons).to_numpy()
    f, fw = f[keep], fw[keep]
    return _records(
        f["employer_id"],
        {
            "person_id": f["person_id"],
            "month": f["month"],
            "base": f["base"],
            "monthly_wage": fw,
            "base_to_wage": np.round(f["base"].to_numpy() / fw, 4),
        },
        ["month", "person_id"],
    )


class HeadcountParams(Params):
    ratio: float = Field(3.0, ge=1)  # insured > ratio * real headcount
    min_insured: int = Field(10, ge=1)
    min_excess: int = Field(0, ge=0)  # insured - real headcount >= min_excess
    headcount_column: str | None = None  # an extra employers column with the real staff count


HEADCOUNT_EVIDENCE = ("peak_month", "insured", "headcount", "headcount_source", "excess")


def _employer_persons(ds: Dataset, cx: Cache) -> pd.Series:
    """Distinct persons on employment records per employer id (employers with a record only)."""

    def build() -> pd.Series:
        e = ds.table("employment")
        emp = cx.codes("employment", "employer_id", "employer")
        person = cx.codes("employment", "person_id", "person")
        ok = emp >= 0
        present = unique_sorted(emp[ok])
        has_person = ok & (person >= 0)
        _, first = np.unique(_pair_key(emp[has_person], person[has_person]), return_index=True)
        counts = np.bincount(emp[has_person][first], minlength=cx.n("employer"))[present]
        return pd.Series(
            counts.astype(np.int64),
            index=pd.Index(cx.ids("employer", present), name="employer_id", dtype=e["employer_id"].dtype),
            name="person_id",
        )

    return cx.memo("employer_persons", build)


def headcount_inflation(ds: Dataset, p: HeadcountParams, cx: Cache) -> pd.DataFrame:
    """Employers insuring far more persons in a month than they really employ.

    Insured = the most persons with a contribution row in any one month. Real headcount = the
    employers' `headcount_column` when given and filled in, else distinct persons on employment
    records at that employer.
    """
    if ds.table("contributions").empty:
        return _empty(HEADCOUNT_EVIDENCE)
    return headcount_records(ds, p, cx, cx.memo("peak_insured", lambda: _peak_insured(ds, cx)))


def headcount_records(ds: Dataset, p: HeadcountParams, cx: Cache, peak: pd.DataFrame) -> pd.DataFrame:
    """`headcount_inflation`'s evidence from each employer's peak insured month (`peak`, as
    `_peak_insured` gives it), whoever counted it (pandas or Spark)."""
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
    return _records(
        f.index.to_numpy(),
        {
            "peak_month": _month_text(f["m"].to_numpy()),
            "insured": insured[fire],
            "headcount": head[fire],
            "headcount_source": source[fire],
            "excess": excess[fire],
        },
        [],
    )


def _peak_insured(ds: Dataset, cx: Cache) -> pd.DataFrame:
    """Per employer id (sorted): the most contribution rows in one month ("insured") and the first such month."""
    emp = cx.codes("contributions", "employer_id", "employer")
    month = cx.months("contributions", "month")
    ok = emp >= 0
    emp, month = emp[ok], month[ok]
    _, first, size = np.unique(_pair_key(emp, month), return_index=True, return_counts=True)
    e, m = emp[first], month[first]
    order = np.lexsort((m, -size, e))  # per employer: most rows first, then earliest month
    e, m, size = e[order], m[order], size[order]
    top = np.ones(len(e), dtype=bool)
    top[1:] = e[1:] != e[:-1]
    e, m, size = e[top], m[top], size[top]
    index = pd.Index(cx.ids("employer", e), name="employer_id", dtype=ds.table("contributions")["employer_id"].dtype)
    return pd.DataFrame({"m": m, "insured": size.astype(np.int64)}, index=index)


class AgencyRoutingParams(Params):
    min_persons: int = Field(20, ge=1)
    min_employers: int = Field(5, ge=1)
    max_employer_size: int = Field(10, ge=1)  # "small": at most this many persons on employment records


AGENCY_EVIDENCE = ("employer_id", "persons_placed", "employer_size")


def agency_shell_routing(ds: Dataset, p: AgencyRoutingParams, cx: Cache) -> pd.DataFrame:
    """Agencies placing >= min_persons persons into >= min_employers small employers.

    Placements come from employment.agency_id, and from agency_links (relation 'placed', entity
    type person) joined to the person's employers.
    """
    return agency_routing_records(ds, p, cx)


def agency_routing_records(
    ds: Dataset, p: AgencyRoutingParams, cx: Cache, agencies: np.ndarray | None = None
) -> pd.DataFrame:
    """The decision and its evidence for every agency, or for `agencies` (ids) only: each agency's
    placements decide alone, so the others' may be left out."""
    e = ds.table("employment")
    own = e["agency_id"].notna() if agencies is None else e["agency_id"].isin(agencies)
    parts = [e.loc[own, ["agency_id", "person_id", "employer_id"]]]
    links = ds.table("agency_links")
    links = links[(links["entity_type"] == "person") & (links["relation"].fillna("placed") == "placed")]
    if agencies is not None:
        links = links[links["agency_id"].isin(agencies)]
    if len(links):
        parts.append(
            links[["agency_id", "entity_id"]]
            .rename(columns={"entity_id": "person_id"})
            .merge(e[["person_id", "employer_id"]], on="person_id", how="inner")
        )
    placed = pd.concat(parts, ignore_index=True).drop_duplicates()
    size = _employer_persons(ds, cx)
    small = size[size <= p.max_employer_size]
    placed = placed[placed["employer_id"].isin(small.index)]
    persons = placed.groupby("agency_id")["person_id"].transform("nunique")
    employers = placed.groupby("agency_id")["employer_id"].transform("nunique")
    placed = placed[(persons >= p.min_persons) & (employers >= p.min_employers)]
    per = placed.groupby(["agency_id", "employer_id"])["person_id"].nunique().rename("persons_placed").reset_index()
    return _records(
        per["agency_id"],
        {
            "employer_id": per["employer_id"],
            "persons_placed": per["persons_placed"].astype(np.int64),
            "employer_size": small.reindex(per["employer_id"]).to_numpy().astype(np.int64),
        },
        ["employer_id"],
    )


EMPLOYERS: tuple[Detector, ...] = (
    Detector("employer_arrears", "employer", ArrearsParams, employer_arrears, ARREARS_EVIDENCE, ("contributions.due",)),
    Detector(
        "base_below_wage",
        "employer",
        BaseBelowWageParams,
        base_below_wage,
        BASE_EVIDENCE,
        ("contributions.base", "employment.monthly_wage"),
    ),
    Detector(
        "headcount_inflation",
        "employer",
        HeadcountParams,
        headcount_inflation,
        HEADCOUNT_EVIDENCE,
        ("contributions.month",),
    ),
    Detector(
        "agency_shell_routing",
        "agency",
        AgencyRoutingParams,
        agency_shell_routing,
        AGENCY_EVIDENCE,
        ("employment.employer_id",),
        ("employment.agency_id", "agency_links.agency_id"),
    ),
)
