"""When model metrics may be shown: only when computed on at least 30 labels of each class.
ROC-AUC = 1 on 2 labels says nothing about a model; the report, the CLI and the API withhold
such metrics and say why."""

from __future__ import annotations

from typing import Any

METRICS_MIN_LABELS_PER_CLASS = 30


def label_counts(metrics: dict[str, Any]) -> dict[str, int] | None:
    """Labels a version's metrics were computed on (`n` and `positives`, as scoring records
    them), or None when the metadata does not say."""
    n, positives = metrics.get("n"), metrics.get("positives")
    if not isinstance(n, int) or not isinstance(positives, int) or isinstance(n, bool) or isinstance(positives, bool):
        return None
    return {"fraud": positives, "not_fraud": n - positives}


def withheld(metrics: dict[str, Any]) -> str | None:
    """Why the metrics must not be shown, or None when they may be (or nothing was measured)."""
    scores = {k: v for k, v in metrics.items() if k not in ("n", "positives", "note", "folds", "calibration")}
    if not scores:
        return None
    counts = label_counts(metrics)
    need = METRICS_MIN_LABELS_PER_CLASS
    if counts is None:
        return f"metrics withheld: the label counts were not recorded; at least {need} per class are needed"
    if counts["fraud"] < need:
        return f"metrics withheld: only {counts['fraud']} confirmed-fraud labels; at least {need} per class are needed"
    if counts["not_fraud"] < need:
        return f"metrics withheld: only {counts['not_fraud']} not-fraud labels; at least {need} per class are needed"
    return None
