"""Monitoring a 1M-entity run: profile of the run (score and every feature's bins), PSI of each
against the previous run and the training population, grade migration and rule hit rates.

    .venv/bin/python bench/bench_monitoring.py --persons 20000 --rows 1000000

A real pipeline run on `--persons` synthetic persons gives the person model matrix, scores and
rule hits; its rows are resampled to `--rows` (with a little noise, so values stay realistic but
not copied), three times: the training population, the previous run and the new run. The
monitoring stage's own functions (composer/monitoring.py) then run on them, as the pipeline
calls them; the figure to keep under 30 s is `monitoring` (profile + comparison).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from composer.monitoring import compare_run, run_profile
from composer.pipeline import run_pipeline
from riskgraph.settings import Settings
from scoring.score import EntityScores
from synth.generator import generate


def resampled(scores: EntityScores, rows: int, seed: int) -> EntityScores:
    """`rows` entities drawn from the run's person rows (numeric columns jittered by 1%)."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(scores.table), rows)
    assert scores.matrix is not None
    matrix = scores.matrix.iloc[pick].reset_index(drop=True)
    for c in matrix.select_dtypes("number").columns:
        matrix[c] = matrix[c].to_numpy(dtype=np.float64) * rng.normal(1.0, 0.01, rows)
    ids = pd.Index([f"P{i:08d}" for i in range(rows)], name="entity_id")
    matrix.index = ids
    table = scores.table.iloc[pick].reset_index(drop=True).assign(entity_id=ids.to_numpy())
    return EntityScores("person", scores.kind, scores.model_version, table, matrix=matrix)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(persons=args.persons, seed=args.seed, out=root / "data", progress=False)
        settings = Settings(home=root / "home", store_url=f"memory://{root / 'store'}", progress=False)
        run = run_pipeline(data=root / "data", out=root / "out", settings=settings)
        person = run.models["person"]
        hits = run.rule_hits[run.rule_hits["entity_type"] == "person"]
        t0 = time.perf_counter()
        training, before, now = (resampled(person, args.rows, s) for s in (1, 2, 3))
        print(f"resampled 3 x {args.rows:,} rows x {now.matrix.shape[1]} columns in {time.perf_counter() - t0:.1f}s")
        reference = run_profile({"person": training}, hits)
        previous = run_profile({"person": before}, hits)

        t0 = time.perf_counter()
        profile = run_profile({"person": now}, hits)
        t1 = time.perf_counter()
        report = compare_run(
            run_id="bench",
            profile=profile,
            scored={"person": now},
            scores=now.table,
            previous_id="previous",
            previous=previous,
            previous_grades=before.table[["entity_type", "entity_id", "grade"]],
            references={"person": reference["types"]["person"]},
        )
        t2 = time.perf_counter()
        person_report = report["types"]["person"]
        print(
            f"monitoring {args.rows:,} entities x {now.matrix.shape[1]} features: {t2 - t0:.1f}s "
            f"(profile {t1 - t0:.1f}s, PSI vs previous and training + grade migration + rules {t2 - t1:.1f}s); "
            f"score PSI {person_report['score_psi']}, {len(report['alerts'])} alerts"
        )


if __name__ == "__main__":
    main()
