"""Risk score for entity types without enough labels.

Documented heuristic, not a calibrated probability: three signals, each mapped to 0..1, are
combined as independent evidence, r = 1 - (1 - r_rules)(1 - r_rings)(1 - r_anomaly):
- r_rules = 1 - exp(-sum of rule-hit severities / RULE_SCALE);
- r_rings = the highest score of the rings the entity belongs to, with the entity's own label
  taken out of the ring's label share (scoring/score.py `ring_scores_without_own_label`), so
  the few labels a type has can honestly check the ranking;
- r_anomaly = ANOMALY_CEILING * q ** ANOMALY_POWER, q the entity's IsolationForest anomaly
  quantile among its type, so only the most unusual few get noticeable risk. Good conduct
  (features/conduct.py GOOD_CONDUCT) is left out: a rare kept commitment is no anomaly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from features.conduct import GOOD_CONDUCT

RULE_SCALE = 4.0
ANOMALY_CEILING = 0.15
ANOMALY_POWER = 8
BASE_RISK = 0.005


def anomaly_quantile(X: pd.DataFrame, seed: int) -> np.ndarray:
    """0..1 rank of IsolationForest anomaly scores (1 = most unusual)."""
    num = X.select_dtypes(include=[np.number]).drop(columns=list(GOOD_CONDUCT), errors="ignore").astype(np.float64)
    if len(num) < 10 or num.shape[1] == 0:
        return np.zeros(len(X))
    num = num.fillna(num.median()).fillna(0)
    forest = IsolationForest(n_estimators=100, random_state=seed, n_jobs=1).fit(num)
    score = -forest.score_samples(num)
    return np.asarray(pd.Series(score).rank(pct=True, method="average").to_numpy(), dtype=np.float64)


def unsupervised_risk(X: pd.DataFrame, severity_sum: np.ndarray, ring_score: np.ndarray, seed: int) -> pd.DataFrame:
    """Risk and its three components per row of X."""
    r_rules = 1 - np.exp(-np.asarray(severity_sum, dtype=float) / RULE_SCALE)
    r_rings = np.clip(np.asarray(ring_score, dtype=float), 0, 1)
    r_anom = ANOMALY_CEILING * anomaly_quantile(X, seed) ** ANOMALY_POWER
    risk = 1 - (1 - BASE_RISK) * (1 - r_rules) * (1 - r_rings) * (1 - r_anom)
    return pd.DataFrame({"risk": risk, "rules": r_rules, "rings": r_rings, "anomaly": r_anom}, index=X.index)


def deviation_contributions(X: pd.DataFrame) -> pd.DataFrame:
    """Robust z-scores (how far above its type's median each value is), for unlabelled types."""
    num = X.select_dtypes(include=[np.number]).astype(np.float64)
    med = num.median()
    mad = (num - med).abs().median().replace(0, np.nan)
    spread = mad.fillna(num.std().replace(0, np.nan)).fillna(1.0)
    out = ((num - med) / spread).fillna(0).clip(lower=0) / 10.0
    good = [c for c in GOOD_CONDUCT if c in out.columns]
    out[good] = -out[good]  # more good conduct than is usual: a push down, never up
    return out


RULES_ABSENT, RINGS_ABSENT = -0.05, -0.05  # small pushes down: "no rule flags", "in no ring"


def unsupervised_contributions(X: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    """What explains an unsupervised score: the rule and ring components (or, when absent, a small
    push down that says so) and how far each feature sits above its type's median."""
    out = deviation_contributions(X)
    rules = parts["rules"].to_numpy()
    out["rule_severity_sum"] = np.where(rules > 0, rules * 2, RULES_ABSENT)
    if "rings" in X:
        rings_part = parts["rings"].to_numpy()
        out["rings"] = np.where(rings_part > 0, rings_part * 2, RINGS_ABSENT)
    return out
