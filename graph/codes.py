"""Integer forms of a dataset's columns: id codes, day and month numbers, each computed once.

The one implementation behind every stage that works on integer keys: the projection's node
indices (graph/projection.py), the features (features/) and the rule detectors (rules/cache.py).

Ids. Each id type has a vocabulary, its sorted distinct ids: for an entity type those of its
entity table (in a Dataset the table's id column itself, which is sorted: no copy), for an
identifier type (phone, address, bank_account) the values that persons and employers hold. A
row's code is its id's position in the vocabulary, so the codes of one type compare across
tables, sort like the ids, and are the projection's node indices. Missing ids are -1; so are ids
the vocabulary lacks (never in a validated dataset), unless the ColumnCodes was made with
`extend=True` (the rules): then they extend the vocabulary, and if codes of that type had been
handed out already, everything derived from codes is forgotten and VocabularyChanged raised, for
the caller to start over.

Dates and months. One epoch, numpy's: days since 1970-01-01 (datetime64[D]) and months since
1970-01 (datetime64[M]), whether a month comes from a date column or from a 'YYYY-MM' text
column. So months of both kinds compare, and `m.astype("datetime64[M]")` turns month numbers back
into months. Every day number lies in [DAY_MIN, DAY_MIN + DAY_SPAN) and every month number in
[MONTH_MIN, MONTH_MIN + MONTH_SPAN): subtract the MIN to pack one into a non-negative integer key.
Missing dates and months are DAY_NA / MONTH_NA, below every real value (and NAT as nanoseconds);
test for them with `notna`.

Lookups are vectorised in Arrow and numpy: a sorted id column (an entity table's own) is its
vocabulary's identity; a column sorted by the id (most event tables) is looked up once per run of
equal ids; anything else in one hash lookup. Returned arrays are shared: they are read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graph.contract import ENTITY_TABLE, ID_COLUMN, IDENTIFIER_TYPES
from graph.dataset import Dataset

NAT = np.iinfo(np.int64).min  # a missing date as int64 nanoseconds
DAY_MIN, DAY_SPAN = -(2**17), 2**18  # days of datetime64[ns] dates (+-106752) lie in [DAY_MIN, DAY_MIN + DAY_SPAN)
DAY_NA = DAY_MIN - 1  # a missing date as a day number
MONTH_MIN, MONTH_SPAN = -1970 * 12, 10000 * 12  # 'YYYY-MM' for years 0000-9999; dates' months lie inside too
MONTH_NA = MONTH_MIN - 1  # a missing month as a month number

_T = TypeVar("_T")

# Tables that hold identifier values (the identifier types' vocabularies are theirs, together).
IDENTIFIER_HOLDERS: tuple[str, ...] = (ENTITY_TABLE["person"], ENTITY_TABLE["employer"])


class VocabularyChanged(Exception):
    """Ids missing from their vocabulary were met after codes had been handed out: start over."""


class _Vocabularies:
    """The id vocabularies and id codes of one dataset (shared by ColumnCodes.sharing_ids)."""

    def __init__(self, dataset: Dataset, extend: bool) -> None:
        self.dataset = dataset
        self.extend = extend
        self.vocab: dict[str, pa.Array] = {}
        self.names: dict[str, np.ndarray] = {}
        self.codes: dict[tuple[str, str, str], np.ndarray] = {}
        self.handed_out: set[str] = set()  # id types whose codes a caller has seen

    def forget(self, kind: str) -> None:
        """Drop what was derived from kind's vocabulary (it changed)."""
        self.names.pop(kind, None)
        for key in [k for k in self.codes if k[2] == kind]:
            del self.codes[key]


