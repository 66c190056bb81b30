"""The realistic synthetic world (synth/realistic.py): does the graph model still beat simpler ones?

    .venv/bin/python bench/bench_realistic.py --persons 20000 --seed 1 --label-share 0.5

One pipeline run on `riskgraph synth --difficulty realistic`, then per entity type, ROC-AUC against
the generator's whole truth on the entities WITHOUT a label (which no model saw), for:
- the pipeline's model (graph features, rules, rings);
- the attribute-only baseline (scoring/baseline.py: the entity table's own columns);
- LightGBM on per-entity aggregates without graph features (features/build.py's per-entity
  aggregates minus shared-identifier and same-day-pair columns), same folds and labels.
For persons, a bootstrap 95% interval of (model - aggregates) AUC on the unlabelled persons.
Ring precision and recall: the entities the pipeline put in rings against the truth's ring members.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from composer.pipeline import model_excluded_columns, run_pipeline
from features.build import build_features
from graph.contract import ENTITY_TYPES
from graph.dictionary import load_dictionary
from graph.projection import Projection
from riskgraph.settings import Settings
from scoring.baseline import attribute_baseline
from scoring.model import CrossFittedRiskModel
from scoring.score import assign_folds, labels_of
from synth.generator import generate

GRAPH_COLUMNS = ("shares_", "top_pair_", "nb_", "labelled_")  # graph-derived: not per-entity aggregates
BOOTSTRAP = 1000


def aggregate_model(dataset, entity_type: str, settings: Settings, columns) -> pd.Series | None:  # type: ignore[no-untyped-def]
    """Out-of-fold (labelled) / fitted (others) risk from per-entity aggregates, no graph features."""
    proj = Projection(dataset)
    excluded = model_excluded_columns(dataset, columns, settings.model.use_protected_attributes)
    X = build_features(dataset, proj, exclude=excluded)[entity_type]
    X = X[[c for c in X.columns if not c.startswith(GRAPH_COLUMNS)]]
    y = labels_of(dataset, entity_type, X.index)
    if min(int(y.sum()), int((y == 0).sum())) < settings.model.min_positives:
        return None
    fold_of = assign_folds(y, settings.model)
    model = CrossFittedRiskModel(settings.model).fit(X.loc[y.index], y.to_numpy(), folds=fold_of.to_numpy())
    risk = pd.Series(model.predict_proba(X), index=X.index)
    risk.loc[y.index] = model.oof_
    return risk


def auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def bootstrap_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float]:
    """95% interval of AUC(a) - AUC(b) over resamples of the entities."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            diffs.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label-share", type=float, default=0.5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(
            persons=args.persons,
            seed=args.seed,
            out=root / "data",
            label_share=args.label_share,
            progress=False,
            difficulty="realistic",
        )
        settings = Settings(home=root / "home", store_url=f"memory://{root / 'store'}", progress=False)
        t0 = time.perf_counter()
        result = run_pipeline(data=root / "data", out=root / "out", settings=settings)
        print(f"pipeline {time.perf_counter() - t0:.1f}s on {args.persons:,} persons (realistic, seed {args.seed})")
        truth = pd.read_csv(root / "data" / "truth" / "truth.csv", dtype=str, keep_default_na=False)
        labels = pd.read_csv(root / "data" / "labels.csv", dtype={"entity_id": str})
        columns = load_dictionary(root / "data")
        scores = result.scores
        print(
            "| type | labels (fraud/clean) | unlabelled (fraud) | model | attribute baseline | aggregates, no graph |"
        )
        print("|---|---|---|---|---|---|")
        person_parts = None
        for t in ENTITY_TYPES:
            s = scores[scores["entity_type"] == t].set_index(
                scores.loc[scores["entity_type"] == t, "entity_id"].astype(str)
            )
            risk = s["risk_score"]
            bad = set(truth.loc[truth["entity_type"] == t, "entity_id"])
            own = labels[labels["entity_type"] == t]
            unl = ~risk.index.isin(set(own["entity_id"]))
            y = risk.index.isin(bad).astype(int)
            base = attribute_baseline(result.dataset, t, settings.model)
            agg = aggregate_model(result.dataset, t, settings, columns)
            row = [auc(y[unl], risk.to_numpy()[unl])]
            for other in (base, agg):
                row.append(None if other is None else auc(y[unl], other.reindex(risk.index).to_numpy()[unl]))
            fmt = ["n/a" if v is None else f"{v:.3f}" for v in row]
            print(
                f"| {t} | {int(own['label'].sum())}/{int((own['label'] == 0).sum())} | {int(unl.sum()):,} "
                f"({int(y[unl].sum())}) | {fmt[0]} | {fmt[1]} | {fmt[2]} |"
            )
            if t == "person" and agg is not None:
                person_parts = (y[unl], risk.to_numpy()[unl], agg.reindex(risk.index).to_numpy()[unl])
        if person_parts is not None:
            yy, model, agg = person_parts
            lo, hi = bootstrap_difference(yy, model, agg, args.seed)
            print(
                f"person, unlabelled: model - aggregates ROC-AUC {auc(yy, model) - auc(yy, agg):+.3f}, "
                f"bootstrap 95% interval [{lo:+.3f}, {hi:+.3f}] ({BOOTSTRAP} resamples)"
            )
        found = set(zip(result.rings["entity_type"], result.rings["entity_id"].astype(str)))
        ring_truth = truth[truth["ring_id"] != ""]
        real = set(zip(ring_truth["entity_type"], ring_truth["entity_id"]))
        hit = len(found & real)
        print(
            f"rings: {len(found):,} entities in detected rings, {len(real):,} true ring members; "
            f"precision {hit / max(len(found), 1):.3f}, recall {hit / max(len(real), 1):.3f}"
        )


if __name__ == "__main__":
    main()
