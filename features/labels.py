"""Features built from other entities' labels (confirmed fraud among an entity's neighbours and
shared identifiers), computed so that no entity ever sees its own label: out of fold for
training rows, and with the entity's own part removed from ring label shares."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graph.projection import Projection
from riskgraph.settings import RingSettings

IDENTIFIER_HOLDERS = ("person", "employer")
IDENTIFIER_RELATIONS = (("phone", "HAS_PHONE"), ("bank_account", "HAS_BANK_ACCOUNT"), ("address", "HAS_ADDRESS"))


def labelled_neighbour_features(
    proj: Projection, entity_type: str, label_vec: np.ndarray, known_vec: np.ndarray
) -> pd.DataFrame:
    """Share of an entity's labelled neighbours (1 hop, and 2 hops through shared counterparts
    weighted 1/degree) that are confirmed bad. Callers mask out labels that must not be seen."""
    views = _LabelPropagation(proj, entity_type).views(_column(label_vec), _column(known_vec))
    return pd.DataFrame({name: v[:, 0] for name, v in views.items()}, index=proj.ids[entity_type])


# The adjacency as floats and its inverse degrees, per projection (the same for every entity type).
_WALKS: weakref.WeakKeyDictionary[Projection, tuple[sp.csr_matrix, np.ndarray]] = weakref.WeakKeyDictionary()


def _walk_matrices(proj: Projection) -> tuple[sp.csr_matrix, np.ndarray]:
    if proj not in _WALKS:
        adj = proj.adjacency().astype(np.float64)
        deg = np.asarray(adj.sum(axis=1)).ravel()
        _WALKS[proj] = adj, np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    return _WALKS[proj]


class _LabelPropagation:
    """The label-free parts of labelled_neighbour_features (adjacency, degrees, identifier
    matrices), built once per entity type and applied to any number of label views."""

    def __init__(self, proj: Projection, entity_type: str) -> None:
        self.adj, self.inv = _walk_matrices(proj)
        self.lo = proj.offsets[entity_type]
        self.hi = self.lo + len(proj.ids[entity_type])
        self.rows = self.adj[self.lo : self.hi]
        self.back = self.rows @ self.inv  # 2-hop walks that return to the entity itself
        self.identifiers = []
        if entity_type in IDENTIFIER_HOLDERS:
            for ident, rel in IDENTIFIER_RELATIONS:
                own = proj.matrix(rel, entity_type, ident)
                if own.nnz == 0:
                    continue
                holders = [
                    (proj.matrix(rel, h, ident).T.tocsr(), proj.offsets[h], proj.offsets[h] + len(proj.ids[h]))
                    for h in IDENTIFIER_HOLDERS
                ]
                self.identifiers.append((ident, own, np.asarray(own.sum(axis=1)).ravel(), holders))

    def views(self, lab: sp.csr_matrix, kno: sp.csr_matrix) -> dict[str, np.ndarray]:
        """Feature name -> (entities, k) values, for k label views (the columns of the node-indexed
        sparse `lab` / `kno`, `_label_columns`) at the cost of one pass over the graph. Labels
        are few: the products touch only labelled nodes' neighbourhoods, and add the same terms
        in the same order as dense products would (the zeros skipped add nothing), so the
        values are the same to the bit."""
        k = lab.shape[1]
        both = sp.hstack([lab, kno], format="csr")
        hop1 = (self.rows @ both).toarray()
        hop2 = (self.rows @ (sp.diags(self.inv) @ (self.adj @ both))).toarray()
        # 2-hop sums include the walk back to the entity itself: remove it so no label leaks.
        hop2 -= self.back[:, None] * both[self.lo : self.hi].toarray()
        bad1, known1, bad2, known2 = hop1[:, :k], hop1[:, k:], hop2[:, :k], hop2[:, k:]
        out: dict[str, np.ndarray] = {
            "labelled_neighbours": known1,
            "labelled_neighbour_share": np.divide(bad1, known1, out=np.zeros_like(bad1), where=known1 > 0),
            "labelled_2hop_share": np.divide(bad2, known2, out=np.zeros_like(bad2), where=known2 > 1e-9),
        }
        self_bad = lab[self.lo : self.hi].toarray()
        for ident, own, own_count, holders in self.identifiers:
            bad_per_value = sum(m @ lab[a:b] for m, a, b in holders)
            shared = (own @ bad_per_value).toarray()
            out[f"confirmed_fraud_sharing_{ident}"] = np.maximum(shared - self_bad * own_count[:, None], 0)
        return out


def _column(vector: np.ndarray) -> sp.csr_matrix:
    """A node-indexed vector as a one-column sparse matrix."""
    at = np.flatnonzero(vector)
    return _label_columns(at, vector[at], np.zeros(len(at), dtype=np.int64), len(vector), 1)


def _label_columns(rows: np.ndarray, values: np.ndarray, cols: np.ndarray, n: int, k: int) -> sp.csr_matrix:
    return sp.csr_matrix((values.astype(np.float64), (rows, cols)), shape=(n, k))


def label_vectors(proj: Projection, labels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global node index, label, for every labelled entity."""
    idx = np.full(len(labels), -1, dtype=np.int64)
    for t, part in labels.groupby("entity_type"):
        local = proj.ids[t].get_indexer(part["entity_id"].to_numpy(dtype=object))
        idx[np.flatnonzero(labels["entity_type"].to_numpy() == t)] = np.where(local >= 0, local + proj.offsets[t], -1)
    keep = idx >= 0
    return idx[keep], labels["label"].to_numpy()[keep].astype(np.float64), np.flatnonzero(keep)


