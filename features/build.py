"""Per-entity feature tables, built with vectorised group-bys and sparse products.

`build_features` returns one DataFrame per entity type, indexed by entity id in sorted order
(the projection's order), all columns numeric (categoricals as pandas `category`). Personal
data columns (graph/contract.py `personal`) never become features.

Group-bys never touch the id strings: every id column is turned once into integer codes (the
row's position in the projection's sorted ids, `Projection.codes`), dates into day numbers and
months into month numbers. Counts and sums of 0/1 flags are np.bincount; sums, means, maxima
and medians of real values go through pandas on categorical codes, which runs the same
kernels as a group-by on the ids (same values to the bit); distinct counts are distinct packed
int64 keys (code * size + other code). Codes of entities missing from their entity table are
-1 and ignored (a validated dataset has none).
"""
from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN, TABLES, Kind
from graph.dataset import Dataset
from graph.projection import Projection

MAX_CATEGORIES = 50  # categorical attributes with more levels are dropped (ids in disguise)

# Feature names that later stages add to every entity type's model matrix (graph features in
# features/graph_features.py; rule, ring and label features in scoring/score.py), and the
# prefixes of their families. An input column of such a name is renamed (INPUT_PREFIX), never
# overwritten by, nor overwriting, the derived feature; nor read as one in reasons.
LATER_FEATURE_NAMES = frozenset({
    "entity_id", "pagerank", "degree", "two_hop_paths", "rule_hits", "rule_severity_max",
    "rule_severity_sum", "rings", "ring_size_max", "labelled_neighbours", "labelled_neighbour_share",
    "labelled_2hop_share"})
LATER_FEATURE_PREFIXES = ("nb_", "rule_", "ring_", "labelled_", "confirmed_fraud_sharing_")
INPUT_PREFIX = "input_"


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


# ---------------------------------------------------------------------------------------------
# Integer building blocks

DAY_OFFSET = 2**17      # day numbers (days since 1970, +-106752 for datetime64[ns]) made >= 0
DAY_SPAN = 2**18
MONTH_OFFSET = 2**13    # months since 1970 of datetime64[ns] dates made >= 0
MONTH_SPAN = 2**14
TEXT_MONTH_SPAN = 12 * 10000   # 'YYYY-MM' as year * 12 + month - 1


