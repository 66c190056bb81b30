"""What every built-in detector shares: the `Detector` record, `Params`, and vectorised helpers.

A detector is a plain function `(dataset, params, cache) -> DataFrame`: one row per evidence
record, column `entity_id` (the entity the rule fires for) plus the record's columns. It works on
whole tables with integer keys, sorts and numpy, never a Python loop over entities: ids are integer
codes from the per-evaluation `Cache` (rules/cache.py, shared by all detectors of one run), and
string columns are only gathered for the rows that fire. Its parameters are a pydantic model
(unknown keys rejected), and it declares the table columns it needs so that the engine can skip
it, and say why, on datasets without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from graph.dataset import Dataset
from rules.cache import NAT, Cache, VocabularyChanged

DetectorFn = Callable[[Dataset, Any, Cache], pd.DataFrame]
_elsewhere: ContextVar[Mapping[str, DetectorFn] | None] = ContextVar("detectors_elsewhere", default=None)


@contextmanager
def detected_by(functions: Mapping[str, DetectorFn]) -> Iterator[None]:
    """Within this block the named detectors run as `functions[name]` (same arguments, same
    evidence records): a stage engine's versions (composer/engines/spark_rules.py)."""
    token = _elsewhere.set(functions)
    try:
        yield
    finally:
        _elsewhere.reset(token)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Detector:
    """A built-in detector: what it finds, its parameters and the data it needs."""

    name: str
    entity_type: str
    params: type[Params]
    fn: Callable[[Dataset, Any, Cache], pd.DataFrame]
    evidence: tuple[str, ...]  # record columns it returns, in order
    needs: tuple[str, ...]  # "table.column" that must all have values
    needs_any: tuple[str, ...] = ()  # at least one of these must have values

    @property
    def doc(self) -> str:
        """What the detector finds: its function's docstring."""
        return self.fn.__doc__ or ""

    def run(self, dataset: Dataset, params: Any, cache: Cache | None = None) -> pd.DataFrame:
        """The evidence records; pass the evaluation's cache to share codes across detectors."""
        cache = cache if cache is not None else Cache(dataset)
        fn = (_elsewhere.get() or {}).get(self.name, self.fn)
        while True:
            try:
                return fn(dataset, params, cache)
            except VocabularyChanged:  # ids outside the entity tables: the cache was reset, run again
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
        out.append(codes[start : start + len(c)])
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
    if int(a.max()) >= (2**62) // nb:
        return pd.factorize(pd.MultiIndex.from_arrays([a, b]))[0].astype(np.int64)
    return a * nb + b


def _join_keys(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Comparable pair keys for two tables' (a, b) columns."""
    k = _pair_key(np.concatenate([a1, a2]), np.concatenate([b1, b2]))
    return k[: len(a1)], k[len(a1) :]


def _in_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of values found in sorted unique keys, their positions there)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[pos] == values, pos
