"""Attribute-only baseline: the same LightGBM, folds and labels as the graph model, but only
the columns of the entity table (a classic credit table). The graph model must beat it."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.build import attributes, reference_date
from graph.dataset import Dataset
from riskgraph.settings import ModelSettings
from scoring.model import CrossFittedRiskModel, classification_metrics
from scoring.score import assign_folds, labels_of


def _fitted(
    dataset: Dataset, entity_type: str, settings: ModelSettings
) -> tuple[CrossFittedRiskModel, pd.DataFrame, pd.Series] | None:
    X = attributes(dataset, entity_type, reference_date(dataset))
    X = X.sort_index()
    y = labels_of(dataset, entity_type, X.index)
    if min(int(y.sum()), int((y == 0).sum())) < settings.min_positives:
        return None
    if X.shape[1] == 0:
        X = X.assign(constant=0.0)
    fold_of = assign_folds(y, settings)
    return CrossFittedRiskModel(settings).fit(X.loc[y.index], y.to_numpy(), folds=fold_of.to_numpy()), X, y


def attribute_baseline(dataset: Dataset, entity_type: str, settings: ModelSettings) -> pd.Series | None:
    """Risk per entity from entity-table attributes alone (labelled rows: out-of-fold), or None
    when the type has too few labels to train."""
    fitted = _fitted(dataset, entity_type, settings)
    if fitted is None:
        return None
    model, X, y = fitted
    risk = pd.Series(model.predict_proba(X), index=X.index)
    risk.loc[y.index] = model.oof_
    return risk


def baseline_metrics(dataset: Dataset, entity_type: str, settings: ModelSettings) -> dict[str, Any] | None:
    """The baseline's out-of-fold metrics on the type's labels (None: too few labels). Only the
    labelled rows are scored: the unlabelled ones have no say in the metrics."""
    fitted = _fitted(dataset, entity_type, settings)
    if fitted is None:
        return None
    model, _, y = fitted
    metrics = classification_metrics(y.to_numpy(), model.oof_)
    metrics.pop("calibration", None)
    return metrics
