"""Per-evaluation memo shared by the detectors: integer id codes, parsed dates and months.

Detectors work on whole tables. Hashing millions of string ids, or parsing dates, once per rule
dominated the run time, so `evaluate` builds one `Cache` per call and hands it to every detector.
It is a thin front of the dataset's `ColumnCodes` (graph/codes.py, the projection's and the
features' too): id codes over one sorted vocabulary per id type (codes of visits.person_id and
benefits.person_id compare and combine into integer keys, and sort like the ids), dates as days
and months as months since 1970, each computed at most once.

The rules run without a projection and on datasets that were not necessarily validated: ids that
their entity table lacks extend its vocabulary (`extend=True`). Should such ids turn up after
codes of that type were handed out, the cache forgets everything derived from codes and raises
VocabularyChanged; `Detector.run` then runs the detector again (rare: never on a validated
dataset). The cache assumes the dataset is not changed while an evaluation runs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pyarrow as pa

from graph.codes import NAT, ColumnCodes, VocabularyChanged
from graph.dataset import Dataset

__all__ = ["NAT", "Cache", "VocabularyChanged"]


class Cache:
    """Codes and parsed columns of one dataset, each computed at most once."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.columns = ColumnCodes(ds, extend=True)

    def memo(self, key: Hashable, fn: Callable[[], Any]) -> Any:
        """fn() the first time `key` is asked for, the stored value afterwards (forgotten with
        the codes when a vocabulary changes)."""
        return self.columns.memo(key, fn)

    # --- ids -------------------------------------------------------------------------------

    def vocab(self, kind: str) -> pa.Array:
        """The ids of an entity type, sorted and unique (the codes index into it)."""
        return self.columns.vocab(kind)

    def codes(self, table: str, column: str, kind: str) -> np.ndarray:
        """int64 code of each row's id in vocab(kind); -1 where the id is missing (read-only)."""
        return self.columns.codes(table, column, kind)

    def n(self, kind: str) -> int:
        return self.columns.n(kind)

    def ids(self, kind: str, codes: np.ndarray) -> np.ndarray:
        """The id strings of codes (object array)."""
        return self.columns.ids(kind, codes)

    def factor(self, table: str, column: str) -> np.ndarray:
        """int64 codes of any column's values in order of appearance (-1 where missing)."""
        return self.columns.factor(table, column)[0]

    def flags(self, kind: str, codes: np.ndarray) -> np.ndarray:
        """A boolean per vocabulary entry: True for the given codes (for fast membership tests)."""
        return self.columns.flags(kind, codes)

    # --- values ----------------------------------------------------------------------------

    def notna(self, table: str, column: str) -> np.ndarray:
        return self.columns.notna(table, column)

    def eq(self, table: str, column: str, value: str) -> np.ndarray:
        """Rows whose column equals value (missing never does)."""
        return self.columns.eq(table, column, value)

    def ns(self, table: str, column: str) -> np.ndarray:
        """A date column as int64 nanoseconds (NAT where missing)."""
        return self.columns.ns(table, column)

    def days(self, table: str, column: str) -> np.ndarray:
        """A date column as days since 1970-01-01 (meaningless where missing)."""
        return self.columns.days(table, column)

    def date_months(self, table: str, column: str) -> np.ndarray:
        """A date column as months since 1970-01 (meaningless where missing)."""
        return self.columns.date_months(table, column)

    def months(self, table: str, column: str) -> np.ndarray:
        """A 'YYYY-MM' column as months since 1970-01, like date_months (below every month where
        missing)."""
        return self.columns.months(table, column)
