"""How the Spark entity aggregates are computed (composer/engines/spark_features.py says which):
the event tables as Spark frames of codes (`Sources`), the exact-sum helpers, and one Spark job
that collects every registered aggregate as a long frame (`Query`), read back per key on the
driver (`Results`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from features.attributes import in_code_order
from features.entity_aggregates import (
    Columns,
)
from features.groupby import spread
from graph.codes import DAY_NA, MONTH_NA, ColumnCodes
from graph.dataset import Dataset
from graph.projection import Projection

SUM_TYPE = "decimal(38,18)"  # exact sums of amounts up to 1e20 with 18 decimals
Assemble = Callable[["Results", Columns], Columns]  # (results, the earlier groups' columns) -> columns


class Query:
    """Per-entity aggregates registered one frame at a time, collected in one Spark job."""

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.size = 0

    def add(self, grouped: Any, *columns: str) -> list[int]:
        """`grouped` has one row per entity (`code`) and the given value columns: their keys."""
        from pyspark.sql import functions as F

        keys = list(range(self.size, self.size + len(columns)))
        self.size += len(columns)
        wide = grouped.select(
            F.col("code").cast("long").alias("code"),
            *[F.col(c).cast("double").alias(f"k{k}") for c, k in zip(columns, keys)],
        )
        long = wide.unpivot("code", [f"k{k}" for k in keys], "key", "value")
        self.parts.append(long.select("code", F.expr("cast(substr(key, 2) as int)").alias("key"), "value"))
        return keys

    def collect(self) -> Results:
        if not self.parts:
            empty = {
                "code": pa.array([], pa.int64()),
                "key": pa.array([], pa.int32()),
                "value": pa.array([], pa.float64()),
            }
            return Results.of(pa.table(empty))
        frame = self.parts[0]
        for p in self.parts[1:]:
            frame = frame.unionByName(p)
        return Results.of(frame.toArrow())  # Arrow, not pandas: one copy of every row fewer


class Results:
    """The collected long frame, grouped by key (the order of codes within a key is not used)."""

    def __init__(self, key: np.ndarray, code: np.ndarray, value: np.ndarray) -> None:
        self.key, self.code, self.value = key, code, value

    @staticmethod
    def of(table: pa.Table) -> Results:
        """From the collected (code, key, value) rows; a missing value reads as NaN. Column by
        column, so that the driver holds the table and at most two arrays of one column more."""
        key = table.column("key").to_numpy()
        small = key.size == 0 or int(key.max()) <= np.iinfo(np.int16).max  # column numbers: a few hundred
        key = key.astype(np.int16 if small else np.int64)
        order = np.argsort(key, kind="stable")  # a radix sort on 16-bit integers
        key = key[order]
        code = table.column("code").to_numpy().astype(np.int64, copy=False)[order]
        value = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)[order]
        return Results(key, code, value)

    def _of(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(self.key, [key, key + 1])
        return self.code[lo:hi], self.value[lo:hi]

    def dense(self, key: int, n: int) -> np.ndarray:
        """One float per entity: 0 for entities without a row or without a value (as `agg`)."""
        code, value = self._of(key)
        out = np.zeros(n, dtype=np.float64)
        out[code] = np.nan_to_num(value, nan=0.0)
        return out

    def counts(self, key: int, n: int, dtype: Any) -> np.ndarray:
        return self.dense(key, n).astype(dtype)

    def spread(self, key: int, n: int) -> np.ndarray:
        """Integers of the entities that had a group (features/groupby.py `spread`: int64 when
        every entity had one, else float64 with 0 for the others)."""
        code, value = self._of(key)
        out: np.ndarray = spread(code, value.astype(np.int64), n)
        return out


@dataclass
class Sources:
    """The event tables as Spark DataFrames of codes, day and month numbers, amounts and flags."""

    session: Any
    dataset: Dataset
    proj: Projection
    cols: ColumnCodes
    counts: Mapping[str, np.ndarray]  # the engine's graph counts per global node index

    def has(self, table: str) -> bool:
        return self.dataset.has(table)

    def has_dates(self, table: str, column: str = "date") -> bool:
        return self.has(table) and bool(self.cols.notna(table, column).any())

    def n(self, entity_type: str) -> int:
        return len(self.proj.ids[entity_type])

    def count_dtype(self, rel: str, source: str, target: str) -> Any:
        """The dtype of the pandas engine's distinct counts (a sparse matrix's index dtype)."""
        return self.proj.matrix(rel, source, target).indptr.dtype

    def _codes(self, table: str, column: str, kind: str) -> np.ndarray:
        return np.asarray(self.cols.codes(table, column, kind), np.int64)

    def _numbers(self, values: np.ndarray, missing: int) -> np.ndarray:
        """Day or month numbers with their missing marker as null."""
        v = np.asarray(values, np.int64)
        return np.ma.masked_array(v, mask=v == missing)

    def frame_of(self, columns: dict[str, np.ndarray]) -> Any:
        arrays = {}
        for name, values in columns.items():
            if isinstance(values, np.ma.MaskedArray):
                arrays[name] = pa.array(values.data, mask=np.ma.getmaskarray(values))
            elif values.dtype == np.float64:
                arrays[name] = pa.array(values, from_pandas=True)
            else:
                arrays[name] = pa.array(values)
        return self.session.createDataFrame(pa.table(arrays))

    def visits(self) -> Any:
        c = self.cols
        return self.memo(
            "visits",
            lambda: self.frame_of(
                {
                    "person": self._codes("visits", "person_id", "person"),
                    "clinic": self._codes("visits", "clinic_id", "clinic"),
                    "day": self._numbers(c.days("visits", "date"), DAY_NA),
                    "month": self._numbers(c.date_months("visits", "date"), MONTH_NA),
                    "amount": c.floats("visits", "amount"),
                    "claimed": c.floats("visits", "claimed"),
                    "inpatient": c.eq("visits", "kind", "inpatient"),
                }
            ),
        )

    def purchases(self) -> Any:
        c = self.cols
        return self.memo(
            "purchases",
            lambda: self.frame_of(
                {
                    "person": self._codes("purchases", "person_id", "person"),
                    "pharmacy": self._codes("purchases", "pharmacy_id", "pharmacy"),
                    "day": self._numbers(c.days("purchases", "date"), DAY_NA),
                    "amount": c.floats("purchases", "amount"),
                    "days_supply": c.floats("purchases", "days_supply"),
                }
            ),
        )

    def contributions(self) -> Any:
        c = self.cols
        return self.memo(
            "contributions",
            lambda: self.frame_of(
                {
                    "person": self._codes("contributions", "person_id", "person"),
                    "employer": self._codes("contributions", "employer_id", "employer"),
                    "month": self._numbers(c.months("contributions", "month"), MONTH_NA),
                    "base": c.floats("contributions", "base"),
                    "due": c.floats("contributions", "due"),
                    "paid": c.floats("contributions", "paid"),
                }
            ),
        )

    def employment(self) -> Any:
        c = self.cols
        return self.memo(
            "employment",
            lambda: self.frame_of(
                {
                    "person": self._codes("employment", "person_id", "person"),
                    "employer": self._codes("employment", "employer_id", "employer"),
                    "agency": self._codes("employment", "agency_id", "agency"),
                    "placed": c.notna("employment", "agency_id"),
                    "wage": c.floats("employment", "monthly_wage"),
                }
            ),
        )

    def benefits(self) -> Any:
        c = self.cols
        kinds, _ = c.factor("benefits", "benefit_type")
        return self.memo(
            "benefits",
            lambda: self.frame_of(
                {
                    "person": self._codes("benefits", "person_id", "person"),
                    "month": self._numbers(c.months("benefits", "month"), MONTH_NA),
                    "kind": np.asarray(kinds, np.int64),  # codes of the benefit types (the driver keeps the names)
                    "amount": c.floats("benefits", "amount"),
                }
            ),
        )

    def agency_links(self) -> Any:
        c = self.cols
        return self.memo(
            "agency_links",
            lambda: self.frame_of(
                {
                    "agency": self._codes("agency_links", "agency_id", "agency"),
                    "person": self._codes("agency_links", "entity_id", "person"),
                    "employer": self._codes("agency_links", "entity_id", "employer"),
                    "is_person": c.eq("agency_links", "entity_type", "person"),
                    "is_employer": c.eq("agency_links", "entity_type", "employer"),
                }
            ),
        )

    def deaths(self) -> Any:
        """Dead persons' codes with their death day and month."""

        def build() -> Any:
            day = in_code_order(self.cols, "person", self.cols.days("persons", "death_date"))
            month = in_code_order(self.cols, "person", self.cols.date_months("persons", "death_date"))
            dead = np.flatnonzero(day != DAY_NA)
            return self.frame_of(
                {
                    "person": dead.astype(np.int64),
                    "death_day": np.asarray(day[dead], np.int64),
                    "death_month": np.asarray(month[dead], np.int64),
                }
            )

        return self.memo("deaths", build)

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._frames:
            self._frames[key] = build()
        return self._frames[key]

    def __post_init__(self) -> None:
        self._frames: dict[str, Any] = {}


def exact_sum(column: str) -> Any:
    """The exact sum of a double column (nulls skipped; null when every value is null)."""
    from pyspark.sql import functions as F

    return F.sum(F.col(column).cast(SUM_TYPE)).cast("double")


def exact_mean(column: str) -> Any:
    """As pandas: the (exact) sum over the count of values, one double division."""
    from pyspark.sql import functions as F

    return F.try_divide(exact_sum(column), F.count(column).cast("double"))


def count_if(condition: Any) -> Any:
    from pyspark.sql import functions as F

    return F.sum(F.when(condition, 1).otherwise(0))
