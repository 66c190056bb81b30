"""Same-day co-occurrences: visits per person-day, and the clinic visits and pharmacy purchases
that one person made on the same day (collusion rings repeat one clinic-pharmacy pair).

Everything is integer codes (graph/codes.py `ColumnCodes`): persons, clinics and pharmacies as
id codes, dates as day numbers, packed into int64 keys. Id codes sort like the ids, so "ties go
to the smaller id" is "ties go to the smaller code".
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.groupby import group_max, isin_sorted, pack, pair_counts, unique_counts
from graph.codes import DAY_MIN, DAY_SPAN, ColumnCodes, unique_sorted
from graph.dataset import Dataset
from graph.projection import Projection

REPEAT_PAIR_DAYS = 3  # same-day clinic+pharmacy days that make a person a repeat co-visitor


@dataclass(frozen=True)
class SameDayPairs:
    """(person, day, clinic, pharmacy) codes of same-day visit + purchase combinations: each
    distinct (person, day, clinic) visit joined with each distinct (person, day, pharmacy) purchase.
    Days are day numbers (days since 1970-01-01)."""

    person: np.ndarray
    day: np.ndarray
    clinic: np.ndarray
    pharmacy: np.ndarray

    def __len__(self) -> int:
        return len(self.person)


# Same-day pairs per projection (weak keys: they go when the projection goes).
_PAIRS: weakref.WeakKeyDictionary[Projection, SameDayPairs] = weakref.WeakKeyDictionary()


class VisitDays:
    """Distinct (person, day, clinic) of dated visits and distinct clinics per person-day."""

    def __init__(self, cols: ColumnCodes) -> None:
        p = cols.codes("visits", "person_id", "person")
        c = cols.codes("visits", "clinic_id", "clinic")
        self.nc = max(cols.n("clinic"), 1)
        self.rows = cols.notna("visits", "date") & (p >= 0) & (c >= 0)
        d = cols.days("visits", "date")
        key = pack([(p[self.rows], cols.n("person")), (d[self.rows] - DAY_MIN, DAY_SPAN), (c[self.rows], self.nc)])
        order = np.argsort(key)
        key = key[order]
        new = np.empty(len(key), dtype=bool)
        new[:1] = True
        np.not_equal(key[1:], key[:-1], out=new[1:])
        self.triples = key[new]  # sorted distinct (person, day - DAY_MIN, clinic)
        # distinct clinics per (person, day): sorted person-day keys and their counts
        self.person_day, self.clinics = unique_counts(self.triples // self.nc, presorted=True)
        # person-day group of each dated visit row (rows in `rows` order)
        pd_key = key // self.nc
        new_pd = np.empty(len(key), dtype=bool)
        new_pd[:1] = True
        np.not_equal(pd_key[1:], pd_key[:-1], out=new_pd[1:])
        self.row_group = np.empty(len(key), dtype=np.int64)
        self.row_group[order] = np.cumsum(new_pd) - 1


def visit_days(cols: ColumnCodes) -> VisitDays:
    """The VisitDays of cols' dataset, computed once per ColumnCodes."""
    return cols.memo("visit_days", lambda: VisitDays(cols))


def _same_day_pairs(cols: ColumnCodes) -> SameDayPairs:
    """Distinct (person, day, clinic) visits joined with distinct (person, day, pharmacy)
    purchases on (person, day), all as integer codes."""
    empty = np.zeros(0, dtype=np.int64)
    if not (cols.dataset.has("visits") and cols.dataset.has("purchases")):
        return SameDayPairs(empty, empty, empty, empty)
    vd = visit_days(cols)
    pp = cols.codes("purchases", "person_id", "person")
    ph = cols.codes("purchases", "pharmacy_id", "pharmacy")
    nh = max(cols.n("pharmacy"), 1)
    rows = cols.notna("purchases", "date") & (pp >= 0) & (ph >= 0)
    pk = unique_sorted(
        pack([(pp[rows], cols.n("person")), (cols.days("purchases", "date")[rows] - DAY_MIN, DAY_SPAN), (ph[rows], nh)])
    )
    p_pd = pk // nh
    v_pd = vd.triples // vd.nc
    lo = np.searchsorted(p_pd, v_pd, "left")
    hi = np.searchsorted(p_pd, v_pd, "right")
    n = hi - lo
    vi = np.repeat(np.arange(len(v_pd)), n)
    start = np.repeat(np.cumsum(n) - n, n)
    pi = np.repeat(lo, n) + (np.arange(len(vi)) - start)
    person, day = np.divmod(v_pd[vi], DAY_SPAN)
    return SameDayPairs(person, day + DAY_MIN, vd.triples[vi] % vd.nc, pk[pi] % nh)


def same_day_pairs(dataset: Dataset, proj: Projection, cols: ColumnCodes | None = None) -> SameDayPairs:
    """Same-day (person, day, clinic, pharmacy) codes of the projection, computed once and kept
    for as long as the projection lives (features and reasons both use them)."""
    pairs = _PAIRS.get(proj)
    if pairs is None:
        pairs = _PAIRS[proj] = _same_day_pairs(cols or proj.column_codes.sharing_ids())
    return pairs