class ColumnCodes:
    """Id codes and integer date/month forms of one dataset's columns, each computed at most once.

    `extend`: ids missing from their vocabulary extend it (see the module doc) instead of
    becoming -1. The dataset must not change while a ColumnCodes is in use.
    """

    def __init__(self, dataset: Dataset, *, extend: bool = False) -> None:
        self.dataset = dataset
        self._ids = _Vocabularies(dataset, extend)
        self._values: dict[Hashable, Any] = {}
        self._memo: dict[Hashable, Any] = {}

    def sharing_ids(self) -> ColumnCodes:
        """A ColumnCodes of the same dataset that shares this one's vocabularies and id codes
        (each still computed once for both) but memoises everything else on its own: for one
        stage (a feature build), whose day numbers, flags and numbers go when it ends, while the
        id codes stay with their owner (the projection). Not for `extend=True` owners."""
        out = ColumnCodes.__new__(ColumnCodes)
        out.dataset = self.dataset
        out._ids = self._ids
        out._values = {}
        out._memo = {}
        return out

    def memo(self, key: Hashable, fn: Callable[[], _T]) -> _T:
        """fn() the first time `key` is asked for, the stored value afterwards. Forgotten, with
        the id codes, when a vocabulary is extended: store things derived from codes here."""
        if key not in self._memo:
            self._memo[key] = fn()
        out: _T = self._memo[key]
        return out

    def _value(self, key: Hashable, fn: Callable[[], _T]) -> _T:
        if key not in self._values:
            value = fn()
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            self._values[key] = value
        out: _T = self._values[key]
        return out

    # --- ids -------------------------------------------------------------------------------

    def vocab(self, kind: str) -> pa.Array:
        """The ids of an id type, sorted and distinct (large_string; codes index into it)."""
        v = self._ids.vocab.get(kind)
        if v is None:
            v = self._ids.vocab[kind] = (
                self._identifier_vocab(kind) if kind in IDENTIFIER_TYPES else self._entity_vocab(kind)
            )
        return v

    def _entity_vocab(self, kind: str) -> pa.Array:
        a = arrow_text(self.dataset.table(ENTITY_TABLE[kind])[ID_COLUMN[kind]])
        if a.null_count == 0 and _strictly_increasing(a):
            return a
        return pc.unique(a.drop_null()).sort()

    def _identifier_vocab(self, ident: str) -> pa.Array:
        """The distinct values of an identifier column over its holder tables, sorted; one hashing
        pass also gives every holder row's code."""
        parts = [arrow_text(self.dataset.table(t)[ident]) for t in IDENTIFIER_HOLDERS]
        enc = pc.dictionary_encode(pa.concat_arrays(parts))
        order = pc.array_sort_indices(enc.dictionary).to_numpy()  # code-point order, like the ids
        values = enc.dictionary.take(pa.array(order, type=pa.int64()))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        local = pc.fill_null(enc.indices, -1).to_numpy().astype(np.int64)
        codes = np.where(local >= 0, rank[np.maximum(local, 0)] if len(rank) else -1, -1)
        start = 0
        for t, part in zip(IDENTIFIER_HOLDERS, parts):
            c = codes[start : start + len(part)]
            c.flags.writeable = False
            self._ids.codes[(t, ident, ident)] = c
            start += len(part)
        return values

    def n(self, kind: str) -> int:
        """The vocabulary's size (codes are 0..n-1)."""
        return len(self.vocab(kind))

    def names(self, kind: str) -> np.ndarray:
        """The vocabulary as an object array of id strings (read-only)."""
        out = self._ids.names.get(kind)
        if out is None:
            out = np.asarray(self.vocab(kind).to_numpy(zero_copy_only=False), dtype=object)
            out.flags.writeable = False
            self._ids.names[kind] = out
        return out

    def ids(self, kind: str, codes: np.ndarray) -> np.ndarray:
        """The id strings of codes (object array)."""
        out: np.ndarray = self.names(kind)[codes]
        return out

    def codes(self, table: str, column: str, kind: str) -> np.ndarray:
        """int64 code of each row's id in vocab(kind); -1 where the id is missing (or, unless
        `extend`, not in the vocabulary). Read-only, computed once per (table, column, kind)."""
        key = (table, column, kind)
        ids = self._ids
        vocab = self.vocab(kind)  # identifier holders are coded along with their vocabulary
        out = ids.codes.get(key)
        if out is None:
            a = arrow_text(self.dataset.table(table)[column])
            out = _lookup(a, vocab)
            if ids.extend and a.null_count < len(a) and (out < 0).any():
                unknown = (out < 0) & a.is_valid().to_numpy(zero_copy_only=False)
                if unknown.any():
                    return self._extend(key, a.filter(pa.array(unknown)))
            out.flags.writeable = False
            ids.codes[key] = out
        ids.handed_out.add(kind)
        return out

    def _extend(self, key: tuple[str, str, str], unknown: pa.Array) -> np.ndarray:
        """Add unknown ids to key's vocabulary. Codes of that type handed out before (and what
        was derived from them) are stale then: forget it all and make the caller start over."""
        kind = key[2]
        self._ids.vocab[kind] = pc.unique(pa.concat_arrays([self.vocab(kind), unknown])).sort()
        self._ids.forget(kind)
        if kind in self._ids.handed_out:
            self._ids.handed_out.clear()
            self._ids.codes.clear()
            self._memo.clear()
            raise VocabularyChanged(kind)
        return self.codes(*key)

    def flags(self, kind: str, codes: np.ndarray) -> np.ndarray:
        """A boolean per vocabulary entry: True for the given codes (for fast membership tests),
        plus a last, False slot that code -1 lands in."""
        out = np.zeros(self.n(kind) + 1, dtype=bool)
        out[codes] = True
        out[-1] = False
        return out

    def in_id_order(self, kind: str) -> bool:
        """Whether row i of the entity table holds the id of code i (always, in a Dataset: its
        entity tables are sorted by id); else see entity_rows."""

        def build() -> bool:
            rows = self.entity_rows(kind)
            return len(rows) == len(self.dataset.table(ENTITY_TABLE[kind])) and bool(
                np.array_equal(rows, np.arange(len(rows)))
            )

        return self.memo(("in_id_order", kind), build)

    def entity_rows(self, kind: str) -> np.ndarray:
        """The entity table's row of each code (the first, should an id repeat; -1 for none)."""

        def build() -> np.ndarray:
            c = self.codes(ENTITY_TABLE[kind], ID_COLUMN[kind], kind)
            rows = np.full(self.n(kind), -1, dtype=np.int64)
            at = np.flatnonzero(c >= 0)[::-1]
            rows[c[at]] = at
            return rows

        return self.memo(("entity_rows", kind), build)

    # --- values ----------------------------------------------------------------------------

    def factor(self, table: str, column: str) -> tuple[np.ndarray, pd.Index]:
        """int64 codes of any column's values in order of appearance (-1 where missing), and
        the values."""

        def build() -> tuple[np.ndarray, pd.Index]:
            codes, uniques = pd.factorize(self.dataset.table(table)[column])
            codes = codes.astype(np.int64, copy=False)
            codes.flags.writeable = False
            return codes, pd.Index(uniques)

        return self._value(("factor", table, column), build)

    def notna(self, table: str, column: str) -> np.ndarray:
        return self._value(("notna", table, column), lambda: self.dataset.table(table)[column].notna().to_numpy())

    def eq(self, table: str, column: str, value: str) -> np.ndarray:
        """Rows whose column equals value (missing never does)."""
        return self._value(
            ("eq", table, column, value),
            lambda: (self.dataset.table(table)[column] == value).to_numpy(dtype=bool, na_value=False),
        )

    def floats(self, table: str, column: str) -> np.ndarray:
        """A numeric column as float64 (NaN where missing)."""
        return self._value(
            ("floats", table, column),
            lambda: self.dataset.table(table)[column].to_numpy(dtype=np.float64, na_value=np.nan),
        )

    def ns(self, table: str, column: str) -> np.ndarray:
        """A date column as int64 nanoseconds since 1970-01-01 (NAT where missing)."""
        return self._value(
            ("ns", table, column),
            lambda: self.dataset.table(table)[column].to_numpy(dtype="datetime64[ns]").view(np.int64),
        )

    def days(self, table: str, column: str) -> np.ndarray:
        """A date column as days since 1970-01-01 (DAY_NA where missing)."""
        return self._value(("days", table, column), lambda: _date_numbers(self.ns(table, column), "D", DAY_NA))

    def date_months(self, table: str, column: str) -> np.ndarray:
        """A date column as months since 1970-01 (MONTH_NA where missing)."""
        return self._value(("date_months", table, column), lambda: _date_numbers(self.ns(table, column), "M", MONTH_NA))

    def months(self, table: str, column: str) -> np.ndarray:
        """A 'YYYY-MM' text column as months since 1970-01 (MONTH_NA where missing)."""
        return self._value(("months", table, column), lambda: parse_months(self.dataset.table(table)[column]))


