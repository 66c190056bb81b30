"""The stages the composer hands to its stage engine (composer/engines/), and the output files
whose form depends on the engine.

- features: `Engine.features` (the Spark engine computes degree, 2-hop and shared-identifier
  counts and the entity aggregates over the event tables as DataFrame joins and aggregations);
- rules: the rule packs' detectors the engine implements run there (`Engine.detectors`,
  composer/engines/spark_rules.py), the others as they are; with such an engine the rules and
  their rings run in this process, not in a forked worker (`rules_worker`);
- ring grouping: the ring finders group through `Engine.group_nodes` (`rings_grouped_by`);
- scoring: every row's margin and path attributions, and the TreeSHAP contributions of the
  riskiest rows, through the engine (`scoring.score.RowScorer`: Spark mapInPandas batches);
- results: the --out contract files (CSV, the same for every engine), and with the Spark
  engine the same tables as Parquet beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd

from composer.engines import Engine
from composer.monitoring import MONITORING_JSON
from composer.resolution import Resolved
from composer.resolution import output_files as resolution_files
from features.rings import RingResult
from features.rings.grouping import grouped_by
from riskgraph.forked import Forked
from rules.detectors.base import detected_by
from scoring.score import SCORE_COLUMNS

T = TypeVar("T")
RING_FILE_COLUMNS = ["ring_id", "ring_type", "ring_score", "entity_type", "entity_id"]
PARQUET_RESULTS = ("scores.parquet", "rule_hits.parquet", "rings.parquet")  # --out, Spark engine only


class Inline(Generic[T]):
    """`Forked`'s interface for work run here and now: with an engine that runs it on Spark
    (a forked child cannot use the parent's Spark session)."""

    def __init__(self, value: T) -> None:
        self.value = value

    def result(self) -> T:
        return self.value

    def cancel(self) -> None:
        pass


def rules_worker(engine: Engine, fn: Callable[..., T], *args: Any) -> Forked[T] | Inline[T]:
    """The rules and the rings read from their hits: on the second core in a forked child (the
    pandas engine), or here, with the engine's detectors and ring grouping (the Spark engine)."""
    detectors = engine.detectors()
    if not detectors and not engine.groups_rings:
        return Forked(fn, *args, name="rules")
    with rings_grouped_by(engine), detected_by(detectors):
        return Inline(fn(*args))


@contextmanager
def rings_grouped_by(engine: Engine) -> Iterator[None]:
    """The ring finders called inside group their linked entities with the engine's
    `group_nodes` (when the engine has its own; the pandas engine's is the finders' own)."""
    if not engine.groups_rings:
        yield
        return
    with grouped_by(engine.group_nodes):
        yield


def output_files(
    scores: pd.DataFrame,
    hits: pd.DataFrame,
    ring_result: RingResult,
    resolved: Resolved,
    engine: Engine,
) -> dict[str, Callable[[Path], Any]]:
    """The --out contract files. They hold ids, scores, reasons (never from personal columns),
    rule evidence with personal values encrypted, and ring pseudonyms: no name, phone or id number.
    With the Spark engine the three result tables are also written as Parquet (same columns)."""
    tables = {
        "scores": scores[[*SCORE_COLUMNS, "golden_id"]],
        "rule_hits": hits.drop(columns=["grade_cap"], errors="ignore"),
        "rings": ring_result.members[RING_FILE_COLUMNS],
    }
    files: dict[str, Callable[[Path], Any]] = {f"{n}.csv": partial(_csv, t) for n, t in tables.items()}
    if engine.name == "spark":
        files |= {f"{n}.parquet": partial(_parquet, t) for n, t in tables.items()}
    return files | resolution_files(resolved)


def _csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    """One Parquet file; object columns as strings (rule evidence is JSON text), so any reader
    (Spark, DuckDB, pandas) gets the same types the CSV implies."""
    frame = frame.reset_index(drop=True)
    text = {c: "string" for c in frame.columns if frame[c].dtype == object}
    frame.astype(text).to_parquet(path, index=False)


def monitoring_file(monitoring: dict[str, Any] | None) -> dict[str, Callable[[Path], Any]]:
    import json

    if monitoring is None:
        return {}
    return {MONITORING_JSON: lambda p: p.write_text(json.dumps(monitoring, indent=1), encoding="utf-8")}
