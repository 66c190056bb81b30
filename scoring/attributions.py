"""Reasons for every entity without TreeSHAP on every row: per-leaf path attributions.

In a tree, the path from the root to a leaf passes split nodes; each split moves the expected
value from the node's to the child's, and that move is credited to the split's feature (Saabas'
path attribution). It depends only on the leaf, so it is computed once per leaf. A row's
attributions are then the sum over trees of its leaves' vectors: one `pred_leaf` and one sparse
product (rows x leaves, one 1 per tree) @ (leaves x features). The same leaves give the margin
(the sum of leaf values), so the model is walked once per row.

They sum exactly to the margin minus the expected value, like TreeSHAP, but split credit
differently under interactions; exact TreeSHAP stays for the riskiest rows (docs/scoring.md,
tests/scoring/test_attributions.py bounds how far the two disagree).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from riskgraph.row_groups import ROW_GROUP_ROWS, read_rows

CANDIDATES = 6  # reasons kept per row: 4 are shown, the spare ones stand in for unusable ones


@dataclass(frozen=True)
class LeafAttributions:
    offsets: np.ndarray  # first global leaf number of each tree (T + 1)
    attributions: np.ndarray  # global leaf x feature (dense: leaves are few)
    leaf_values: np.ndarray  # global leaf -> its value
    expected: float  # sum of the trees' root values: the margin with no feature known
    used: np.ndarray  # the features some split uses: the columns of `attributions`

    @property
    def attributions32(self) -> np.ndarray:
        cached = self.__dict__.get("_attributions32")
        if cached is None:
            cached = self.attributions.astype(np.float32)
            object.__setattr__(self, "_attributions32", cached)
        return cached

    @staticmethod
    def of(booster: lgb.Booster) -> LeafAttributions:
        dump = booster.dump_model()
        n_features = len(dump["feature_names"])
        trees = dump["tree_info"]
        offsets = np.zeros(len(trees) + 1, dtype=np.int64)
        for t, tree in enumerate(trees):
            offsets[t + 1] = offsets[t] + tree["num_leaves"]
        attributions = np.zeros((int(offsets[-1]), n_features), dtype=np.float64)
        leaf_values = np.zeros(int(offsets[-1]), dtype=np.float64)
        expected = 0.0
        for t, tree in enumerate(trees):
            root = tree["tree_structure"]
            expected += float(root.get("internal_value", root.get("leaf_value", 0.0)))
            # iterative walk: (node, path credit so far as {feature: delta})
            stack: list[tuple[dict[str, Any], dict[int, float]]] = [(root, {})]
            while stack:
                node, credit = stack.pop()
                if "leaf_index" in node:
                    row = offsets[t] + int(node["leaf_index"])
                    leaf_values[row] = float(node["leaf_value"])
                    for f, d in credit.items():
                        attributions[row, f] = d
                    continue
                value, feature = float(node["internal_value"]), int(node["split_feature"])
                for side in ("left_child", "right_child"):
                    child = node[side]
                    child_value = float(child["leaf_value"] if "leaf_index" in child else child["internal_value"])
                    stack.append((child, {**credit, feature: credit.get(feature, 0.0) + child_value - value}))
        used = np.flatnonzero(np.any(attributions != 0, axis=0))
        return LeafAttributions(offsets, np.ascontiguousarray(attributions[:, used]), leaf_values, expected, used)

    def _one_hot(self, leaves: np.ndarray) -> sp.csr_matrix:
        n, t = leaves.shape
        cols = (leaves + self.offsets[:-1].astype(np.int32)[None, :]).ravel()
        indptr = np.arange(0, n * t + 1, t, dtype=np.int32 if n * t < 2**31 else np.int64)
        return sp.csr_matrix((np.ones(n * t), cols, indptr), shape=(n, int(self.offsets[-1])))

    def explain(self, leaves: np.ndarray, k: int = CANDIDATES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From `pred_leaf` output: the margin per row and its `k` strongest attributions
        (feature index into the model's features, -1 for none; contribution)."""
        one_hot = self._one_hot(leaves)
        margin = np.asarray(one_hot @ self.leaf_values, dtype=np.float64)  # float64: LightGBM's own sums
        ones32 = sp.csr_matrix((one_hot.data.astype(np.float32), one_hot.indices, one_hot.indptr), shape=one_hot.shape)
        idx, val = top_reasons(np.asarray(ones32 @ self.attributions32), k)  # float32: twice as fast, enough to rank
        return margin, np.where(idx >= 0, self.used[np.maximum(idx, 0)], -1).astype(np.int16), val


