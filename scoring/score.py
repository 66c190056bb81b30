"""Scoring one entity type in two phases: `model_entity_type` trains where labels allow (else
the unsupervised score) and scores every row; `finish_entity_type` turns probabilities into
points and grades, applies rule caps, and computes the contributions that explain the riskiest
rows. The pipeline's promotion gate stands between them (composer/pipeline.py `score_types`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from features.labels import (
    all_label_vectors,
    labelled_neighbour_features,
    out_of_fold_and_every_label,
    ring_scores_without_own_label,
)
from features.signals import rows_of
from graph.dataset import Dataset
from graph.projection import Projection
from riskgraph.settings import ModelSettings, Settings
from scoring.attributions import ReasonColumns, top_reasons
from scoring.grades import apply_caps, credit_points, grades
from scoring.model import CrossFittedRiskModel, classification_metrics
from scoring.oot import out_of_time
from scoring.registry import ModelRegistry
from scoring.triage import amount_at_stake, priority
from scoring.unsupervised import unsupervised_contributions, unsupervised_risk

log = logging.getLogger("riskgraph.scoring")
SCORE_COLUMNS = [
    "entity_type",
    "entity_id",
    "risk_score",
    "credit_points",
    "grade",
    "model_version",
    "reasons",
    "rule_hits",
    "priority",  # triage rank within the type (scoring/triage.py), appended by the pipeline
    "amount_at_stake",
]


class RowScorer(Protocol):
    """Where a fitted model scores every row and explains the riskiest: in this process (the
    model's own methods), or a stage engine's batches (composer/engines/: Spark mapInPandas)."""

    def margin_and_reasons(
        self, model: CrossFittedRiskModel, X: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def contributions(self, model: CrossFittedRiskModel, X: pd.DataFrame) -> pd.DataFrame: ...


class InProcess:
    """`RowScorer` in this process."""

    def margin_and_reasons(
        self, model: CrossFittedRiskModel, X: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return model.margin_and_reasons(X)

    def contributions(self, model: CrossFittedRiskModel, X: pd.DataFrame) -> pd.DataFrame:
        return model.contributions(X)


@dataclass
class EntityScores:
    entity_type: str
    kind: str  # supervised | unsupervised | empty
    model_version: str
    table: pd.DataFrame  # SCORE_COLUMNS + grade_cap, score_grade
    metrics: dict[str, Any] = field(default_factory=dict)
    importance: pd.Series | None = None
    contributions: pd.DataFrame | None = None  # for the explained top rows
    explained_X: pd.DataFrame | None = None
    model: CrossFittedRiskModel | None = None
    oof: pd.DataFrame | None = None  # labelled rows: label, oof probability
    matrix: pd.DataFrame | None = None  # the model matrix of every entity (for on-demand reasons)
    fitted: bool = True  # False: scored by the existing champion
    cap_rule: pd.Series | None = None  # per entity: the rule that capped its grade, if any
    reasons: ReasonColumns | None = None  # every entity's strongest reasons, rows as `table`
    model_risk: np.ndarray | None = None  # a fitted model's calibrated risk of all rows (the gate's)
    promotion: dict[str, Any] | None = None  # the promotion gate's decision on this run's model (pipeline)

    def public_metrics(self) -> dict[str, Any]:
        return {k: v for k, v in self.metrics.items() if k != "calibration"}


def labels_of(dataset: Dataset, entity_type: str, ids: pd.Index) -> pd.Series:
    """Label (0/1) of each labelled entity of the type, in `ids` order."""
    labels = dataset.table("labels")
    own = labels[labels["entity_type"] == entity_type].set_index("entity_id")["label"]
    return own.reindex(ids).dropna().astype(int)


def assign_folds(y: pd.Series, ms: ModelSettings) -> pd.Series:
    """Stratified fold number of each labelled entity (fixed seed)."""
    n_folds = int(max(2, min(ms.folds, y.sum(), len(y) - y.sum())))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=ms.seed)
    fold_of = pd.Series(-1, index=y.index)
    for k, (_, test) in enumerate(folds.split(np.zeros(len(y)), y.to_numpy())):
        fold_of.iloc[test] = k
    return fold_of


@dataclass
class Modelled:
    """Scoring's first phase for one type: the model that scores it (trained by this run, or the
    type's champion) and every row's risk and strongest reasons. The promotion gate reads this
    before the second phase (points, grades, caps, triage, the explained rows) is spent on it."""

    entity_type: str
    kind: str  # supervised | unsupervised | empty
    version: str
    fitted: bool  # False: the existing champion
    X: pd.DataFrame  # the model matrix of every entity
    risk: pd.Series  # served risk (a trained model's labelled rows: out of fold)
    reason_index: np.ndarray
    reason_value: np.ndarray
    reason_features: list[str]
    model: CrossFittedRiskModel | None = None
    deviation: pd.DataFrame | None = None  # unsupervised: each feature's part (the reasons' source)
    metrics: dict[str, Any] = field(default_factory=dict)
    importance: pd.Series | None = None
    oof: pd.DataFrame | None = None  # labelled rows: label, oof probability
    model_risk: np.ndarray | None = None  # a fitted model's calibrated risk of all rows (the gate's)
    every_label: pd.DataFrame | None = None  # label features with every label shown (a champion's)


def model_entity_type(
    entity_type: str,
    *,
    X: pd.DataFrame,
    dataset: Dataset,
    proj: Projection,
    rings: pd.DataFrame,
    settings: Settings,
    registry: ModelRegistry,
    run_id: str | None = None,
    use_champion: bool = False,
    training_rows: pd.DataFrame | None = None,
    scorer: RowScorer | None = None,
    every_label: pd.DataFrame | None = None,
) -> Modelled:
    """Scoring's first phase for one type, from its model matrix `X` (features/signals.py):
    train where labels allow (else the unsupervised score) and score every row with its
    strongest reasons. A newly fitted model is registered (staged under `run_id` when given);
    with `use_champion` the type's champion scores instead, and a type without one is fitted.

    `training_rows` (composer/labels.py `training_rows`): model-matrix rows of labelled
    entities built from the data as it stood at their label's as_of; the model learns from
    those rows instead of today's (a signal column missing from them was 0 then). `scorer`
    scores every row with the fitted model (default: in this process). `every_label`: the label
    features with every label shown, when this run already has them (a champion scoring after
    the run's own model).

    `finish_entity_type` is the second phase; the pipeline's promotion gate stands between the
    two (composer/pipeline.py `score_types`)."""
    ids = proj.ids[entity_type]
    if len(ids) == 0:
        empty = np.zeros((0, 0))
        return Modelled(entity_type, "empty", "", False, X, pd.Series(dtype=float), empty, empty, [])
    ms = settings.model
    scorer = scorer or InProcess()
    labels = dataset.table("labels")
    own = labels[labels["entity_type"] == entity_type].set_index("entity_id")["label"]
    own = own[ids.get_indexer(own.index) >= 0]  # Index.isin on Arrow strings is ~30x slower
    supervised = min(int(own.sum()), int((own == 0).sum())) >= ms.min_positives
    importance = model = oof_frame = model_risk = deviation = None
    metrics: dict[str, Any] = {}
    champion = registry.champion(entity_type) if use_champion else None
    if champion is not None:
        supervised = champion.kind == "supervised"
    if champion is not None and supervised:
        if every_label is None:
            every_label = labelled_neighbour_features(proj, entity_type, *all_label_vectors(proj, labels))
        X = X.join(every_label)
        X = X.reindex(columns=champion.features)
        model = registry.load(champion.version)
        margin, r_idx, r_val = scorer.margin_and_reasons(model, X)
        risk = pd.Series(model.calibrated(margin), index=ids)
        metrics, kind = champion.metrics, "supervised"
    elif supervised:
        y = own.reindex(ids).dropna().astype(int)
        later = out_of_time(X, proj=proj, entity_type=entity_type, labels=labels, ms=ms)
        fold_of = assign_folds(y, ms)
        signal_columns = list(X.columns)
        out_of_fold, every_label = out_of_fold_and_every_label(proj, entity_type, labels, fold_of)
        X = X.join(out_of_fold)
        X_fit = X.loc[y.index]
        if training_rows is not None and len(training_rows):
            then = training_rows[training_rows.index.isin(y.index)]
            absent = [c for c in signal_columns if c not in then.columns]  # a signal not seen then was 0
            then = then.reindex(columns=signal_columns).assign(**dict.fromkeys(absent, 0.0))
            X_fit = X_fit.astype({c: "float64" for c in signal_columns if X_fit[c].dtype.kind in "iub"})
            for c in signal_columns:
                X_fit.loc[then.index, c] = then[c].to_numpy()
        model = CrossFittedRiskModel(ms)
        model.fit(X_fit, y.to_numpy(), folds=fold_of.to_numpy())
        margin, r_idx, r_val = scorer.margin_and_reasons(model, X)
        model_risk = model.calibrated(margin)
        risk = pd.Series(model_risk.copy(), index=ids)  # a copy: model_risk keeps the in-sample values
        risk.loc[y.index] = model.oof_  # labelled entities keep their honest out-of-fold score
        metrics = model.metrics_ | {"oot": later}
        importance = model.importance()
        oof_frame = pd.DataFrame({"label": y.to_numpy(), "oof": model.oof_}, index=y.index)
        kind = "supervised"
    else:
        sev = X["rule_severity_sum"].to_numpy()
        ring_score = ring_scores_without_own_label(rings, labels, entity_type, ids, settings.rings)
        parts = unsupervised_risk(X, sev, ring_score, ms.seed)
        risk = parts["risk"]
        deviation = unsupervised_contributions(X, parts)
        r_idx, r_val = top_reasons(deviation.to_numpy())
        reason_features = list(deviation.columns)
        if len(own) and 0 < own.sum() < len(own):
            metrics = classification_metrics(own.to_numpy(), risk.reindex(own.index).to_numpy())
            metrics["note"] = "unsupervised score checked against the few labels available"
        kind = "unsupervised"
    if model is not None:
        reason_features = list(model.features_)
    if champion is not None:
        version = champion.version
    else:
        version = registry.register(
            entity_type=entity_type,
            kind=kind,
            data_hash=dataset.content_hash,
            features=list(X.columns),
            params=ms.model_dump() if supervised else {"method": "rules+rings+isolation_forest"},
            metrics=metrics,
            model=model,
            promote=run_id is None,
            run_id=run_id,
        ).version
    return Modelled(
        entity_type,
        kind,
        version,
        champion is None,
        X,
        risk,
        r_idx,
        r_val,
        reason_features,
        model,
        deviation,
        metrics,
        importance,
        oof_frame,
        model_risk,
        every_label,
    )


def champion_risk_of_challenger_matrix(champion: Modelled, challenger: Modelled) -> np.ndarray:
    """The champion's calibrated risk of every row of the challenger's model matrix, from the
    champion's own scoring of this run: the two matrices differ only in the label features of
    the challenger's training rows (out of fold there, every label shown for the champion), so
    only those rows are scored again."""
    assert champion.model is not None and challenger.oof is not None
    risk: np.ndarray = champion.risk.to_numpy(dtype=np.float64, copy=True)
    at = champion.risk.index.get_indexer(challenger.oof.index)
    rows = challenger.X.iloc[at].reindex(columns=champion.X.columns)
    risk[at] = champion.model.calibrated(champion.model.margin(rows))
    return risk


def finish_entity_type(
    m: Modelled,
    *,
    dataset: Dataset,
    proj: Projection,
    hits: pd.DataFrame,
    settings: Settings,
    serious: frozenset[str] | set[str] = frozenset(),
    money: pd.DataFrame | None = None,
    scorer: RowScorer | None = None,
) -> EntityScores:
    """Scoring's second phase for one type: points, grade after rule caps, triage priority
    (scoring/triage.py: `serious` rule ids, the rules' `money` records), every entity's reason
    columns and the exact contributions of the riskiest `explain_top` rows. Reason text is not
    made here: explain/reasons.py turns the contributions into words."""
    if m.kind == "empty":
        return EntityScores(
            m.entity_type, "empty", "", pd.DataFrame(columns=SCORE_COLUMNS + ["grade_cap", "score_grade"])
        )
    entity_type, X, risk, ids = m.entity_type, m.X, m.risk, proj.ids[m.entity_type]
    scorer = scorer or InProcess()
    money = money if money is not None else pd.DataFrame(columns=["entity_type", "entity_id", "record", "amount"])
    points = credit_points(risk.to_numpy(), settings.scorecard)
    score_grade = pd.Series(grades(points, settings.bands), index=ids)
    cap, cap_rule = _caps(hits, entity_type, ids)
    final = apply_caps(score_grade, cap)

    # Every entity's reasons as columns (path attributions, scoring/attributions.py); exact
    # TreeSHAP, worded with context by explain/, for the riskiest `explain_top`.
    top = risk.sort_values(ascending=False, kind="mergesort").index[: settings.model.explain_top]
    if m.model is not None:
        contributions = scorer.contributions(m.model, X.loc[top])
    else:
        assert m.deviation is not None
        contributions = m.deviation.loc[top]
    reasons = ReasonColumns.gather(X, m.reason_features, m.reason_index, m.reason_value)
    table = pd.DataFrame(
        {
            "entity_type": entity_type,
            "entity_id": ids.to_numpy(),
            "risk_score": risk.to_numpy().round(6),
            "credit_points": points.round(1),
            "grade": final.to_numpy(),
            "model_version": m.version,
            "reasons": "[]",
            "rule_hits": _rule_lists(hits, entity_type, ids),
            "grade_cap": cap.fillna("").to_numpy(),
            "score_grade": score_grade.to_numpy(),
        }
    )
    table["amount_at_stake"] = amount_at_stake(dataset, money, entity_type, ids).to_numpy()
    table["priority"] = priority(
        table, hits, serious, table["amount_at_stake"].set_axis(table["entity_id"].astype(str))
    )
    return EntityScores(
        entity_type,
        m.kind,
        m.version,
        table,
        m.metrics,
        m.importance,
        contributions,
        X.loc[top],
        m.model,
        m.oof,
        X,
        fitted=m.fitted,
        cap_rule=cap_rule,
        reasons=reasons,
        model_risk=m.model_risk,
    )


def _rule_lists(hits: pd.DataFrame, entity_type: str, ids: pd.Index) -> np.ndarray:
    """Per entity of `ids`: the JSON list of its distinct rule ids, sorted ("[]" without hits).
    Each distinct set of rules is worded once: far fewer sets than entities (84 among 1M persons)."""
    out = np.full(len(ids), "[]", dtype=object)
    if len(hits) == 0:
        return out
    h = hits.loc[hits["entity_type"] == entity_type, ["entity_id", "rule_id"]]  # not the evidence text
    pos = ids.get_indexer(h["entity_id"])
    codes, rules = pd.factorize(h["rule_id"], sort=True)
    keep = (pos >= 0) & (codes >= 0)
    k = len(rules)
    pairs = np.unique(pos[keep].astype(np.int64) * k + codes[keep])  # by entity, then rule id
    if len(pairs) == 0:
        return out
    entity, rule = np.divmod(pairs, k)
    starts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
    # json.dumps of each id (rule ids are validated names, but quoting stays exact for any text)
    quoted = [json.dumps(r) for r in rules]
    if k <= 62:  # each entity's set of rules as one bit mask
        sets, which = np.unique(np.add.reduceat(np.left_shift(1, rule), starts), return_inverse=True)
        text = np.array(
            ["[" + ", ".join(quoted[b] for b in range(k) if m >> b & 1) + "]" for m in sets.tolist()], dtype=object
        )
        out[entity[starts]] = text[which]
    else:
        for lo, hi in zip(starts.tolist(), [*starts[1:].tolist(), len(rule)]):
            out[entity[lo]] = "[" + ", ".join(quoted[b] for b in rule[lo:hi].tolist()) + "]"
    return out


def _caps(hits: pd.DataFrame, entity_type: str, ids: pd.Index) -> tuple[pd.Series, pd.Series]:
    """The strictest grade cap any rule imposes on each entity, and the rule that set it."""
    cap = np.full(len(ids), np.nan, dtype=object)
    rule = cap.copy()
    if len(hits) and "grade_cap" in hits:
        h = hits.loc[hits["entity_type"] == entity_type, ["entity_id", "grade_cap", "severity", "rule_id"]]
        h = h[h["grade_cap"].notna() & h["grade_cap"].ne("")]
        h = h.sort_values(
            ["entity_id", "grade_cap", "severity", "rule_id"], ascending=[True, False, False, True], kind="mergesort"
        ).drop_duplicates("entity_id")
        at, keep = rows_of(ids, h["entity_id"])
        cap[at] = h["grade_cap"].to_numpy()[keep]
        rule[at] = h["rule_id"].to_numpy()[keep]
    return pd.Series(cap, index=ids), pd.Series(rule, index=ids)
