"""No entity's own label reaches its own features or its own unsupervised score."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.labels import (
    label_vectors,
    labelled_neighbour_features,
    out_of_fold_label_features,
    ring_scores_without_own_label,
)
from features.rings import detect_rings
from riskgraph.settings import ModelSettings
from scoring.score import assign_folds, labels_of


def _flip(labels: pd.DataFrame, entity_type: str, entity_id: str) -> pd.DataFrame:
    out = labels.copy()
    row = (out["entity_type"] == entity_type) & (out["entity_id"] == entity_id)
    out.loc[row, "label"] = 1 - out.loc[row, "label"]
    return out


def test_flipping_an_entitys_own_label_leaves_its_label_features_unchanged(sample) -> None:
    labels = sample.dataset.table("labels")
    ids = sample.proj.ids["person"]
    y = labels_of(sample.dataset, "person", ids)
    fold_of = assign_folds(y, ModelSettings())
    before = out_of_fold_label_features(sample.proj, "person", labels, fold_of)
    # Persons whose label features are not trivially zero: they have labelled neighbours.
    candidates = [e for e in y.index if before.loc[e, "labelled_2hop_share"] > 0][:10]
    assert candidates
    changed_elsewhere = False
    for e in candidates:
        after = out_of_fold_label_features(sample.proj, "person", _flip(labels, "person", e), fold_of)
        pd.testing.assert_series_equal(before.loc[e], after.loc[e])
        # ... while entities of other folds do see the flipped label (the features use labels).
        others = fold_of.index[fold_of.to_numpy() != fold_of[e]]
        changed_elsewhere |= not before.loc[others].equals(after.loc[others])
    assert changed_elsewhere


@pytest.mark.parametrize("twice", [False, True])
def test_all_folds_in_one_pass_equal_each_fold_computed_alone(sample, twice: bool) -> None:
    """`twice`: one labelled person has a second label row, the other way (two records merged
    into one golden person can bring two): the last row counts, in one pass as alone."""
    labels = sample.dataset.table("labels")
    if twice:
        first = labels[labels["entity_type"] == "person"].iloc[[0]]
        labels = pd.concat([labels, first.assign(label=1 - first["label"])], ignore_index=True)
    ids = sample.proj.ids["person"]
    fold_of = assign_folds(labels_of(sample.dataset, "person", ids), ModelSettings())
    together = out_of_fold_label_features(sample.proj, "person", labels, fold_of)
    node, y, rows = label_vectors(sample.proj, labels)
    is_person = labels["entity_type"].to_numpy()[rows] == "person"
    own_fold = fold_of.reindex(labels["entity_id"].to_numpy(dtype=object)[rows]).to_numpy()
    for k in sorted(set(fold_of)):
        hidden = is_person & (own_fold == k)
        lab, known = np.zeros(sample.proj.n_nodes), np.zeros(sample.proj.n_nodes)
        lab[node[~hidden]], known[node[~hidden]] = y[~hidden], 1.0
        alone = labelled_neighbour_features(sample.proj, "person", lab, known)
        members = fold_of.index[fold_of.to_numpy() == k]
        pd.testing.assert_frame_equal(together.loc[members], alone.loc[members], check_exact=False, rtol=1e-12)


def test_unsupervised_ring_score_ignores_the_entitys_own_label(sample) -> None:
    members = sample.rings.members
    facility = members[members["entity_type"].isin(["clinic", "pharmacy"])]
    assert len(facility), "the sample has rings with clinics or pharmacies"
    for entity_type, eid in facility[["entity_type", "entity_id"]].drop_duplicates().head(3).itertuples(index=False):
        labels = sample.dataset.table("labels")
        labels = labels[~((labels["entity_type"] == entity_type) & (labels["entity_id"] == eid))]
        scores = []
        for label in (0, 1):
            lab = pd.concat(
                [
                    labels,
                    pd.DataFrame(
                        {"entity_type": [entity_type], "entity_id": [eid], "label": [label], "as_of": [pd.NaT]}
                    ),
                ],
                ignore_index=True,
            )
            tables = {**sample.dataset.tables, "labels": lab}
            rings = detect_rings(dataclasses.replace(sample.dataset, tables=tables), sample.rules.hits).members
            ids = pd.Index([eid])
            scores.append(ring_scores_without_own_label(rings, lab, entity_type, ids)[0])
        np.testing.assert_allclose(scores[0], scores[1], atol=2e-6)