def all_label_vectors(proj: Projection, labels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Node-indexed label and known vectors holding every label (scoring with a fitted champion)."""
    node, y, _ = label_vectors(proj, labels)
    lab, known = np.zeros(proj.n_nodes), np.zeros(proj.n_nodes)
    lab[node], known[node] = y, 1.0
    return lab, known


def out_of_fold_label_features(
    proj: Projection, entity_type: str, labels: pd.DataFrame, fold_of: pd.Series
) -> pd.DataFrame:
    """Label features where an entity in fold k only sees labels from the other folds."""
    return out_of_fold_and_every_label(proj, entity_type, labels, fold_of)[0]


def out_of_fold_and_every_label(
    proj: Projection, entity_type: str, labels: pd.DataFrame, fold_of: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`out_of_fold_label_features`, and every entity's features with every label shown (as
    `labelled_neighbour_features` of `all_label_vectors`, to the bit): both from one pass."""
    node, y, rows = label_vectors(proj, labels)
    label_fold = np.full(len(node), -1)
    own = labels["entity_type"].to_numpy()[rows] == entity_type
    ids = labels["entity_id"].to_numpy(dtype=object)[rows]
    label_fold[own] = fold_of.reindex(ids[own]).fillna(-1).to_numpy(dtype=int)

    # One label view per fold (its own fold's labels hidden) plus one with every label, for the
    # entities outside training; all views go through the graph in one sparse pass.
    folds = sorted(set(fold_of.to_numpy()))
    shown = [np.ones(len(node), dtype=bool) if hidden is None else label_fold != hidden for hidden in [None, *folds]]
    at = np.concatenate([node[v] for v in shown])
    view = np.repeat(np.arange(len(shown)), [int(v.sum()) for v in shown])
    bad = np.concatenate([y[v] for v in shown])
    # a node labelled twice (two label rows) keeps its last label, as assigning into a dense vector would
    last = pd.DataFrame({"at": at, "view": view}).duplicated(keep="last").to_numpy()
    at, view, bad = at[~last], view[~last], bad[~last]
    nonzero = bad != 0
    lab = _label_columns(at[nonzero], bad[nonzero], view[nonzero], proj.n_nodes, len(shown))
    known = _label_columns(at, np.ones(len(at)), view, proj.n_nodes, len(shown))
    views = _LabelPropagation(proj, entity_type).views(lab, known)
    # each entity takes view 0 (every label) unless it is in a fold: then its fold's view
    view_of = np.zeros(len(proj.ids[entity_type]), dtype=np.int64)
    view_of[proj.ids[entity_type].get_indexer(fold_of.index)] = 1 + np.searchsorted(folds, fold_of.to_numpy())
    rows = np.arange(len(view_of))
    entities = proj.ids[entity_type]
    return (
        pd.DataFrame({name: v[rows, view_of] for name, v in views.items()}, index=entities),
        pd.DataFrame({name: v[:, 0] for name, v in views.items()}, index=entities),
    )


def ring_scores_without_own_label(
    members: pd.DataFrame,
    labels: pd.DataFrame,
    entity_type: str,
    ids: pd.Index,
    ring_settings: RingSettings | None = None,
) -> np.ndarray:
    """Each entity's best ring score with its own label taken out of the ring's label share.

    ring_score weighs in the share of members labelled 1 (features/rings/common.py, with the
    weights of `ring_settings`, default `RingSettings()`: pass the settings the rings were
    scored with); an entity's own label must not raise its own score, so its 1/size part of that
    share is removed. Other members' labels stay: they are evidence about the entity, not its label.
    """
    m = members[members["entity_type"] == entity_type] if len(members) else members
    if len(m) == 0:
        return np.zeros(len(ids))
    w_labels = (ring_settings or RingSettings()).label_weight_share
    size = members.groupby("ring_id").size()
    pos = labels.loc[(labels["entity_type"] == entity_type) & (labels["label"] == 1), "entity_id"]
    own_pos = m["entity_id"].isin(pos).to_numpy(dtype=float)
    score = m["ring_score"].to_numpy() - w_labels * own_pos / m["ring_id"].map(size).to_numpy(dtype=float)
    best = pd.Series(np.clip(score, 0, 1), index=m["entity_id"].to_numpy()).groupby(level=0).max()
    return best.reindex(ids).fillna(0).to_numpy()
