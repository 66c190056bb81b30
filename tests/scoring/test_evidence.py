"""The rule-evidence term (scoring/evidence.py): weighed by the labels, never negative, part of
the margin everywhere the model scores, and credited to rule_severity_sum in reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskgraph.settings import ModelSettings
from scoring.evidence import EVIDENCE_FEATURE, evidence_weight, merge_reason, rule_log_odds
from scoring.model import CrossFittedRiskModel


def _world(seed: int = 5, n: int = 4_000) -> tuple[pd.DataFrame, np.ndarray]:
    """x0 drives risk; rule hits (severity 2 or 3) come with fraud, whatever x0 says."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"x{i}" for i in range(4)])
    bad = rng.random(n) < 1 / (1 + np.exp(-(1.5 * X["x0"] - 3)))
    hit = np.where(bad, rng.random(n) < 0.6, rng.random(n) < 0.03)
    X[EVIDENCE_FEATURE] = np.where(hit, rng.choice([2.0, 3.0], n), 0.0)
    return X, bad.astype(int)


def test_rule_log_odds_is_the_unsupervised_rule_risk_in_log_odds() -> None:
    z = rule_log_odds(pd.DataFrame({EVIDENCE_FEATURE: [0.0, 4.0, np.nan]}))
    risk = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(risk, [0.005, 1 - 0.995 * np.exp(-1), 0.005])


def test_weight_follows_the_labels_and_is_never_negative() -> None:
    rng = np.random.default_rng(1)
    margin, z = rng.normal(size=2_000), rng.normal(size=2_000)
    y = (rng.random(2_000) < 1 / (1 + np.exp(-(margin + z)))).astype(int)
    assert evidence_weight(margin, z, y) == pytest.approx(1.0, abs=0.25)
    assert evidence_weight(margin, -z, y) == 0.0  # labels against the rules: no term
    assert evidence_weight(margin, np.zeros(2_000), y) == 0.0


def test_model_margin_holds_the_term_and_reasons_credit_it() -> None:
    X, y = _world()
    model = CrossFittedRiskModel(ModelSettings()).fit(X.iloc[:2_000], y[:2_000])
    assert model.evidence_weight_ > 0
    plain = CrossFittedRiskModel(ModelSettings(rule_evidence=False)).fit(X.iloc[:2_000], y[:2_000])
    assert plain.evidence_weight_ == 0.0
    test = X.iloc[2_000:]
    margin, idx, val = model.margin_and_reasons(test)
    assert np.array_equal(margin, model.margin(test))
    trees = model.final_.predict(model._renamed(model._align(test)), raw_score=True)
    np.testing.assert_allclose(margin - trees, model.evidence_weight_ * rule_log_odds(test))
    # TreeSHAP contributions still sum to the margin (the term, centred, in rule_severity_sum)
    contrib = model.contributions(test)
    expected = margin - contrib.sum(axis=1).to_numpy()
    np.testing.assert_allclose(expected, expected[0], atol=1e-6)
    hit = test[EVIDENCE_FEATURE].to_numpy() > 0
    ev = model.features_.index(EVIDENCE_FEATURE)
    assert np.mean(idx[hit, 0] == ev) > 0.5  # a rule hit is most rows' strongest reason


def test_merge_reason_adds_to_a_slot_or_takes_the_weakest() -> None:
    idx = np.array([[0, 1, -1], [2, 0, 1]], dtype=np.int16)
    val = np.array([[0.5, -0.2, 0.0], [0.9, 0.4, 0.1]], dtype=np.float32)
    i, v = merge_reason(idx, val, 1, np.array([0.6, 0.3]))
    assert i.tolist() == [[0, 1, -1], [2, 0, 1]]
    np.testing.assert_allclose(v, [[0.5, 0.4, 0.0], [0.9, 0.4, 0.4]], rtol=1e-6)
    i, v = merge_reason(idx, val, 3, np.array([0.0, -1.0]))
    assert i.tolist() == [[0, 1, -1], [3, 2, 0]]
