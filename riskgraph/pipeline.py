"""The end-to-end job: ingest -> store -> projection -> features -> rules -> rings -> scores
-> explanations -> outputs. Each stage is a plain function; `run_pipeline` times them."""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

import riskgraph
from features.build import build_features
from features.graph_features import add_graph_features
from features.rings import detect_rings
from explain.report import write_report
from graph.contract import ENTITY_TYPES
from graph.dataset import Dataset, load_dataset
from graph.factory import open_store
from graph.projection import Projection
from riskgraph.results import ResultsDB
from rules.engine import RuleResult, evaluate
from rules.pack import DEFAULT_PACK_DIR, load_packs
from riskgraph.settings import Settings
from scoring.score import SCORE_COLUMNS, EntityScores, score_entity_type
from scoring.registry import ModelRegistry

log = logging.getLogger("riskgraph.pipeline")


@dataclass
class StageTimer:
    timings: dict[str, float] = field(default_factory=dict)
    progress: bool = True

    @contextmanager
    def stage(self, name: str, bar: tqdm | None = None) -> Iterator[None]:
        t0 = time.perf_counter()
        if bar is not None:
            bar.set_description(name)
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        log.info("stage %s done in %.2fs", name, self.timings[name])
        if bar is not None:
            bar.update(1)


@dataclass
class PipelineResult:
    dataset: Dataset
    scores: pd.DataFrame
    rule_hits: pd.DataFrame
    rings: pd.DataFrame
    models: dict[str, EntityScores]
    manifest: dict[str, Any]


STAGES = ("ingest", "read", "projection", "features", "rules", "rings", "scoring", "outputs")


def run_pipeline(*, data: Path, out: Path, settings: Settings, store_url: str | None = None) -> PipelineResult:
    """Run every stage and write the output contract into `out`."""
    timer = StageTimer(progress=settings.progress)
    store = open_store(store_url or settings.store_url, settings)
    bar = tqdm(total=len(STAGES), disable=not settings.progress, unit="stage", leave=False)
    try:
        with timer.stage("ingest", bar):
            loaded = load_dataset(data)
            snapshot = store.load(loaded)
        with timer.stage("read", bar):
            dataset = store.dataset()
        with timer.stage("projection", bar):
            proj = Projection(dataset)
        with timer.stage("features", bar):
            features = build_features(dataset, proj)
            features = add_graph_features(features, proj)
        with timer.stage("rules", bar):
            rule_result = evaluate_rules(dataset, settings)
        with timer.stage("rings", bar):
            ring_result = detect_rings(dataset)
        with timer.stage("scoring", bar):
            db = ResultsDB(settings.results_database_url)
            registry = ModelRegistry(db)
            models = {
                t: score_entity_type(t, dataset=dataset, proj=proj, features=features[t],
                                     rule_result=rule_result, rings=ring_result.members,
                                     settings=settings, registry=registry)
                for t in ENTITY_TYPES
            }
            scores = pd.concat([m.table for m in models.values()], ignore_index=True)
        with timer.stage("outputs", bar):
            manifest = {
                "riskgraph_version": riskgraph.__version__,
                "input": str(data), "input_hash": loaded.content_hash,
                "store": _redact(store_url or settings.store_url),
                "snapshot_loaded_at": snapshot.loaded_at.isoformat(),
                "row_counts": dataset.row_counts(),
                "skipped": dataset.skipped + [f"rule {r}: {why}" for r, why in rule_result.skipped],
                "models": {t: {"version": m.model_version, "kind": m.kind, "metrics": m.public_metrics()}
                           for t, m in models.items()},
                "bands": settings.bands.model_dump(), "scorecard": settings.scorecard.model_dump(),
                "python": platform.python_version(),
            }
            rings_members = ring_result.members
            files = {
                "scores.csv": lambda p: scores[SCORE_COLUMNS].to_csv(p, index=False),
                "rule_hits.csv": lambda p: rule_result.hits.drop(columns=["grade_cap"], errors="ignore").to_csv(p, index=False),
                "rings.csv": lambda p: rings_members[["ring_id", "ring_type", "ring_score", "entity_type", "entity_id"]].to_csv(p, index=False),
                "report.html": lambda p: write_report(p, scores=scores, models=models, rings=ring_result.rings,
                                                      manifest=manifest, settings=settings),
            }
            _write_outputs(out, files)
            save_feature_matrices(settings.home / "features", models)
            db.replace_results({"scores": scores, "rule_hits": rule_result.hits,
                                "rings": ring_result.rings, "ring_members": rings_members, "ring_edges": ring_result.edges,
                                "runs": pd.DataFrame([{"manifest": json.dumps(manifest, default=str)}])})
        bar.close()
        manifest["timings_s"] = timer.timings
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str))
        return PipelineResult(dataset, scores, rule_result.hits, rings_members, models, manifest)
    finally:
        bar.close()
        store.close()


def evaluate_rules(dataset: Dataset, settings: Settings) -> RuleResult:
    """Run the configured rule packs with the settings' overrides and disabled rules."""
    packs = load_packs(settings.rule_packs or DEFAULT_PACK_DIR)
    return evaluate(dataset, packs, overrides=settings.rule_overrides, disabled=settings.rules_disabled)


def save_feature_matrices(folder: Path, models: dict[str, EntityScores]) -> None:
    """Keep each type's model matrix so the API can explain any entity on demand."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, m in models.items():
        target = folder / f"{t}.parquet"
        if m.matrix is None:
            target.unlink(missing_ok=True)
            continue
        tmp = folder / f".{t}.parquet.tmp"
        m.matrix.to_parquet(tmp)
        os.replace(tmp, target)


def _write_outputs(out: Path, files: dict[str, Callable[[Path], Any]]) -> None:
    """Write every file into a staging folder, then move them in: no half-written output."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, write in files.items():
            write(staging / name)
        for name in files:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _redact(url: str) -> str:
    """A store URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
