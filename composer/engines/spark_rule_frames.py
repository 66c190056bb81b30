"""What the Spark rule detectors share: the driver's arrays as Spark frames, frames back as
sorted integer columns, distinct counts over windows and the deaths frame (one per evaluation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rules.cache import NAT, Cache
from rules.detectors.base import _death_ns, _ns_days, _ns_months


def _frame(session: Any, columns: dict[str, np.ndarray]) -> Any:
    return session.createDataFrame(pa.table({k: pa.array(v) for k, v in columns.items()}))


def _collect(frame: Any, order: tuple[str, ...] = ("row",)) -> pd.DataFrame:
    """A frame of integer columns on the driver, sorted by `order` (Spark's order is arbitrary)."""
    got = frame.toPandas()
    if got.empty:
        return pd.DataFrame({c: np.zeros(0, np.int64) for c in frame.columns})
    return got.sort_values(list(order), kind="mergesort").reset_index(drop=True)


def _rows(frame: Any) -> np.ndarray:
    """The `row` column of a frame, ascending."""
    return _collect(frame.select("row"))["row"].to_numpy(np.int64)


def _distinct_over(column: str, *group: str) -> Any:
    """The number of distinct non-null values of `column` in each row's group, as a window: one
    shuffle, and no join of the groups back to their rows (a distinct count and a join took four
    times as long on 3.4M visits)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    return F.size(F.collect_set(column).over(Window.partitionBy(*group))).cast("long")


def _deaths(session: Any, cx: Cache) -> Any:
    """Each dead person's code with the death's day and month numbers: one frame per evaluation,
    shared by the detectors that join to the deaths, and sent to every task whole (a frame made
    from the driver's arrays has no size estimate, so Spark would shuffle both sides)."""
    from pyspark.sql import functions as F

    def build() -> Any:
        death = _death_ns(cx)[:-1]  # per person code (the last slot is code -1's)
        dead = np.flatnonzero(death != NAT)
        return _frame(
            session,
            {
                "person": dead.astype(np.int64),
                "death_day": _ns_days(death[dead]),
                "death_month": _ns_months(death[dead]),
            },
        )

    return F.broadcast(cx.memo("spark_deaths", build))


def _nullable(codes: np.ndarray) -> pa.Array:
    """Factor codes with -1 (missing) as null, which distinct counts skip as pandas' nunique does."""
    return pa.array(codes, mask=codes < 0)
