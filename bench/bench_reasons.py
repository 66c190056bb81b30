"""Every row's margin and path reasons (`CrossFittedRiskModel.margin_and_reasons`) on one lane
and on the model settings' threads, on a fixed random matrix; the outputs must be identical.

    .venv/bin/python bench/bench_reasons.py [--rows 1000000] [--features 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from riskgraph.settings import ModelSettings
from scoring.model import CrossFittedRiskModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=60)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(args.rows, args.features)), columns=[f"f{i}" for i in range(args.features)])
    logit = X["f0"] + X["f1"] * X["f2"] - 0.5 * X["f3"] - 3
    y = (rng.random(args.rows) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    train = rng.choice(args.rows, min(args.rows, 20_000), replace=False)
    model = CrossFittedRiskModel(ModelSettings()).fit(X.iloc[train], y[train])
    print(f"{args.rows:,} rows x {args.features} features, {model.final_.num_trees()} trees")
    results: dict[int, tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for threads in (1, model.settings.threads, 1, model.settings.threads):
        model.settings = model.settings.model_copy(update={"threads": threads})
        t0 = time.perf_counter()
        out = model.margin_and_reasons(X)
        took = time.perf_counter() - t0
        if threads in results:
            assert all(np.array_equal(a, b) for a, b in zip(out, results[threads][1]))
        results[threads] = (took, out)
        print(f"threads={threads}: {took:.2f} s")
    one, many = results[1][1], results[model.settings.threads][1]
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(one, many)), "lanes changed a row"
    print("identical outputs on one lane and on", model.settings.threads)


if __name__ == "__main__":
    main()