def top_reasons(contrib: np.ndarray, k: int = CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the `k` features with the largest absolute contribution, strongest first:
    (feature index int16, -1 where fewer are non-zero; contribution float32)."""
    n, f = contrib.shape
    k = min(k, f)
    if n == 0 or k == 0:
        return np.full((n, k), -1, dtype=np.int16), np.zeros((n, k), dtype=np.float32)
    size = np.abs(contrib)
    part = np.argpartition(-size, k - 1, axis=1)[:, :k] if k < f else np.tile(np.arange(f), (n, 1))
    rows = np.arange(n)[:, None]
    order = np.argsort(-size[rows, part], axis=1, kind="stable")
    idx = part[rows, order]
    val = contrib[rows, idx].astype(np.float32)
    idx = np.where(val != 0, idx, -1).astype(np.int16)
    return idx, np.where(idx >= 0, val, 0).astype(np.float32)


@dataclass
class ReasonColumns:
    """Every entity's strongest reasons of one type, as columns (no per-entity objects): row i's
    slot s names feature `features[idx[i, s]]` (-1: none) with its contribution and value; the
    value of a categorical feature is its category code (`categories`)."""

    features: list[str]
    idx: np.ndarray  # rows x CANDIDATES int16
    contribution: np.ndarray  # rows x CANDIDATES float32
    value: np.ndarray  # rows x CANDIDATES float64
    categories: dict[str, list[str]]

    @staticmethod
    def gather(X: Any, features: list[str], idx: np.ndarray, contribution: np.ndarray) -> ReasonColumns:
        """The values of the chosen features, taken from the model matrix `X` (rows aligned)."""
        value = np.full(idx.shape, np.nan, dtype=np.float64)
        categories: dict[str, list[str]] = {}
        for j in np.unique(idx[idx >= 0]):
            name = features[int(j)]
            if name not in X.columns:
                continue
            column = X[name]
            if hasattr(column, "cat"):
                categories[name] = [str(c) for c in column.cat.categories]
                data = column.cat.codes.to_numpy(dtype=np.float64)
                data[data < 0] = np.nan
            else:
                data = column.to_numpy(dtype=np.float64, na_value=np.nan)
            rows, slots = np.nonzero(idx == j)
            value[rows, slots] = data[rows]
        return ReasonColumns(list(features), idx, contribution, value, categories)

    def row(self, i: int) -> list[tuple[str, Any, float]]:
        """Row i's candidates: (feature, value, contribution), strongest first."""
        out = []
        for s in range(self.idx.shape[1]):
            j = int(self.idx[i, s])
            if j < 0:
                break
            name = self.features[j]
            v: Any = float(self.value[i, s])
            if name in self.categories and v == v:
                v = self.categories[name][int(v)]
            out.append((name, v, float(self.contribution[i, s])))
        return out


def reason_files(folder: Path, entity_type: str) -> tuple[Path, Path]:
    return folder / f"{entity_type}.reasons.parquet", folder / f"{entity_type}.reasons.json"


def save_reason_columns(folder: Path, entity_type: str, ids: Any, reasons: ReasonColumns) -> None:
    """One type's reason columns as Parquet (entity_id, f0.., c0.., v0..) plus their feature
    names and categories as JSON."""
    data, meta = reason_files(folder, entity_type)
    k = reasons.idx.shape[1]
    columns: dict[str, Any] = {"entity_id": pa.array(np.asarray(ids, dtype=object).astype(str))}
    columns |= {f"f{s}": reasons.idx[:, s] for s in range(k)}
    columns |= {f"c{s}": reasons.contribution[:, s] for s in range(k)}
    columns |= {f"v{s}": reasons.value[:, s] for s in range(k)}
    pq.write_table(pa.table(columns), data, row_group_size=ROW_GROUP_ROWS)
    meta.write_text(json.dumps({"features": reasons.features, "categories": reasons.categories}), encoding="utf-8")


def load_reason_columns(
    folder: Path, entity_type: str, ids: Sequence[str] | None = None
) -> tuple[pd.Index, ReasonColumns] | None:
    """The ids and reason columns saved by save_reason_columns (None if the run has none); only
    the rows of `ids` when given (a replay)."""
    data, meta = reason_files(folder, entity_type)
    if not data.exists() or not meta.exists():
        return None
    table = read_rows(data, "entity_id", ids)
    info = json.loads(meta.read_text(encoding="utf-8"))
    k = sum(1 for name in table.column_names if name.startswith("f"))

    def stack(prefix: str, dtype: Any) -> np.ndarray:
        cols = [table.column(f"{prefix}{s}").to_numpy() for s in range(k)]
        return np.column_stack(cols).astype(dtype) if cols else np.zeros((table.num_rows, 0), dtype=dtype)

    ids = pd.Index(table.column("entity_id").to_numpy(zero_copy_only=False).astype(object), name="entity_id")
    reasons = ReasonColumns(
        info["features"], stack("f", np.int16), stack("c", np.float32), stack("v", np.float64), info["categories"]
    )
    return ids, reasons
