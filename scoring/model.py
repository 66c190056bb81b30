"""Gradient-boosted risk model with out-of-fold training and calibration.

`CrossFittedRiskModel` trains one LightGBM model per stratified fold. Each labelled entity's
out-of-fold prediction comes from the model that never saw its label; every other entity is
scored by a final model refitted on all labelled rows (one model to predict and explain, not
K). Raw margins are calibrated with Platt scaling fitted on the out-of-fold margins, so
probabilities and reported metrics are honest.

Feature names are the user's (any extra column is a feature), but LightGBM refuses names with
JSON punctuation and rewrites spaces: the boosters see positional stand-ins (`lightgbm_names`)
and everything this class reports (importance, contributions) uses the original names.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from features.conduct import GOOD_CONDUCT
from riskgraph.errors import NotFitted
from riskgraph.settings import ModelSettings
from scoring.attributions import CANDIDATES, LeafAttributions
from scoring.evidence import EVIDENCE_FEATURE, evidence_weight, merge_reason, rule_log_odds

_NOT_NAME_SAFE = re.compile(r"[^0-9A-Za-z_]")


def lightgbm_names(features: list[str]) -> list[str]:
    """A LightGBM-safe stand-in for each feature name: ASCII letters, digits and `_` only, and
    distinct (the position comes first; the readable rest only helps reading model dumps)."""
    return [f"f{i}_{_NOT_NAME_SAFE.sub('_', str(name))[:48]}" for i, name in enumerate(features)]


class CrossFittedRiskModel:
    """LightGBM per fold + Platt calibration, following the scikit-learn estimator contract."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()

    def _params(self, y: np.ndarray, features: list[str]) -> dict[str, Any]:
        s = self.settings
        pos = max(int(y.sum()), 1)
        # Small training sets run faster on one thread (OpenMP start-up dominates).
        threads = 1 if len(y) < s.small_training_rows else s.threads
        params = {
            "objective": "binary",
            "learning_rate": s.learning_rate,
            "num_leaves": s.num_leaves,
            # tiny training sets still get splits: leaves of at least 5% of the rows
            "min_child_samples": int(min(s.min_child_samples, max(3, len(y) // 20))),
            "feature_fraction": s.feature_fraction,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "scale_pos_weight": min((len(y) - pos) / pos, 50.0),
            "seed": s.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": threads,
            "verbose": -1,
            "max_bin": s.max_bin,
        }
        # good conduct only lowers risk (features/conduct.py); settings may say otherwise
        monotone = {f: -1 for f in GOOD_CONDUCT} | dict(s.monotone)
        if any(monotone.get(f, 0) for f in features):
            params["monotone_constraints"] = [int(monotone.get(f, 0)) for f in features]
        return params

    def fit(self, X: pd.DataFrame, y: np.ndarray, folds: np.ndarray | None = None) -> CrossFittedRiskModel:
        """Train one booster per fold; `folds` (fold number per row) defaults to stratified K-fold."""
        y = np.asarray(y, dtype=np.int8)
        self.features_ = list(X.columns)
        if len(set(self.features_)) != len(self.features_):
            raise ValueError("feature names must be distinct")
        self.lgb_names_ = lightgbm_names(self.features_)
        self.categories_ = {c: X[c].cat.categories for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)}
        params = self._params(y, self.features_)
        if folds is None:
            n_splits = int(max(2, min(self.settings.folds, y.sum(), len(y) - y.sum())))
            splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.settings.seed)
            folds = np.zeros(len(y), dtype=np.int64)
            for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
                folds[test] = k
        folds = np.asarray(folds)
        n_folds = len(np.unique(folds))
        self.boosters_: list[lgb.Booster] = []
        oof_margin = np.zeros(len(y))
        self.fold_of_ = folds
        # Bin the feature matrix once (label-free) and train every fold on a subset of it.
        Xl = self._renamed(X)
        full = lgb.Dataset(Xl, y, params=params, free_raw_data=False).construct()
        tests = [np.flatnonzero(folds == k) for k in np.unique(folds)]
        subsets = [full.subset(np.flatnonzero(folds != k).tolist()).construct() for k in np.unique(folds)]
        rounds = self.settings.n_estimators
        # One-thread trainings (small sets) run two at a time: LightGBM releases the GIL while it
        # trains, so both cores work; each booster is the same as trained alone.
        parallel = 2 if params["num_threads"] == 1 and self.settings.threads > 1 else 1
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            final = pool.submit(lgb.train, params, full, num_boost_round=rounds)
            boosters = list(pool.map(lambda d: lgb.train(params, d, num_boost_round=rounds), subsets))
            self.final_ = final.result()
        for booster, test in zip(boosters, tests):
            oof_margin[test] = booster.predict(Xl.iloc[test], raw_score=True)
            self.boosters_.append(booster)
        # the rules' evidence as one linear term, its weight fitted on the labels (scoring/evidence.py)
        self.evidence_weight_, self.evidence_ref_ = 0.0, 0.0
        if self.settings.rule_evidence and EVIDENCE_FEATURE in self.features_:
            z = rule_log_odds(X)
            self.evidence_weight_ = evidence_weight(oof_margin, z, y)
            self.evidence_ref_ = float(z.mean())
            oof_margin = oof_margin + self.evidence_weight_ * z
        self.calibrator_ = LogisticRegression(C=1e6).fit(oof_margin.reshape(-1, 1), y)
        self.oof_ = self._calibrate(oof_margin)
        self.metrics_ = classification_metrics(y, self.oof_)
        self.metrics_["folds"] = n_folds
        return self

    def _check(self) -> None:
        if not hasattr(self, "boosters_"):
            raise NotFitted("CrossFittedRiskModel is not fitted; call fit() first")

    def calibrated(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw margins (Platt scaling on the out-of-fold margins)."""
        return self._calibrate(margin)

    def _calibrate(self, margin: np.ndarray) -> np.ndarray:
        return np.asarray(self.calibrator_.predict_proba(margin.reshape(-1, 1))[:, 1], dtype=np.float64)

    def _align(self, X: pd.DataFrame) -> pd.DataFrame:
        """`X` with the training columns, in order, under their original names."""
        X = X.reindex(columns=self.features_)
        for c, cats in self.categories_.items():
            X[c] = pd.Categorical(X[c].astype(object), categories=cats)
        return X

    def _renamed(self, X: pd.DataFrame) -> pd.DataFrame:
        """Training-ordered columns under the names the boosters know (models pickled before
        `lgb_names_` existed were trained under the original names)."""
        return X.set_axis(getattr(self, "lgb_names_", self.features_), axis=1)

    def _evidence(self, X: pd.DataFrame) -> np.ndarray | None:
        """The rule-evidence term's part of each row's margin, centred on the training rows'
        mean (its contribution); None when the model has no such term."""
        w = getattr(self, "evidence_weight_", 0.0)  # models pickled before the term: none
        if not w or EVIDENCE_FEATURE not in X.columns:
            return None
        return np.asarray(w * (rule_log_odds(X) - self.evidence_ref_), dtype=np.float64)

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """Raw score of the final model: its trees, plus the rule-evidence term."""
        self._check()
        trees = np.asarray(
            self.final_.predict(self._renamed(self._align(X)), raw_score=True, num_threads=self.settings.threads),
            dtype=np.float64,
        )
        extra = self._evidence(X)
        return trees if extra is None else trees + extra + self.evidence_weight_ * self.evidence_ref_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of label 1 for each row."""
        return self._calibrate(self.margin(X))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the final model's raw margin (TreeSHAP via LightGBM)."""
        self._check()
        contrib = np.asarray(
            self.final_.predict(self._renamed(self._align(X)), pred_contrib=True, num_threads=self.settings.threads)
        )
        out = pd.DataFrame(contrib[:, :-1], index=X.index, columns=self.features_)
        extra = self._evidence(X)
        if extra is not None:
            out[EVIDENCE_FEATURE] += extra
        return out

    def leaf_attributions(self) -> LeafAttributions:
        """The final model's per-leaf path attributions (scoring/attributions.py), built once."""
        self._check()
        if getattr(self, "leaves_", None) is None:
            self.leaves_ = LeafAttributions.of(self.final_)
        return self.leaves_

    def margin_and_reasons(self, X: pd.DataFrame, chunk: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The final model's margin (as `margin`) and each row's strongest path attributions
        (`top_reasons`: feature index into `features_`, contribution), walking the trees once."""
        self._check()
        leaves = self.leaf_attributions()
        Xl = self._renamed(self._align(X))
        # Chunks in lanes, one per thread: the leaf walk, the sparse products and the ranking all
        # release the GIL, and each row's arithmetic does not depend on its chunk or lane.
        lanes = max(1, min(self.settings.threads, -(-len(Xl) // chunk)))

        def explain(lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            part = self.final_.predict(
                Xl.iloc[lo : lo + chunk], pred_leaf=True, num_threads=1 if lanes > 1 else self.settings.threads
            )
            return leaves.explain(np.asarray(part, dtype=np.int32).reshape(len(part), -1))

        with ThreadPoolExecutor(max_workers=lanes) as pool:
            done = list(pool.map(explain, range(0, len(Xl), chunk)))
        if not done:
            return np.zeros(0), np.zeros((0, CANDIDATES), np.int16), np.zeros((0, CANDIDATES), np.float32)
        margins, idx, val = zip(*done)
        margin, top, value = np.concatenate(margins), np.concatenate(idx), np.concatenate(val)
        extra = self._evidence(X)
        if extra is None:
            return margin, top, value
        top, value = merge_reason(top, value, self.features_.index(EVIDENCE_FEATURE), extra)
        return margin + extra + self.evidence_weight_ * self.evidence_ref_, top, value

    def importance(self) -> pd.Series:
        """Total gain per feature in the final model."""
        self._check()
        gain = self.final_.feature_importance("gain")
        return pd.Series(gain, index=self.features_).sort_values(ascending=False)


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the score distributions of the two classes."""
    order = np.argsort(-p, kind="mergesort")
    y = np.asarray(y)[order]
    pos = np.cumsum(y) / max(y.sum(), 1)
    neg = np.cumsum(1 - y) / max((1 - y).sum(), 1)
    return float(np.max(np.abs(pos - neg))) if len(y) else 0.0


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Mean predicted vs observed rate in quantile bins."""
    if len(p) == 0:
        return []
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    out = []
    for b in np.unique(which):
        m = which == b
        out.append(
            {"bin": int(b), "n": int(m.sum()), "predicted": float(p[m].mean()), "observed": float(np.mean(y[m]))}
        )
    return out


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    y = np.asarray(y)
    both = 0 < y.sum() < len(y)
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "ks": ks_statistic(y, p) if both else None,
        "brier": float(np.mean((p - y) ** 2)) if len(y) else None,
        "calibration": calibration_table(y, p),
    }