def same_day_partners(dataset: Dataset, proj: Projection, entity_type: str) -> pd.DataFrame:
    """Who each entity meets on the same day, for reasons: a clinic's top pharmacy and a
    pharmacy's top clinic (most distinct persons; ties to the smaller id), with those persons;
    a person's most repeated (clinic, pharmacy) pair and its days (ties to the smaller ids).
    Rows only for entities with a same-day co-occurrence, indexed by id."""
    cols = proj.column_codes.sharing_ids()
    pairs = same_day_pairs(dataset, proj, cols)
    ids = proj.ids[entity_type]
    if entity_type in ("clinic", "pharmacy"):
        partner = "pharmacy" if entity_type == "clinic" else "clinic"
        top, persons = top_partner(pairs, entity_type, partner, cols)
        has = np.flatnonzero(top >= 0)
        return pd.DataFrame({"partner": cols.ids(partner, top[has]), "persons": persons[has]}, index=ids[has])
    if entity_type != "person":
        raise ValueError(f"same-day partners are defined for persons, clinics and pharmacies, not {entity_type}")
    n, nc, nh = cols.n("person"), max(cols.n("clinic"), 1), max(cols.n("pharmacy"), 1)
    # pairs rows are distinct (person, day, clinic, pharmacy): rows per triple = distinct days.
    # Codes sort like ids, so among equal days the smallest key is the smallest (clinic, pharmacy).
    keys, days = unique_counts(pack([(pairs.person, n), (pairs.clinic, nc), (pairs.pharmacy, nh)]))
    person = keys // (nc * nh)
    order = np.lexsort((keys, -days, person))
    first = order[np.concatenate(([True], person[order][1:] != person[order][:-1]))] if len(order) else order
    clinic, pharmacy = np.divmod(keys[first] % (nc * nh), nh)
    return pd.DataFrame(
        {
            "clinic": cols.ids("clinic", clinic),
            "pharmacy": cols.ids("pharmacy", pharmacy),
            "days": days[first].astype(np.float64),
        },
        index=ids[person[first]],
    )


def top_partner(pairs: SameDayPairs, kt: str, pt: str, cols: ColumnCodes) -> tuple[np.ndarray, np.ndarray]:
    """Per entity of type `kt`: its top same-day partner of type `pt` (code, -1 if none) and
    the number of distinct persons who met it there; ties go to the partner with the smallest id."""
    nk, npn, nper = cols.n(kt), max(cols.n(pt), 1), cols.n("person")
    k, q = getattr(pairs, kt), getattr(pairs, pt)
    triples = unique_sorted(pack([(k, nk), (q, npn), (pairs.person, nper)]))
    kq, persons = unique_counts(triples // nper, presorted=True)
    gk, gq = np.divmod(kq, npn)
    best = group_max(gk, nk, persons)
    tied = persons == best[gk]
    top = np.full(nk, np.iinfo(np.int64).max)
    np.minimum.at(top, gk[tied], gq[tied])
    # entities without a partner get -1 (the partner type may have no entities at all)
    top[best <= 0] = -1
    return top, best.astype(np.float64)


def top_partner_share(pairs: SameDayPairs, kt: str, pt: str, cols: ColumnCodes) -> np.ndarray:
    """Per entity of type `kt`: share of its same-day co-occurrences that go to its top partner."""
    nk = cols.n(kt)
    gk, _, counts = pair_counts(getattr(pairs, kt), nk, getattr(pairs, pt), cols.n(pt))
    total = np.bincount(gk, weights=counts, minlength=nk)
    top = group_max(gk, nk, counts)
    share: np.ndarray = np.divide(top, total, out=np.zeros(nk), where=total > 0)
    return share


def repeat_pair_persons(pairs: SameDayPairs, kt: str, top: np.ndarray, cols: ColumnCodes) -> np.ndarray:
    """Persons who met the entity and its top partner on the same day on >= REPEAT_PAIR_DAYS days."""
    pt = "pharmacy" if kt == "clinic" else "clinic"
    k, q = getattr(pairs, kt), getattr(pairs, pt)
    sel = q == top[k]
    nk = cols.n(kt)
    # rows are distinct (person, day, clinic, pharmacy): with the partner fixed, rows per
    # (entity, person) are distinct days
    gk, _, days = pair_counts(k[sel], nk, pairs.person[sel], cols.n("person"))
    return np.bincount(gk[days >= REPEAT_PAIR_DAYS], minlength=nk).astype(np.float64)


def same_day_visit_purchase_days(cols: ColumnCodes) -> np.ndarray:
    """Per person: days on which they both visited a clinic and bought at a pharmacy."""
    n = cols.n("person")
    vp = cols.codes("visits", "person_id", "person")
    pp = cols.codes("purchases", "person_id", "person")
    vr = cols.notna("visits", "date") & (vp >= 0)
    pr = cols.notna("purchases", "date") & (pp >= 0)
    v = unique_sorted(pack([(vp[vr], n), (cols.days("visits", "date")[vr] - DAY_MIN, DAY_SPAN)]))
    p = unique_sorted(pack([(pp[pr], n), (cols.days("purchases", "date")[pr] - DAY_MIN, DAY_SPAN)]))
    both = v[isin_sorted(v, p)]
    return np.bincount(both // DAY_SPAN, minlength=n).astype(np.float64)


def top_pair_days(pairs: SameDayPairs, cols: ColumnCodes) -> np.ndarray:
    """Per person: days on which they visited one clinic and bought at one pharmacy the same day,
    for their most repeated (clinic, pharmacy) pair (collusion rings repeat one pair)."""
    n, nc, nh = cols.n("person"), max(cols.n("clinic"), 1), max(cols.n("pharmacy"), 1)
    # pairs rows are distinct (person, day, clinic, pharmacy): rows per triple = distinct days
    key, days = unique_counts(pack([(pairs.person, n), (pairs.clinic, nc), (pairs.pharmacy, nh)]))
    return group_max(key // (nc * nh), n, days).astype(np.float64)