def _pack(parts: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One int64 key per row from several non-negative int columns, each below its size;
    keys order like the columns' tuples and decode with divmod."""
    total = 1
    for _, size in parts:
        total *= max(int(size), 1)
    if total >= 2**63:
        raise OverflowError("packed key does not fit in int64")
    key = np.zeros(len(parts[0][0]), dtype=np.int64)
    for values, size in parts:
        key *= max(int(size), 1)
        key += values
    return key


def _count(codes: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows per entity (float64, 0 for entities without rows)."""
    c = codes if mask is None else codes[mask]
    return np.bincount(c[c >= 0], minlength=n).astype(np.float64)


def _flag_sum(codes: np.ndarray, n: int, flags: np.ndarray) -> np.ndarray:
    """Sum of a 0/1 flag per entity (exact: integers)."""
    return _count(codes, n, np.asarray(flags, dtype=bool))


def _agg(codes: np.ndarray, n: int, values: np.ndarray, how: str, mask: np.ndarray | None = None) -> np.ndarray:
    """pandas group-by aggregate of real `values` per entity (NaN skipped), 0 for entities
    without a value. Categorical keys: the same kernels, row order and results as grouping by
    the id strings, without hashing them."""
    keep = codes >= 0 if mask is None else mask & (codes >= 0)
    c, v = codes[keep], values[keep]
    if len(c) == 0:
        return np.zeros(n)
    keys = pd.Categorical.from_codes(c, categories=pd.RangeIndex(n))
    out = pd.Series(v, copy=False).groupby(keys, observed=False).agg(how).to_numpy(dtype=np.float64)
    return np.where(np.isnan(out), 0.0, out)


def _int_or_float(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """A per-entity integer result as the old `groupby(...).reindex(ids).fillna(0)` gave it:
    int64 when every entity had a group, float64 (0 for the others) otherwise."""
    if present.all():
        return values.astype(np.int64)
    return np.where(present, values, 0).astype(np.float64)


def _per_entity(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """`values` of distinct entity codes `groups`, spread over entities 0..n-1 (see _int_or_float)."""
    out = np.zeros(n, dtype=np.int64)
    out[groups] = values
    present = np.zeros(n, dtype=bool)
    present[groups] = True
    return _int_or_float(out, present)


def _group_max(groups: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    np.maximum.at(out, groups, values)
    return out


def _unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a plain sort: faster than np.unique / pd.unique on wide int64 keys)."""
    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _unique_counts(a: np.ndarray, presorted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and how often each occurs."""
    s = a if presorted else np.sort(a)
    if len(s) == 0:
        return s, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    return s[starts], np.diff(np.append(starts, len(s)))


def _isin(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """values in sorted_set (sorted, distinct), elementwise."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[pos] == values


def _distinct_per_group(key: np.ndarray, per: int) -> tuple[np.ndarray, np.ndarray]:
    """(group, distinct count) over unique packed keys: group = key // per."""
    return _unique_counts(_unique(key) // per, presorted=True)


@dataclass(frozen=True)
class SameDayPairs:
    """(person, day, clinic, pharmacy) codes of same-day visit + purchase combinations: each
    distinct (person, day, clinic) visit joined with each distinct (person, day, pharmacy) purchase."""

    person: np.ndarray
    day: np.ndarray
    clinic: np.ndarray
    pharmacy: np.ndarray

    def __len__(self) -> int:
        return len(self.person)


# Same-day pairs per projection (weak keys: they go when the projection goes).
_PAIRS: "weakref.WeakKeyDictionary[Projection, SameDayPairs]" = weakref.WeakKeyDictionary()


class _Columns:
    """Integer forms of the dataset's columns, each computed once per build_features call."""

    def __init__(self, dataset: Dataset, proj: Projection) -> None:
        self.ds = dataset
        self.proj = proj
        self._memo: dict[tuple, np.ndarray] = {}

    def _get(self, key: tuple, fn) -> np.ndarray:
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def n(self, entity_type: str) -> int:
        return len(self.proj.ids[entity_type])

    def codes(self, table: str, column: str, entity_type: str) -> np.ndarray:
        return self.proj.codes(table, column, entity_type)

    def floats(self, table: str, column: str) -> np.ndarray:
        return self._get(("f", table, column),
                         lambda: self.ds.tables[table][column].to_numpy(dtype=np.float64, na_value=np.nan))

    def notna(self, table: str, column: str) -> np.ndarray:
        return self._get(("na", table, column), lambda: self.ds.tables[table][column].notna().to_numpy())

    def eq(self, table: str, column: str, value: str) -> np.ndarray:
        return self._get(("eq", table, column, value), lambda: (self.ds.tables[table][column] == value)
                         .to_numpy(dtype=bool, na_value=False))

    def ns(self, table: str, column: str) -> np.ndarray:
        """A date column as int64 nanoseconds (use with notna)."""
        return self._get(("ns", table, column), lambda: self.ds.table(table)[column]
                         .to_numpy(dtype="datetime64[ns]").view(np.int64))

    def days(self, table: str, column: str) -> np.ndarray:
        """Day numbers shifted to >= 0 (below DAY_SPAN; meaningless where the date is missing)."""
        def fn() -> np.ndarray:
            d = self.ds.tables[table][column].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
            return np.where(np.isnat(d), 0, d.view(np.int64) + DAY_OFFSET)
        return self._get(("d", table, column), fn)

    def date_months(self, table: str, column: str) -> np.ndarray:
        """Month numbers of a date column shifted to >= 0 (below MONTH_SPAN)."""
        def fn() -> np.ndarray:
            m = self.ds.table(table)[column].to_numpy(dtype="datetime64[ns]").astype("datetime64[M]")
            return np.where(np.isnat(m), 0, m.view(np.int64) + MONTH_OFFSET)
        return self._get(("dm", table, column), fn)

    def text_months(self, table: str, column: str) -> np.ndarray:
        """'YYYY-MM' as year * 12 + month - 1 (below TEXT_MONTH_SPAN); -1 where missing."""
        def fn() -> np.ndarray:
            codes, uniques = pd.factorize(self.ds.tables[table][column])
            u = np.array([int(m[:4]) * 12 + int(m[5:7]) - 1 for m in uniques], dtype=np.int64)
            return np.where(codes >= 0, u[np.maximum(codes, 0)] if len(u) else -1, -1)
        return self._get(("tm", table, column), fn)

    def factor(self, table: str, column: str) -> tuple[np.ndarray, pd.Index]:
        key = ("fa", table, column)
        if key not in self._memo:
            codes, uniques = pd.factorize(self.ds.tables[table][column])
            self._memo[key] = (codes, pd.Index(uniques))
        return self._memo[key]

    @cached_property
    def death_ns(self) -> tuple[np.ndarray, np.ndarray]:
        """Per person (projection order): death date in ns, and whether there is one."""
        d = self.ds.table("persons")["death_date"]
        return d.to_numpy(dtype="datetime64[ns]").view(np.int64), d.notna().to_numpy()

    def after_death(self, table: str, date_col: str) -> np.ndarray:
        """Rows dated after their person's death."""
        p = self.codes(table, "person_id", "person")
        death, dead = self.death_ns
        ok = self.notna(table, date_col) & (p >= 0)
        ok[ok] = dead[p[ok]]
        out = np.zeros(len(p), dtype=bool)
        out[ok] = self.ns(table, date_col)[ok] > death[p[ok]]
        return out

    @cached_property
    def visit_days(self) -> "_VisitDays":
        return _VisitDays(self)

    @cached_property
    def pairs(self) -> SameDayPairs:
        return _same_day_pairs(self)

    def rank(self, entity_type: str) -> np.ndarray:
        """Position of each id in string order (identity for a sorted entity table)."""
        return self._get(("rank", entity_type), lambda: np.argsort(
            np.argsort(self.proj.ids[entity_type].to_numpy(dtype=object), kind="stable"), kind="stable"))


class _VisitDays:
    """Distinct (person, day, clinic) of dated visits and distinct clinics per person-day."""

    def __init__(self, cols: _Columns) -> None:
        p = cols.codes("visits", "person_id", "person")
        c = cols.codes("visits", "clinic_id", "clinic")
        self.nc = max(cols.n("clinic"), 1)
        self.rows = cols.notna("visits", "date") & (p >= 0) & (c >= 0)
        d = cols.days("visits", "date")
        key = _pack([(p[self.rows], cols.n("person")), (d[self.rows], DAY_SPAN), (c[self.rows], self.nc)])
        order = np.argsort(key)
        key = key[order]
        new = np.empty(len(key), dtype=bool)
        new[:1] = True
        np.not_equal(key[1:], key[:-1], out=new[1:])
        self.triples = key[new]          # sorted distinct (person, day, clinic)
        # distinct clinics per (person, day): sorted person-day keys and their counts
        self.person_day, self.clinics = _unique_counts(self.triples // self.nc, presorted=True)
        # person-day group of each dated visit row (rows in `rows` order)
        pd_key = key // self.nc
        new_pd = np.empty(len(key), dtype=bool)
        new_pd[:1] = True
        np.not_equal(pd_key[1:], pd_key[:-1], out=new_pd[1:])
        self.row_group = np.empty(len(key), dtype=np.int64)
        self.row_group[order] = np.cumsum(new_pd) - 1


def _same_day_pairs(cols: _Columns) -> SameDayPairs:
    """Distinct (person, day, clinic) visits joined with distinct (person, day, pharmacy)
    purchases on (person, day), all as integer codes."""
    empty = np.zeros(0, dtype=np.int64)
    if not (cols.ds.has("visits") and cols.ds.has("purchases")):
        return SameDayPairs(empty, empty, empty, empty)
    vd = cols.visit_days
    pp = cols.codes("purchases", "person_id", "person")
    ph = cols.codes("purchases", "pharmacy_id", "pharmacy")
    nh = max(cols.n("pharmacy"), 1)
    rows = cols.notna("purchases", "date") & (pp >= 0) & (ph >= 0)
    pk = _unique(_pack([(pp[rows], cols.n("person")), (cols.days("purchases", "date")[rows], DAY_SPAN),
                          (ph[rows], nh)]))
    p_pd = pk // nh
    v_pd = vd.triples // vd.nc
    lo = np.searchsorted(p_pd, v_pd, "left")
    hi = np.searchsorted(p_pd, v_pd, "right")
    n = hi - lo
    vi = np.repeat(np.arange(len(v_pd)), n)
    start = np.repeat(np.cumsum(n) - n, n)
    pi = np.repeat(lo, n) + (np.arange(len(vi)) - start)
    person, day = np.divmod(v_pd[vi], DAY_SPAN)
    return SameDayPairs(person, day, vd.triples[vi] % vd.nc, pk[pi] % nh)


def _pair_counts(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (a, b) with their row counts: (a, b, count)."""
    keys, counts = _unique_counts(_pack([(a, na), (b, max(nb, 1))]))
    ga, gb = np.divmod(keys, max(nb, 1))
    return ga, gb, counts


def _top_partner(pairs: SameDayPairs, key: str, partner: str, cols: _Columns) -> tuple[np.ndarray, np.ndarray]:
    """Per `key` entity: its top same-day partner (code, -1 if none) and the number of distinct
    persons who met it there; ties go to the partner with the smallest id."""
    kt, pt = key.removesuffix("_id"), partner.removesuffix("_id")
    nk, npn, nper = cols.n(kt), max(cols.n(pt), 1), cols.n("person")
    k, q = getattr(pairs, kt), getattr(pairs, pt)
    triples = _unique(_pack([(k, nk), (q, npn), (pairs.person, nper)]))
    kq, persons = _unique_counts(triples // nper, presorted=True)
    gk, gq = np.divmod(kq, npn)
    best = _group_max(gk, nk, persons)
    tied = persons == best[gk]
    rank = cols.rank(pt)
    top_rank = np.full(nk, np.iinfo(np.int64).max)
    np.minimum.at(top_rank, gk[tied], rank[gq[tied]])
    order = np.argsort(rank)   # rank -> code
    # entities without a partner keep -1 (the partner type may have no entities at all)
    top = np.full(nk, -1, dtype=np.int64)
    has = best > 0
    top[has] = order[top_rank[has]]
    return top, best.astype(np.float64)


def _top_partner_share(pairs: SameDayPairs, key: str, partner: str, cols: _Columns) -> np.ndarray:
    """Per `key` entity: share of its same-day co-occurrences that go to its top partner."""
    kt, pt = key.removesuffix("_id"), partner.removesuffix("_id")
    nk = cols.n(kt)
    gk, _, counts = _pair_counts(getattr(pairs, kt), nk, getattr(pairs, pt), cols.n(pt))
    total = np.bincount(gk, weights=counts, minlength=nk)
    top = _group_max(gk, nk, counts)
    return np.divide(top, total, out=np.zeros(nk), where=total > 0)


def _repeat_pair_persons(pairs: SameDayPairs, key: str, top: np.ndarray, cols: _Columns) -> np.ndarray:
    """Persons who met the entity and its top partner on the same day on >= REPEAT_PAIR_DAYS days."""
    kt = key.removesuffix("_id")
    pt = "pharmacy" if kt == "clinic" else "clinic"
    k, q = getattr(pairs, kt), getattr(pairs, pt)
    sel = q == top[k]
    nk = cols.n(kt)
    # rows are distinct (person, day, clinic, pharmacy): with the partner fixed, rows per
    # (entity, person) are distinct days
    gk, _, days = _pair_counts(k[sel], nk, pairs.person[sel], cols.n("person"))
    return np.bincount(gk[days >= REPEAT_PAIR_DAYS], minlength=nk).astype(np.float64)


def input_feature_names(columns: list[str], derived: Iterable[str]) -> dict[str, str]:
    """Feature name of each extra input column: its own name, unless a derived feature (`derived`,
    LATER_FEATURE_NAMES) has it or it starts like a derived family (LATER_FEATURE_PREFIXES);
    then INPUT_PREFIX in front, as often as it takes to be free."""
    derived = set(derived)
    taken = derived | LATER_FEATURE_NAMES | set(columns)
    out = {}
    for col in columns:
        name = col
        if name in LATER_FEATURE_NAMES or name in derived or name.startswith(LATER_FEATURE_PREFIXES):
            name = INPUT_PREFIX + name
            while name in taken:
                name = INPUT_PREFIX + name
            taken.add(name)
        out[col] = name
    return out


def attributes(dataset: Dataset, entity_type: str, ref: pd.Timestamp | None,
               index: pd.Index | None = None, derived: Iterable[str] = ()) -> pd.DataFrame:
    """The entity table's own columns as features (personal data and ids excluded).
    `index`, when given, must be the table's id column as an Index (e.g. the projection's ids).
    Extra (non-contract) columns keep their names unless a derived feature has the name: the
    type's other features (`derived`) or those of later stages (see input_feature_names)."""
    table = TABLES[ENTITY_TABLE[entity_type]]
    df = dataset.table(table.name)
    idcol = ID_COLUMN[entity_type]
    if index is None:
        index = pd.Index(df[idcol].to_numpy(dtype=object), name="entity_id")
    out = pd.DataFrame(index=index.rename("entity_id"))
    own = {f"{c.name}_years_ago" for c in table.columns if c.kind == Kind.DATE}
    own |= {"is_dead"} if entity_type == "person" else set()
    extras = [str(c) for c in df.columns if table.column(c) is None]
    names = input_feature_names(extras, set(derived) | own | set(table.column_names))
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
        name = col if spec is not None else names[col]
        if pd.api.types.is_numeric_dtype(s):
            out[name] = s.astype(np.float64)
        elif s.nunique() <= MAX_CATEGORIES and s.notna().any():
            out[name] = s.astype("category")
    if entity_type == "person" and "death_date" in df.columns:
        out["is_dead"] = df["death_date"].notna().to_numpy(dtype=np.float64)
        out = out.drop(columns=["death_date_years_ago"], errors="ignore")
    return out


def _with_attributes(dataset: Dataset, entity_type: str, ref: pd.Timestamp | None,
                     derived: pd.DataFrame) -> pd.DataFrame:
    """The entity table's attributes (first), then the derived features."""
    attrs = attributes(dataset, entity_type, ref, derived.index, derived=derived.columns)
    return pd.concat([attrs, derived], axis=1)


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
                    pairs: SameDayPairs | None = None, cols: _Columns | None = None) -> pd.DataFrame:
    cols = cols or _Columns(dataset, proj)
    idx = proj.ids["person"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))   # derived features; attributes join at the end
    if dataset.has("visits"):
        vp = cols.codes("visits", "person_id", "person")
        f["visits"] = _count(vp, n)
        f["visit_amount"] = _agg(vp, n, cols.floats("visits", "amount"), "sum")
        f["visit_claimed"] = _agg(vp, n, cols.floats("visits", "claimed"), "sum")
        f["distinct_clinics"] = np.diff(proj.matrix("VISITED", "person", "clinic").indptr)
        f["inpatient_stays"] = _flag_sum(vp, n, cols.eq("visits", "kind", "inpatient"))
        if cols.notna("visits", "date").any():
            vd = cols.visit_days
            person = vd.person_day // DAY_SPAN
            present = np.bincount(person, minlength=n) > 0
            f["max_clinics_one_day"] = _int_or_float(_group_max(person, n, vd.clinics), present)
            f["days_multi_clinic"] = _int_or_float(np.bincount(person[vd.clinics >= 2], minlength=n), present)
            rows = vd.rows
            mk = _pack([(vp[rows], n), (cols.date_months("visits", "date")[rows], MONTH_SPAN),
                        (cols.codes("visits", "clinic_id", "clinic")[rows], vd.nc)])
            pm, clinics = _distinct_per_group(mk, vd.nc)
            person = pm // MONTH_SPAN
            present = np.bincount(person, minlength=n) > 0
            f["max_clinics_one_month"] = _int_or_float(_group_max(person, n, clinics), present)
            f["visits_after_death"] = _flag_sum(vp, n, cols.after_death("visits", "date"))
    if dataset.has("purchases"):
        pp = cols.codes("purchases", "person_id", "person")
        f["purchases"] = _count(pp, n)
        f["purchase_amount"] = _agg(pp, n, cols.floats("purchases", "amount"), "sum")
        f["distinct_pharmacies"] = np.diff(proj.matrix("PURCHASED", "person", "pharmacy").indptr)
        f["max_days_supply"] = _agg(pp, n, cols.floats("purchases", "days_supply"), "max")
        f["total_days_supply"] = _agg(pp, n, cols.floats("purchases", "days_supply"), "sum")
        if cols.notna("purchases", "date").any():
            f["purchases_after_death"] = _flag_sum(pp, n, cols.after_death("purchases", "date"))
            if dataset.has("visits") and cols.notna("visits", "date").any():
                f["same_day_visit_purchase_days"] = _same_day_pairs_per_person(cols)
                if pairs is not None and len(pairs):
                    f["top_pair_same_days"] = _top_pair_days(pairs, cols)
    if dataset.has("contributions"):
        cp = cols.codes("contributions", "person_id", "person")
        f["contribution_months"] = _count(cp, n)
        f["contribution_paid"] = _agg(cp, n, cols.floats("contributions", "paid"), "sum")
        f["contribution_employers"] = np.diff(proj.matrix("CONTRIBUTED", "employer", "person").T.tocsr().indptr)
    if dataset.has("employment"):
        ep = cols.codes("employment", "person_id", "person")
        f["jobs"] = _count(ep, n)
        f["max_wage"] = _agg(ep, n, cols.floats("employment", "monthly_wage"), "max")
        f["placed_by_agency"] = _flag_sum(ep, n, cols.notna("employment", "agency_id"))
    if dataset.has("benefits"):
        b = dataset.tables["benefits"]
        bp = cols.codes("benefits", "person_id", "person")
        amount = cols.floats("benefits", "amount")
        f["benefit_months"] = _count(bp, n)
        f["benefit_amount"] = _agg(bp, n, amount, "sum")
        kinds, levels = cols.factor("benefits", "benefit_type")
        for kind in sorted(b["benefit_type"].dropna().unique())[:10]:
            mask = kinds == levels.get_loc(kind)
            f[f"benefit_{kind}_amount"] = _agg(bp, n, amount, "sum", mask)
        month = cols.text_months("benefits", "month")
        if dataset.has("contributions"):
            cp = cols.codes("contributions", "person_id", "person")
            cm = cols.text_months("contributions", "month")
            paid = (np.nan_to_num(cols.floats("contributions", "paid")) > 0) & (cp >= 0) & (cm >= 0)
            paid_keys = _unique(_pack([(cp[paid], n), (cm[paid], TEXT_MONTH_SPAN)]))
            unemp = cols.eq("benefits", "benefit_type", "unemployment") & (bp >= 0) & (month >= 0)
            both = np.zeros(len(bp), dtype=bool)
            both[unemp] = _isin(_pack([(bp[unemp], n), (month[unemp], TEXT_MONTH_SPAN)]), paid_keys)
            f["unemployment_while_contributing"] = _count(bp, n, both)
        death, dead = cols.death_ns
        death_month = (death.view("datetime64[ns]").astype("datetime64[M]").view(np.int64)
                       + 1970 * 12)   # year * 12 + month - 1, like text_months
        ok = (bp >= 0) & (month >= 0)
        ok[ok] = dead[bp[ok]]
        after = np.zeros(len(bp), dtype=bool)
        after[ok] = month[ok] > death_month[bp[ok]]
        f["benefits_after_death"] = _agg(bp, n, np.where(after, amount, 0.0), "sum")
    if dataset.has("agency_links"):
        f["agency_links"] = _count(cols.codes("agency_links", "entity_id", "person"), n,
                                   cols.eq("agency_links", "entity_type", "person"))
    for name, values in _shared_identifier_counts(proj, "person").items():
        f[name] = values
    return _with_attributes(dataset, "person", ref, f)


def _same_day_pairs_per_person(cols: _Columns) -> np.ndarray:
    """Days on which the person both visited a clinic and bought at a pharmacy."""
    n = cols.n("person")
    vp = cols.codes("visits", "person_id", "person")
    pp = cols.codes("purchases", "person_id", "person")
    vr = cols.notna("visits", "date") & (vp >= 0)
    pr = cols.notna("purchases", "date") & (pp >= 0)
    v = _unique(_pack([(vp[vr], n), (cols.days("visits", "date")[vr], DAY_SPAN)]))
    p = _unique(_pack([(pp[pr], n), (cols.days("purchases", "date")[pr], DAY_SPAN)]))
    both = v[_isin(v, p)]
    return np.bincount(both // DAY_SPAN, minlength=n).astype(np.float64)


def _top_pair_days(pairs: SameDayPairs, cols: _Columns) -> np.ndarray:
    """Per person: days on which they visited one clinic and bought at one pharmacy the same day,
    for their most repeated (clinic, pharmacy) pair (collusion rings repeat one pair)."""
    n, nc, nh = cols.n("person"), max(cols.n("clinic"), 1), max(cols.n("pharmacy"), 1)
    # pairs rows are distinct (person, day, clinic, pharmacy): rows per triple = distinct days
    key, days = _unique_counts(_pack([(pairs.person, n), (pairs.clinic, nc), (pairs.pharmacy, nh)]))
    return _group_max(key // (nc * nh), n, days).astype(np.float64)


def employer_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None,
                      cols: _Columns | None = None) -> pd.DataFrame:
    cols = cols or _Columns(dataset, proj)
    idx = proj.ids["employer"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))   # derived features; attributes join at the end
    if dataset.has("employment"):
        ee = cols.codes("employment", "employer_id", "employer")
        f["employees"] = np.diff(proj.matrix("EMPLOYED_BY", "person", "employer").T.tocsr().indptr)
        f["mean_wage"] = _agg(ee, n, cols.floats("employment", "monthly_wage"), "mean")
        f["agency_placed"] = _flag_sum(ee, n, cols.notna("employment", "agency_id"))
    if dataset.has("contributions"):
        ce = cols.codes("contributions", "employer_id", "employer")
        cp = cols.codes("contributions", "person_id", "person")
        cm = cols.text_months("contributions", "month")
        f["insured_persons"] = np.diff(proj.matrix("CONTRIBUTED", "employer", "person").indptr)
        f["contribution_rows"] = _count(ce, n)
        due, paid = cols.floats("contributions", "due"), cols.floats("contributions", "paid")
        f["due_total"] = _agg(ce, n, due, "sum")
        f["paid_total"] = _agg(ce, n, paid, "sum")
        f["paid_share"] = np.where(f["due_total"] > 0, f["paid_total"] / f["due_total"].where(f["due_total"] > 0, 1), 1.0)
        short = (np.nan_to_num(paid) < np.nan_to_num(due)) & (ce >= 0) & (cm >= 0)
        emp, months = _distinct_per_group(_pack([(ce[short], n), (cm[short], TEXT_MONTH_SPAN)]), TEXT_MONTH_SPAN)
        f["arrears_months"] = _per_entity(emp, months, n)
        f["mean_base"] = _agg(ce, n, cols.floats("contributions", "base"), "mean")
        ok = (cp >= 0) & (cm >= 0)
        person, months = _distinct_per_group(_pack([(cp[ok], cols.n("person")), (cm[ok], TEXT_MONTH_SPAN)]),
                                             TEXT_MONTH_SPAN)
        per_person = np.full(cols.n("person") + 1, np.nan)   # last slot: code -1
        per_person[person] = months
        f["mean_person_months"] = _agg(ce, n, per_person[cp], "mean")
        if "employees" in f:
            f["insured_over_employed"] = (f["insured_persons"] + 1) / (f["employees"] + 1)
    if dataset.has("agency_links"):
        f["agency_links"] = _count(cols.codes("agency_links", "entity_id", "employer"), n,
                                   cols.eq("agency_links", "entity_type", "employer"))
    for name, values in _shared_identifier_counts(proj, "employer").items():
        f[name] = values
    return _with_attributes(dataset, "employer", ref, f)


def same_day_pairs(dataset: Dataset, proj: Projection, cols: _Columns | None = None) -> SameDayPairs:
    """Same-day (person, day, clinic, pharmacy) codes of the projection, computed once and kept
    for as long as the projection lives (features and reasons both use them)."""
    pairs = _PAIRS.get(proj)
    if pairs is None:
        pairs = _PAIRS[proj] = (cols or _Columns(dataset, proj)).pairs
    return pairs


def same_day_partners(dataset: Dataset, proj: Projection, entity_type: str) -> pd.DataFrame:
    """Who each entity meets on the same day, for reasons: a clinic's top pharmacy and a
    pharmacy's top clinic (most distinct persons; ties to the smaller id), with those persons;
    a person's most repeated (clinic, pharmacy) pair and its days (ties to the smaller ids).
    Rows only for entities with a same-day co-occurrence, indexed by id."""
    cols = _Columns(dataset, proj)
    pairs = same_day_pairs(dataset, proj, cols)
    ids = proj.ids[entity_type]
    if entity_type in ("clinic", "pharmacy"):
        partner = "pharmacy" if entity_type == "clinic" else "clinic"
        top, persons = _top_partner(pairs, f"{entity_type}_id", f"{partner}_id", cols)
        has = np.flatnonzero(top >= 0)
        return pd.DataFrame({"partner": proj.ids[partner].to_numpy(dtype=object)[top[has]],
                             "persons": persons[has]}, index=ids[has])
    if entity_type != "person":
        raise ValueError(f"same-day partners are defined for persons, clinics and pharmacies, not {entity_type}")
    n, nc, nh = cols.n("person"), max(cols.n("clinic"), 1), max(cols.n("pharmacy"), 1)
    rc, rh = cols.rank("clinic"), cols.rank("pharmacy")
    # pairs rows are distinct (person, day, clinic, pharmacy): rows per triple = distinct days.
    # Keys hold id ranks, so among equal days the smallest key is the smallest (clinic, pharmacy).
    keys, days = _unique_counts(_pack([(pairs.person, n), (rc[pairs.clinic], nc), (rh[pairs.pharmacy], nh)]))
    person = keys // (nc * nh)
    order = np.lexsort((keys, -days, person))
    first = order[np.concatenate(([True], person[order][1:] != person[order][:-1]))] if len(order) else order
    clinic_rank, pharmacy_rank = np.divmod(keys[first] % (nc * nh), nh)
    return pd.DataFrame({
        "clinic": proj.ids["clinic"].to_numpy(dtype=object)[np.argsort(rc)[clinic_rank]],
        "pharmacy": proj.ids["pharmacy"].to_numpy(dtype=object)[np.argsort(rh)[pharmacy_rank]],
        "days": days[first].astype(np.float64),
    }, index=ids[person[first]])


def clinic_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None, pairs: SameDayPairs,
                    cols: _Columns | None = None) -> pd.DataFrame:
    cols = cols or _Columns(dataset, proj)
    idx = proj.ids["clinic"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))   # derived features; attributes join at the end
    if dataset.has("visits"):
        vc = cols.codes("visits", "clinic_id", "clinic")
        amount = cols.floats("visits", "amount")
        m = proj.matrix("VISITED", "person", "clinic")
        f["visits"] = _count(vc, n)
        f["patients"] = np.diff(m.T.tocsr().indptr)
        f["visits_per_patient"] = f["visits"] / np.maximum(f["patients"], 1)
        inpatient = cols.eq("visits", "kind", "inpatient")
        f["inpatient_share"] = np.divide(_flag_sum(vc, n, inpatient), f["visits"].to_numpy(),
                                         out=np.zeros(n), where=f["visits"].to_numpy() > 0)
        f["amount_total"] = _agg(vc, n, amount, "sum")
        f["amount_per_visit"] = _agg(vc, n, amount, "mean")
        f["claimed_total"] = _agg(vc, n, cols.floats("visits", "claimed"), "sum")
        if len(pairs):
            f["same_day_pharmacy_share"] = _count(pairs.clinic, n) / np.maximum(f["visits"], 1)
            f["top_pharmacy_share"] = _top_partner_share(pairs, "clinic_id", "pharmacy_id", cols)
            top, persons = _top_partner(pairs, "clinic_id", "pharmacy_id", cols)
            f["top_pharmacy_patient_share"] = persons / np.maximum(f["patients"].to_numpy(), 1)
            f["top_pharmacy_repeat_patients"] = _repeat_pair_persons(pairs, "clinic_id", top, cols)
        if cols.notna("visits", "date").any():
            vd = cols.visit_days
            rows = vd.rows
            multi = np.zeros(len(vc), dtype=bool)
            multi[rows] = (vd.clinics >= 2)[vd.row_group]
            f["multi_clinic_day_visits"] = _count(vc, n, multi) / np.maximum(f["visits"], 1)
        if cols.notna("visits", "discharge_date").any():
            beds = pd.Series(dataset.table("clinics")["beds"].to_numpy(dtype=np.float64, na_value=np.nan), index=idx)
            f["max_daily_admissions_per_bed"] = _admissions_per_bed(cols, idx, beds)
    return _with_attributes(dataset, "clinic", ref, f)


REPEAT_PAIR_DAYS = 3  # same-day clinic+pharmacy days that make a person a repeat co-visitor


def _admissions_per_bed(cols: _Columns, idx: pd.Index, beds: pd.Series) -> np.ndarray:
    n = len(idx)
    vc = cols.codes("visits", "clinic_id", "clinic")
    adm = cols.eq("visits", "kind", "inpatient") & cols.notna("visits", "date") & (vc >= 0)
    clinic, counts = _distinct_per_day(vc[adm], n, cols.days("visits", "date")[adm])
    daily = np.zeros(n, dtype=np.int64)
    np.maximum.at(daily, clinic, counts)
    present = np.zeros(n, dtype=bool)
    present[clinic] = True
    daily_s = pd.Series(_int_or_float(daily, present), index=idx)
    return (daily_s / beds.clip(lower=1).fillna(1)).to_numpy()


def _distinct_per_day(codes: np.ndarray, n: int, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows per (entity, day): (entity of each group, its row count)."""
    key, counts = _unique_counts(_pack([(codes, n), (days, DAY_SPAN)]))
    return key // DAY_SPAN, counts


def pharmacy_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None, pairs: SameDayPairs,
                      cols: _Columns | None = None) -> pd.DataFrame:
    cols = cols or _Columns(dataset, proj)
    idx = proj.ids["pharmacy"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))   # derived features; attributes join at the end
    if dataset.has("purchases"):
        ph = cols.codes("purchases", "pharmacy_id", "pharmacy")
        amount = cols.floats("purchases", "amount")
        f["purchases"] = _count(ph, n)
        f["customers"] = np.diff(proj.matrix("PURCHASED", "person", "pharmacy").T.tocsr().indptr)
        f["purchases_per_customer"] = f["purchases"] / np.maximum(f["customers"], 1)
        f["amount_total"] = _agg(ph, n, amount, "sum")
        f["amount_per_purchase"] = _agg(ph, n, amount, "mean")
        long_supply = cols.floats("purchases", "days_supply") > 7
        f["long_supply_share"] = np.divide(_flag_sum(ph, n, long_supply), f["purchases"].to_numpy(),
                                           out=np.zeros(n), where=f["purchases"].to_numpy() > 0)
        if len(pairs):
            f["same_day_clinic_share"] = _count(pairs.pharmacy, n) / np.maximum(f["purchases"], 1)
            f["top_clinic_share"] = _top_partner_share(pairs, "pharmacy_id", "clinic_id", cols)
            top, persons = _top_partner(pairs, "pharmacy_id", "clinic_id", cols)
            f["top_clinic_customer_share"] = persons / np.maximum(f["customers"].to_numpy(), 1)
            f["top_clinic_repeat_customers"] = _repeat_pair_persons(pairs, "pharmacy_id", top, cols)
    return _with_attributes(dataset, "pharmacy", ref, f)


def agency_features(dataset: Dataset, proj: Projection, ref: pd.Timestamp | None,
                    cols: _Columns | None = None) -> pd.DataFrame:
    cols = cols or _Columns(dataset, proj)
    idx = proj.ids["agency"]
    n = len(idx)
    f = pd.DataFrame(index=idx.rename("entity_id"))   # derived features; attributes join at the end
    if dataset.has("agency_links"):
        la = cols.codes("agency_links", "agency_id", "agency")
        for et in ("person", "employer"):
            f[f"linked_{et}s"] = _count(la, n, cols.eq("agency_links", "entity_type", et))
    if dataset.has("employment"):
        ea = cols.codes("employment", "agency_id", "agency")
        ee = cols.codes("employment", "employer_id", "employer")
        ep = cols.codes("employment", "person_id", "person")
        ne = cols.n("employer")
        placed = cols.notna("employment", "agency_id")
        f["placements"] = _count(ea, n, placed)
        ok = placed & (ea >= 0) & (ee >= 0)
        agency, employers = _distinct_per_group(_pack([(ea[ok], n), (ee[ok], ne)]), ne)
        f["placed_employers"] = _per_entity(agency, employers, n)
        ok = (ee >= 0) & (ep >= 0)
        emp, persons = _distinct_per_group(_pack([(ee[ok], ne), (ep[ok], cols.n("person"))]), cols.n("person"))
        size = np.full(ne + 1, np.nan)   # last slot: code -1
        size[emp] = persons
        f["placed_employer_median_size"] = _agg(ea, n, size[ee], "median", placed)
    return _with_attributes(dataset, "agency", ref, f)


def build_features(dataset: Dataset, proj: Projection) -> dict[str, pd.DataFrame]:
    """Feature table per entity type (rows in the projection's sorted id order)."""
    ref = reference_date(dataset)
    cols = _Columns(dataset, proj)
    pairs = same_day_pairs(dataset, proj, cols)
    out = {
        "person": person_features(dataset, proj, ref, pairs, cols),
        "employer": employer_features(dataset, proj, ref, cols),
        "clinic": clinic_features(dataset, proj, ref, pairs, cols),
        "pharmacy": pharmacy_features(dataset, proj, ref, pairs, cols),
        "agency": agency_features(dataset, proj, ref, cols),
    }
    for t in ENTITY_TYPES:
        out[t].index.name = "entity_id"
    return out
