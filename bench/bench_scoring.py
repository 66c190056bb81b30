"""Ranking quality against the generator's whole truth, model vs an attribute-only baseline.

    .venv/bin/python bench/bench_scoring.py --persons 50000 --seed 1
    .venv/bin/python bench/bench_scoring.py --persons 1000000 --timing-only

Scores of labelled entities are their out-of-fold predictions, so ROC-AUC over all entities is
honest; "unlabelled" restricts it to entities the model never saw a label for (stricter).
The timing part measures features + scoring (+ explanations of the riskiest `explain_top`)
on the same data, after ingest, rules and rings (which are timed by bench_pipeline.py).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from composer.pipeline import run_pipeline
from graph.contract import ENTITY_TYPES
from riskgraph.settings import Settings
from scoring.baseline import attribute_baseline
from synth.generator import generate

TOP_K = 100


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def quality_rows(
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    labels: pd.DataFrame,
    baselines: dict[str, pd.Series | None],
    kinds: dict[str, str],
) -> list[dict]:
    """One row per (entity type, scorer) with ROC-AUC (all, unlabelled) and top-K precision."""
    rows = []
    for t in ENTITY_TYPES:
        s = scores[scores["entity_type"] == t].set_index("entity_id")["risk_score"]
        bad = set(truth.loc[truth["entity_type"] == t, "entity_id"])
        if len(s) == 0 or not bad:
            continue
        y = s.index.isin(bad).astype(int)
        unl = ~s.index.isin(labels.loc[labels["entity_type"] == t, "entity_id"])
        for name, r in (("model", s), ("baseline (attributes)", baselines.get(t))):
            if r is None:
                rows.append({"type": t, "scorer": name, "kind": "too few labels"})
                continue
            r = r.reindex(s.index).to_numpy()
            top = np.argsort(-r, kind="mergesort")[:TOP_K]
            rows.append(
                {
                    "type": t,
                    "scorer": name,
                    "kind": kinds[t] if name == "model" else "supervised",
                    "entities": len(s),
                    "fraud": int(y.sum()),
                    "auc_all": _auc(y, r),
                    "auc_unlabelled": _auc(y[unl], r[unl]),
                    "top_k_precision": float(y[top].mean()),
                    "top_k": min(TOP_K, len(s)),
                }
            )
    return rows


def markdown(rows: list[dict]) -> str:
    out = [
        "| type | scorer | kind | entities | fraud | ROC-AUC all | ROC-AUC unlabelled | top-k precision |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "auc_all" not in r:
            out.append(f"| {r['type']} | {r['scorer']} | {r['kind']} | | | | | |")
            continue
        out.append(
            f"| {r['type']} | {r['scorer']} | {r['kind']} | {r['entities']:,} | {r['fraud']} | "
            f"{_fmt(r['auc_all'])} | {_fmt(r['auc_unlabelled'])} | "
            f"{r['top_k_precision']:.2f} (top {r['top_k']}) |"
        )
    return "\n".join(out)


def timing(data: Path, work: Path) -> dict[str, float]:
    """Features + scoring (with explanations of the top `explain_top`) after ingest, rules, rings."""
    from composer.pipeline import evaluate_rules, explain_types, score_types
    from features.build import build_features
    from features.graph_features import add_graph_features
    from features.rings import detect_rings
    from graph.dataset import load_dataset
    from graph.projection import Projection
    from riskgraph.results import ResultsDB
    from scoring.registry import ModelRegistry

    settings = Settings(home=work / "home-t", store_url=f"memory://{work / 'store-t'}", progress=False)
    settings.home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dataset = load_dataset(data)
    proj = Projection(dataset)
    t_load = time.perf_counter() - t0
    rules = evaluate_rules(dataset, settings)
    rings = detect_rings(dataset, rules.hits, settings.rings)
    t1 = time.perf_counter()
    features = add_graph_features(build_features(dataset, proj), proj)
    t2 = time.perf_counter()
    registry = ModelRegistry(ResultsDB.of(settings))
    explain_types(
        score_types(dataset, proj, features, rules, rings, settings, registry), dataset, proj, rules, rings, settings
    )
    t3 = time.perf_counter()
    return {
        "load+projection": t_load,
        "rules+rings": t1 - t0 - t_load,
        "features": t2 - t1,
        "scoring+explanations": t3 - t2,
        "features+scoring": t3 - t1,
    }


def explanation_timing(model, X: pd.DataFrame, rows: int = 2_000) -> dict[str, float]:
    """Seconds to explain `rows` rows: LightGBM pred_contrib vs SHAP TreeExplainer (same booster)."""
    import shap

    Xs = model._align(X.iloc[:rows])
    t0 = time.perf_counter()
    ours = model.contributions(Xs).to_numpy()
    t1 = time.perf_counter()
    explainer = shap.TreeExplainer(model.final_)
    theirs = np.asarray(explainer.shap_values(Xs))
    t2 = time.perf_counter()
    theirs = theirs[1] if theirs.ndim == 3 else theirs
    return {
        "rows": len(Xs),
        "pred_contrib_s": t1 - t0,
        "shap_tree_explainer_s": t2 - t1,
        "max_abs_difference": float(np.max(np.abs(ours - theirs))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=None, help="an existing generated dataset (with truth/)")
    ap.add_argument("--timing-only", action="store_true", help="skip the quality table")
    ap.add_argument("--timing", action="store_true", help="also time features + scoring")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rg-bench-scoring-"))
    data = args.data
    if data is None:
        data = work / "data"
        t0 = time.perf_counter()
        generate(persons=args.persons, seed=args.seed, out=data, progress=False)
        print(f"generated {args.persons:,} persons (seed {args.seed}) in {time.perf_counter() - t0:.1f}s")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.timing_only:
        settings = Settings(home=work / "home", store_url=f"memory://{work / 'store'}", progress=False)
        t0 = time.perf_counter()
        result = run_pipeline(data=data, out=work / "out", settings=settings)
        print(f"pipeline in {time.perf_counter() - t0:.1f}s; stages: {result.manifest['timings_s']}")
        truth = pd.read_csv(data / "truth" / "truth.csv", dtype=str)
        labels = result.dataset.table("labels")
        baselines = {t: attribute_baseline(result.dataset, t, settings.model) for t in ENTITY_TYPES}
        kinds = {t: m.kind for t, m in result.models.items()}
        print(markdown(quality_rows(result.scores, truth, labels, baselines, kinds)))
        person = result.models["person"]
        if person.model is not None:
            tm = explanation_timing(person.model, person.matrix)
            print(
                f"\nexplaining {tm['rows']:,} persons: pred_contrib {tm['pred_contrib_s']:.2f}s, "
                f"SHAP TreeExplainer {tm['shap_tree_explainer_s']:.2f}s "
                f"(max |difference| {tm['max_abs_difference']:.2e})"
            )
    if args.timing or args.timing_only:
        tm = timing(data, work)
        print("| stage | seconds |\n|---|---|")
        for k, v in tm.items():
            print(f"| {k} | {v:.1f} |")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
