"""Good conduct only lowers risk: a monotone (non-increasing) constraint in the supervised models,
and for unlabelled types no anomaly and a push down in the reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskgraph.settings import ModelSettings
from scoring.model import CrossFittedRiskModel
from scoring.unsupervised import anomaly_quantile, deviation_contributions


def test_supervised_models_learn_good_conduct_as_non_increasing_risk() -> None:
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame(
        {
            "months_paid_in_full": rng.integers(0, 36, n).astype(float),
            "arrears_months": rng.integers(0, 6, n).astype(float),
        }
    )
    # a label that (spuriously) rises with good conduct: the constraint must not follow it
    y = (rng.random(n) < 0.1 + 0.4 * (X["months_paid_in_full"] > 30) + 0.1 * X["arrears_months"] / 6).astype(int)
    model = CrossFittedRiskModel(ModelSettings(n_estimators=40, folds=3, threads=1))
    assert model._params(y.to_numpy(), list(X.columns))["monotone_constraints"] == [-1, 0]
    model.fit(X, y.to_numpy())
    grid = pd.DataFrame({"months_paid_in_full": np.arange(0, 37, 4.0), "arrears_months": 2.0})
    risk = model.margin(grid)
    assert np.all(np.diff(risk) <= 1e-9), risk


def test_settings_may_override_the_constraint() -> None:
    model = CrossFittedRiskModel(ModelSettings(monotone={"months_paid_in_full": 0}))
    assert "monotone_constraints" not in model._params(np.array([0, 1]), ["months_paid_in_full", "x"])


def test_unlabelled_types_read_good_conduct_as_a_push_down() -> None:
    X = pd.DataFrame({"commitments_fulfilled": [0.0] * 19 + [3.0], "arrears_months": [0.0] * 19 + [3.0]})
    dev = deviation_contributions(X)
    assert dev.loc[19, "commitments_fulfilled"] < 0 < dev.loc[19, "arrears_months"]
    alone = pd.DataFrame({"commitments_fulfilled": [0.0] * 19 + [5.0], "x": np.arange(20.0)})
    assert np.allclose(anomaly_quantile(alone, 1), anomaly_quantile(alone[["x"]], 1))
