"""The rule-evidence term of the supervised margin: what the rules say, weighed by the labels.

Labels are few, late (months after the act) and noisy, and a scheme that began after they were
drawn has none. Trees only learn a rule's weight where labelled rows with its hits exist: hits of
a rule no label has confirmed fall in leaves shaped by other rows, and a handful of wrong clean
labels is enough to bury them. The rules are the administration's own knowledge of the schemes,
independent of the labels, so the margin gets one linear term in their evidence:

    margin = trees(x) + w * z,   z = logit(1 - (1 - BASE_RISK) * exp(-rule_severity_sum / RULE_SCALE))

z is the log-odds of the unsupervised rule risk (scoring/unsupervised.py, same constants). The
weight w is fitted on the labels, never set by hand: a logistic regression of the labels on the
trees' out-of-fold margin and z gives coefficients (a, b), and w = b / a (0 when the labels do not
support a positive weight). Platt calibration is then fitted on the combined out-of-fold margin,
so risk stays a calibrated probability. In reasons, the term is credited to `rule_severity_sum`
as w * (z - its mean over the training rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from scoring.unsupervised import BASE_RISK, RULE_SCALE

EVIDENCE_FEATURE = "rule_severity_sum"


def rule_log_odds(X: pd.DataFrame) -> np.ndarray:
    """z per row of X: the log-odds of the unsupervised rule risk (0 severity where absent)."""
    sev = np.nan_to_num(np.asarray(X[EVIDENCE_FEATURE], dtype=np.float64)).clip(min=0)
    clean = (1 - BASE_RISK) * np.exp(-sev / RULE_SCALE)  # 1 - risk
    return np.asarray(np.log1p(-clean) - np.log(clean), dtype=np.float64)


def evidence_weight(oof_margin: np.ndarray, z: np.ndarray, y: np.ndarray) -> float:
    """w = b / a of the labels' logistic regression on (out-of-fold margin, z); 0 if not positive."""
    if np.ptp(z) == 0 or np.ptp(oof_margin) == 0 or not 0 < y.sum() < len(y):
        return 0.0
    a, b = LogisticRegression(C=1e6, max_iter=1000).fit(np.column_stack([oof_margin, z]), y).coef_[0]
    return float(b / a) if a > 0 and b > 0 else 0.0


def merge_reason(
    idx: np.ndarray, val: np.ndarray, feature: int, contribution: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Add `contribution` to `feature`'s slot in each row's strongest reasons (idx, val as
    scoring/attributions.py `top_reasons`), taking a slot when it is stronger than the weakest."""
    n, k = idx.shape
    if n == 0 or k == 0:
        return idx, val
    contribution = contribution.astype(np.float32)
    mine = idx == feature
    val = np.where(mine, val + contribution[:, None], val)
    has = mine.any(axis=1)
    idx2 = np.hstack([idx, np.where(has, -1, feature).astype(np.int16)[:, None]])
    val2 = np.hstack([val, np.where(has, 0, contribution).astype(np.float32)[:, None]])
    size = np.where(idx2 >= 0, np.abs(val2), -1.0)
    order = np.argsort(-size, axis=1, kind="stable")[:, :k]
    rows = np.arange(n)[:, None]
    idx2, val2 = idx2[rows, order], val2[rows, order]
    idx2 = np.where(val2 != 0, idx2, -1).astype(np.int16)
    return idx2, np.where(idx2 >= 0, val2, 0).astype(np.float32)