def parse_months(s: pd.Series) -> np.ndarray:
    """Months since 1970-01 of 'YYYY-MM' strings (MONTH_NA where missing); each distinct month
    is parsed once, in Arrow."""
    codes, uniques = pd.factorize(s)
    if len(uniques) == 0:
        return np.full(len(s), MONTH_NA, dtype=np.int64)
    u = pa.array(np.asarray(uniques, dtype=object), type=pa.large_string())
    year = pc.cast(pc.utf8_slice_codeunits(u, 0, 4), pa.int64()).to_numpy()
    month = pc.cast(pc.utf8_slice_codeunits(u, 5, 7), pa.int64()).to_numpy()
    number = (year - 1970) * 12 + month - 1
    return np.where(codes >= 0, number[np.maximum(codes, 0)], MONTH_NA)


def day_numbers(s: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 of a date column (DAY_NA where missing)."""
    return _date_numbers(_ns(s), "D", DAY_NA)


def month_numbers(s: pd.Series) -> np.ndarray:
    """Months since 1970-01 of a date column (MONTH_NA where missing): the epoch of parse_months."""
    return _date_numbers(_ns(s), "M", MONTH_NA)


def _ns(s: pd.Series) -> np.ndarray:
    return np.asarray(s.to_numpy(dtype="datetime64[ns]")).view(np.int64).copy()


def _date_numbers(ns: np.ndarray, unit: str, missing: int) -> np.ndarray:
    """Day ("D") or month ("M") numbers since 1970 of int64 nanoseconds; `missing` for NAT."""
    out = ns.view("datetime64[ns]").astype(f"datetime64[{unit}]").view(np.int64)  # a new array
    na = ns == NAT
    if na.any():
        out[na] = missing
    return out


def arrow_text(s: pd.Series) -> pa.Array:
    """A text column as one contiguous Arrow large_string array (missing -> null)."""
    try:
        a = pa.array(s.array)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        a = pa.array(s.to_numpy(dtype=object), from_pandas=True)
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if a.type != pa.large_string():
        a = a.cast(pa.large_string())
    return a


def _strictly_increasing(a: pa.Array) -> bool:
    """Whether a string array is sorted with no repeats (byte order, which is code-point order)."""
    n = len(a)
    return n < 2 or bool(pc.all(pc.less(a.slice(0, n - 1), a.slice(1))).as_py())


def _lookup(values: pa.Array, vocab: pa.Array) -> np.ndarray:
    """Position of each value in `vocab` (sorted distinct strings) as int64, -1 where missing or
    absent. The vocabulary's own array is its identity; a column sorted by the looked-up value
    (many tables are) has long runs of one value: each run is looked up once."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if values.null_count == 0 and n == len(vocab) and values.equals(vocab):
        return np.arange(n, dtype=np.int64)
    if n > 1 and values.null_count == 0:
        change = pc.not_equal(values.slice(1), values.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(np.concatenate([[True], change]))
        if len(starts) * 2 < n:
            head = pc.fill_null(pc.index_in(values.take(pa.array(starts)), value_set=vocab), -1)
            return np.repeat(head.to_numpy().astype(np.int64), np.diff(np.append(starts, n)))
    out: np.ndarray = pc.fill_null(pc.index_in(values, value_set=vocab), -1).to_numpy().astype(np.int64)
    return out


def positions(index: pd.Index, values: pd.Series | pd.Index) -> np.ndarray:
    """`index.get_indexer(values)` for text ids (a unique index; -1 where missing or absent),
    looked up in Arrow: several times faster than pandas' hashing of Python strings."""
    return _lookup(arrow_text(pd.Series(values, copy=False)), arrow_text(pd.Series(index, copy=False)))


def unique_sorted(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values by a plain sort. numpy 2.4's np.unique (without return_index,
    inverse or counts) hashes, and is 10-20x slower than sorting on millions of distinct int64 keys."""
    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]
