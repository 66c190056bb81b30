"""Per-evaluation memo shared by the detectors: integer id codes, parsed dates and months.

Detectors work on whole tables. Hashing millions of string ids, or parsing dates, once per rule
dominated the run time, so `evaluate` builds one `Cache` per call and hands it to every detector:
each id column is turned into integer codes over one vocabulary per entity type (so codes of
visits.person_id and benefits.person_id can be compared or combined into integer keys), each date
column into day numbers, each month column into month numbers, each at most once.

A vocabulary is the sorted entity table's id column, so codes sort like the ids themselves. Ids
that the entity table lacks (impossible in a validated dataset, handled anyway) extend it.
If such ids turn up after codes of that entity type were handed out, the cache forgets everything
and raises VocabularyChanged; `Detector.run` then runs the detector again (rare: never on a
validated dataset). The cache assumes the dataset is not changed while an evaluation runs.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graph.contract import ENTITY_TABLE, ID_COLUMN
from graph.dataset import Dataset
from graph.projection import arrow_text

NAT = np.iinfo(np.int64).min   # what a missing date becomes as int64


class VocabularyChanged(Exception):
    """Ids missing from their entity table were met after codes had been handed out: start over."""


class Cache:
    """Codes and parsed columns of one dataset, each computed at most once."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._memo: dict[Hashable, Any] = {}
        self._vocab: dict[str, pa.Array] = {}
        self._names: dict[str, np.ndarray] = {}

    def memo(self, key: Hashable, fn: Callable[[], Any]) -> Any:
        """fn() the first time `key` is asked for, the stored value afterwards."""
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    # --- ids -------------------------------------------------------------------------------

    def vocab(self, kind: str) -> pa.Array:
        """The ids of an entity type, sorted and unique (the codes index into it)."""
        if kind not in self._vocab:
            ids = self.ds.table(ENTITY_TABLE[kind])[ID_COLUMN[kind]]
            ids = ids[ids.notna()]
            a = arrow_text(ids)
            if not (ids.is_unique and ids.is_monotonic_increasing):
                a = pc.unique(a).sort()
            self._vocab[kind] = a
        return self._vocab[kind]

    def codes(self, table: str, column: str, kind: str) -> np.ndarray:
        """int64 code of each row's id in vocab(kind); -1 where the id is missing."""
        key = ("codes", table, column, kind)
        if key in self._memo:
            return self._memo[key]
        a = arrow_text(self.ds.table(table)[column])
        vocab = self.vocab(kind)
        if a.null_count == 0 and len(a) == len(vocab) and a.equals(vocab):   # the entity table itself
            codes = np.arange(len(a), dtype=np.int64)
            self._memo[key] = codes
            return codes
        # Tables sorted by this column have long runs of one id: look up each run once.
        runs = None
        if len(a) > 1 and a.null_count == 0:
            change = pc.not_equal(a.slice(1), a.slice(0, len(a) - 1)).to_numpy(zero_copy_only=False)
            starts = np.flatnonzero(np.concatenate([[True], change]))
            if len(starts) * 2 < len(a):
                runs = starts
        if runs is not None:
            head = pc.index_in(a.take(pa.array(runs)), value_set=vocab)
            if head.null_count == 0:
                codes = np.repeat(head.to_numpy().astype(np.int64), np.diff(np.append(runs, len(a))))
                self._memo[key] = codes
                return codes
        found = pc.index_in(a, value_set=vocab)
        unknown = pc.and_(pc.is_null(found), pc.is_valid(a))
        if pc.any(unknown).as_py():
            # Extend the vocabulary. Codes of this kind handed out before (and anything derived
            # from them) are stale then: forget everything and make the detector start over.
            stale = any(isinstance(k, tuple) and k[:1] == ("codes",) and k[3] == kind for k in self._memo)
            self._vocab[kind] = pc.unique(pa.concat_arrays([vocab, a.filter(unknown)])).sort()
            self._names.pop(kind, None)
            if stale:
                self._memo.clear()
                raise VocabularyChanged(kind)
            return self.codes(table, column, kind)
        codes = pc.fill_null(found, -1).to_numpy().astype(np.int64)
        self._memo[key] = codes
        return codes

    def n(self, kind: str) -> int:
        return len(self.vocab(kind))

    def ids(self, kind: str, codes: np.ndarray) -> np.ndarray:
        """The id strings of codes (object array)."""
        if kind not in self._names:
            self._names[kind] = self.vocab(kind).to_numpy(zero_copy_only=False).astype(object)
        return self._names[kind][codes]

    def factor(self, table: str, column: str) -> np.ndarray:
        """int64 codes of any column's values in order of appearance (-1 where missing)."""
        return self.memo(("factor", table, column),
                         lambda: pd.factorize(self.ds.table(table)[column])[0].astype(np.int64))

    def flags(self, kind: str, codes: np.ndarray) -> np.ndarray:
        """A boolean per vocabulary entry: True for the given codes (for fast membership tests)."""
        out = np.zeros(self.n(kind) + 1, dtype=bool)   # the extra slot absorbs code -1
        out[codes] = True
        out[-1] = False
        return out

    # --- values ----------------------------------------------------------------------------

    def notna(self, table: str, column: str) -> np.ndarray:
        return self.memo(("notna", table, column), lambda: self.ds.table(table)[column].notna().to_numpy())

    def eq(self, table: str, column: str, value: str) -> np.ndarray:
        """Rows whose column equals value (missing never does)."""
        return self.memo(("eq", table, column, value),
                         lambda: (self.ds.table(table)[column] == value).fillna(False).to_numpy(dtype=bool))

    def ns(self, table: str, column: str) -> np.ndarray:
        """A date column as int64 nanoseconds (NAT where missing)."""
        return self.memo(("ns", table, column),
                         lambda: self.ds.table(table)[column].to_numpy(dtype="datetime64[ns]").view(np.int64))

    def days(self, table: str, column: str) -> np.ndarray:
        """A date column as days since 1970-01-01 (meaningless where missing)."""
        return self.memo(("days", table, column), lambda: self.ds.table(table)[column]
                         .to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64))

    def date_months(self, table: str, column: str) -> np.ndarray:
        """A date column as months since 1970-01 (meaningless where missing)."""
        return self.memo(("date_months", table, column), lambda: self.ds.table(table)[column]
                         .to_numpy(dtype="datetime64[ns]").astype("datetime64[M]").astype(np.int64))

    def months(self, table: str, column: str) -> np.ndarray:
        """A 'YYYY-MM' column as months since 1970-01; -1 where missing."""
        return self.memo(("months", table, column), lambda: parse_months(self.ds.table(table)[column]))


def parse_months(s: pd.Series) -> np.ndarray:
    """Months since 1970-01 of 'YYYY-MM' strings; -1 where missing. Parses each distinct month once."""
    codes, uniques = pd.factorize(s)
    if len(uniques) == 0:
        return np.full(len(s), -1, dtype=np.int64)
    u = np.array([(int(m[:4]) - 1970) * 12 + int(m[5:7]) - 1 for m in uniques], dtype=np.int64)
    return np.where(codes >= 0, u[np.maximum(codes, 0)], -1)
