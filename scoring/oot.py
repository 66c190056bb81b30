"""Out-of-time validation: a model trained on the labels known up to a cut date, measured on the
labels dated after it (labels' `as_of`, the one point-in-time mechanism of the input contract).

Labels without `as_of` count as known before the cut, and the result says how many there were.
The later period's entities are scored with label features (neighbours' fraud rates) computed
from the earlier labels only, so nothing after the cut reaches the model or its inputs. The cut
is `ModelSettings.oot_cut`, or else the date leaving the latest `oot_share` of dated labels after
it. Random-fold (out-of-fold) metrics stay the headline; these sit beside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from features.labels import out_of_fold_label_features
from graph.projection import Projection
from riskgraph.settings import ModelSettings
from scoring.model import CrossFittedRiskModel, classification_metrics

OOT_FOLDS = 2  # the out-of-time model's own folds (label features, calibration): the cheapest honest split
MIN_LATER_PER_CLASS = 2  # below this the later period has no AUC at all (the 30-label rule still applies)


def label_dates(labels: pd.DataFrame) -> pd.Series:
    """Each label row's `as_of` as a date (NaT: undated)."""
    if "as_of" not in labels:
        return pd.Series(pd.NaT, index=labels.index, dtype="datetime64[ns]")
    return pd.to_datetime(labels["as_of"], errors="coerce")


def cut_date(dates: pd.Series, ms: ModelSettings) -> pd.Timestamp | None:
    """The configured cut, or the date leaving the latest `oot_share` of dated labels after it."""
    if ms.oot_cut:
        return pd.Timestamp(ms.oot_cut)
    dated = dates.dropna().sort_values(kind="mergesort")
    if dated.nunique() < 2:
        return None
    cut = dated.iloc[int(np.floor(len(dated) * (1 - ms.oot_share))) - 1]
    return None if cut >= dated.iloc[-1] else pd.Timestamp(cut)


def out_of_time(
    X: pd.DataFrame, *, proj: Projection, entity_type: str, labels: pd.DataFrame, ms: ModelSettings
) -> dict[str, Any]:
    """Metrics on the later period of a model trained before the cut (`X`: the type's model matrix
    without label features, indexed by entity id). A dict with `note` when it cannot be measured."""
    dates = label_dates(labels)
    cut = cut_date(dates, ms)
    own = (labels["entity_type"] == entity_type).to_numpy() & (
        proj.ids[entity_type].get_indexer(labels["entity_id"]) >= 0
    )
    undated = int((own & dates.isna().to_numpy()).sum())
    if cut is None:
        return {"note": "the labels carry no two as_of dates to split on", "undated": undated}
    later = (dates > cut).to_numpy()
    known = labels[~later]  # before the cut, undated included (every type: neighbours' labels too)
    train = labels[own & ~later].drop_duplicates("entity_id", keep="last").set_index("entity_id")["label"].astype(int)
    test = labels[own & later].drop_duplicates("entity_id", keep="last").set_index("entity_id")["label"].astype(int)
    test = test[~test.index.isin(train.index)]  # an entity labelled before the cut is not "later"
    base = {
        "cut": cut.date().isoformat(),
        "undated": undated,
        "train_n": len(train),
        "train_positives": int(train.sum()),
    }
    counts = [int(test.sum()), int(len(test) - test.sum()), int(train.sum()), int(len(train) - train.sum())]
    if min(counts[:2]) < MIN_LATER_PER_CLASS or min(counts[2:]) < max(ms.min_positives, 2):
        return base | {
            "note": f"too few labels on one side of the cut {base['cut']} ({counts[0]} fraud / {counts[1]} clean "
            f"after it, {counts[2]} / {counts[3]} before it)",
            "n": len(test),
            "positives": counts[0],
        }
    ms = ms.model_copy(update={"folds": OOT_FOLDS})
    n_folds = OOT_FOLDS
    fold_of = pd.Series(-1, index=train.index)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=ms.seed)
    for k, (_, rows) in enumerate(splitter.split(np.zeros(len(train)), train.to_numpy())):
        fold_of.iloc[rows] = k
    Xk = X.join(out_of_fold_label_features(proj, entity_type, known, fold_of))
    model = CrossFittedRiskModel(ms).fit(Xk.loc[train.index], train.to_numpy(), folds=fold_of.to_numpy())
    p = model.calibrated(model.margin(Xk.loc[test.index]))
    metrics = classification_metrics(test.to_numpy(), p)
    metrics.pop("calibration", None)
    return base | metrics
