"""What a run writes before its commit: its result tables (run-scoped, invisible until the
commit), its feature matrices and reason columns, the output files and report.html in its staging
folder. The composer (composer/pipeline.py) decides when; this module only writes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from composer.monitoring import MonitoringInputs, monitor
from composer.runs import Run, private_dir
from explain.report import write_report
from features.rings import RingResult
from riskgraph.results import RESULT_TABLES, ResultsDB
from riskgraph.row_groups import WIDE_ROW_GROUP_ROWS
from riskgraph.settings import Settings
from scoring.attributions import save_reason_columns
from scoring.inputs import save_row_hashes
from scoring.score import EntityScores


def monitor_and_report(
    path: Path,
    scores: pd.DataFrame,
    scored: dict[str, EntityScores],
    ring_result: RingResult,
    manifest: dict[str, Any],
    settings: Settings,
    fairness: pd.DataFrame,
    baselines: dict[str, dict[str, Any] | None],
    compare_with: MonitoringInputs,
    hits: pd.DataFrame,
    plots: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """The run's profile and monitoring (pure: no database), then report.html with them."""
    t0 = time.perf_counter()
    profile, monitoring = monitor(compare_with, run_id=manifest["run_id"], scored=scored, scores=scores, hits=hits)
    t1 = time.perf_counter()
    write_report(
        path,
        scores=scores,
        models=scored,
        rings=ring_result.rings,
        manifest=manifest,
        settings=settings,
        fairness=fairness,
        monitoring=monitoring,
        baselines=baselines,
        plots=plots,
    )
    return profile, monitoring, {"monitoring": round(t1 - t0, 3), "report": round(time.perf_counter() - t1, 3)}


def write_results(
    db: ResultsDB, run: Run, scores: pd.DataFrame, hits: pd.DataFrame, ring_result: RingResult, tables: list[str]
) -> None:
    """The run's result tables, staged under run-scoped names (invisible until the commit)."""
    frames = {
        "scores": scores,
        "rule_hits": hits,
        "rings": ring_result.rings,
        "ring_members": ring_result.members,
        "ring_edges": ring_result.edges,
    }
    for i, name in enumerate(RESULT_TABLES):
        if i == 2:
            run.fault("mid_results")
        tables.append(db.write_run_table(run.run_id, name, frames[name]))


def save_feature_matrices(folder: Path, models: dict[str, EntityScores]) -> None:
    """Keep each type's model matrix (the inputs behind its scores) and its reason columns
    (every entity's strongest reasons, which the API words when asked)."""
    for t, m in models.items():
        if m.matrix is not None:
            m.matrix.to_parquet(folder / f"{t}.parquet", row_group_size=WIDE_ROW_GROUP_ROWS)
            save_row_hashes(folder, t, m.matrix)  # what each decision record references (replay)
        if m.reasons is not None:
            save_reason_columns(folder, t, m.table["entity_id"], m.reasons)


def stage_outputs(staging: Path, files: dict[str, Callable[[Path], Any]]) -> None:
    """Write every output file into the run's staging folder (moved in at the commit)."""
    private_dir(staging)
    for name, write in files.items():
        write(staging / name)


def write_json(folder: Path, name: str, value: Any) -> None:
    """`value` as indented JSON in `folder/name`, on disk before this returns."""
    path = folder / name
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str))
    with open(path, "rb") as f:
        os.fsync(f.fileno())
