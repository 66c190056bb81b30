"""Path attributions (scoring/attributions.py): the margin they come with is LightGBM's, they
sum to it, and their reason order stays close to exact TreeSHAP's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskgraph.settings import ModelSettings
from scoring.attributions import LeafAttributions, ReasonColumns, top_reasons
from scoring.model import CrossFittedRiskModel


@pytest.fixture(scope="module")
def fitted() -> tuple[CrossFittedRiskModel, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 6_000
    X = pd.DataFrame(rng.normal(size=(n, 12)), columns=[f"x{i}" for i in range(12)])
    X["kind"] = pd.Categorical(rng.choice(["a", "b", "c"], n))
    X.loc[rng.random(n) < 0.1, "x3"] = np.nan
    logit = 1.5 * X["x0"] + X["x1"] * X["x2"] + (X["kind"] == "a") * 1.0 + 0.5 * X["x3"].fillna(0) - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return CrossFittedRiskModel(ModelSettings()).fit(X.iloc[:3000], y[:3000]), X


def test_margin_is_lightgbms_bit_for_bit_and_attributions_sum_to_it(fitted) -> None:
    model, X = fitted
    margin, _, _ = model.margin_and_reasons(X, chunk=1_000)
    assert np.array_equal(margin, model.margin(X))  # scores cannot change
    leaves = LeafAttributions.of(model.final_)
    raw = model.final_.predict(model._renamed(model._align(X.head(200))), pred_leaf=True)
    one_hot = leaves._one_hot(np.asarray(raw, dtype=np.int32))
    total = np.asarray(one_hot @ leaves.attributions).sum(axis=1) + leaves.expected
    np.testing.assert_allclose(total, margin[:200], atol=1e-9)


def test_chunks_and_lanes_do_not_change_a_row(fitted) -> None:
    """Chunks run in lanes (one per thread); every row comes out as from one chunk on one thread."""
    model, X = fitted
    one_lane = CrossFittedRiskModel(model.settings.model_copy(update={"threads": 1}))
    one_lane.__dict__.update({k: v for k, v in model.__dict__.items() if k != "settings"})
    want = one_lane.margin_and_reasons(X, chunk=len(X))
    for got in (model.margin_and_reasons(X, chunk=700), one_lane.margin_and_reasons(X, chunk=700)):
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_reason_order_stays_close_to_exact_treeshap(fitted) -> None:
    """The bound docs/scoring.md states: the strongest reason is TreeSHAP's own on at least 70% of
    rows, and at least 75% of the 4 shown are among TreeSHAP's 4 (with interactions in the data)."""
    model, X = fitted
    _, idx, _ = model.margin_and_reasons(X)
    exact = model.contributions(X).to_numpy()
    exact_idx, _ = top_reasons(exact, 4)
    first = np.mean(idx[:, 0] == exact_idx[:, 0])
    overlap = np.mean([len(set(a[:4]) & set(b)) / 4 for a, b in zip(idx, exact_idx)])
    assert first >= 0.7 and overlap >= 0.75, (first, overlap)


def test_top_reasons_keep_both_signs_and_mark_empty_slots() -> None:
    contrib = np.array([[0.1, -0.9, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0]])
    idx, val = top_reasons(contrib, 3)
    assert idx[0].tolist() == [1, 3, 0] and val[0].tolist() == pytest.approx([-0.9, 0.3, 0.1])
    assert idx[1].tolist() == [-1, -1, -1]


def test_reason_columns_give_category_labels_back(fitted) -> None:
    model, X = fitted
    _, idx, val = model.margin_and_reasons(X.head(500))
    columns = ReasonColumns.gather(X.head(500), model.features_, idx, val)
    kinds = [(f, v) for i in range(500) for f, v, _ in columns.row(i) if f == "kind"]
    assert kinds and {v for _, v in kinds} <= {"a", "b", "c"}
