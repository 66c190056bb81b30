"""Graph-structure features: PageRank, 2-hop reach and neighbour aggregates.

Neighbour aggregation (each entity gets the mean of its neighbours' features, one hop along
each relationship) lets a tree ensemble see the graph, the design that tops the GADBench
graph anomaly benchmark. Label-derived neighbour features live in scoring/ because they
must be computed per fold.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graph.projection import Projection

PAGERANK_DAMPING = 0.85
PAGERANK_ITERATIONS = 30
# (entity type, relationship, neighbour type, matrix orientation) pairs to aggregate over.
NEIGHBOUR_LINKS: tuple[tuple[str, str, str, bool], ...] = (
    ("person", "VISITED", "clinic", False),
    ("person", "PURCHASED", "pharmacy", False),
    ("person", "EMPLOYED_BY", "employer", False),
    ("clinic", "VISITED", "person", True),
    ("pharmacy", "PURCHASED", "person", True),
    ("employer", "EMPLOYED_BY", "person", True),
    ("employer", "CONTRIBUTED", "person", False),
    ("agency", "LINKED", "person", False),
    ("agency", "LINKED", "employer", False),
)
MAX_NEIGHBOUR_COLUMNS = 12  # the neighbour type's columns with the most variance, to keep width sane


def row_normalise(m: sp.csr_matrix) -> sp.csr_matrix:
    deg = np.asarray(m.sum(axis=1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg, dtype=np.float64), where=deg > 0)
    return sp.diags(inv) @ m


def pagerank(
    adj: sp.csr_matrix,
    damping: float = PAGERANK_DAMPING,
    iterations: int = PAGERANK_ITERATIONS,
    symmetric: bool = False,
) -> np.ndarray:
    """PageRank by power iteration (dangling mass spread uniformly). `symmetric=True` promises
    adj == adj.T with sorted indices (as Projection.adjacency gives), which skips the transpose."""
    n = adj.shape[0]
    if n == 0:
        return np.zeros(0)
    out_deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.divide(1.0, out_deg, out=np.zeros(n), where=out_deg > 0)
    transition = adj if symmetric and adj.has_sorted_indices else adj.T.tocsr()
    dangling_nodes = np.flatnonzero(out_deg == 0)
    r = np.full(n, 1.0 / n)
    for _ in range(iterations):
        dangling = r[dangling_nodes].sum()
        r = damping * (transition @ (r * inv) + dangling / n) + (1 - damping) / n
    return r * n  # 1.0 = average node


def graph_pagerank(proj: Projection) -> np.ndarray:
    """PageRank of every node of the projection's whole graph (by global node index). Its sparse
    products run outside the GIL, so a thread can compute it beside other work."""
    return pagerank(proj.adjacency().astype(np.float64), symmetric=True)


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    num = frame.select_dtypes(include=[np.number]).astype(np.float64)
    num = num.loc[:, [c for c in num.columns if not c.startswith("nb_")]]
    if num.shape[1] > MAX_NEIGHBOUR_COLUMNS:
        spread = num.std() / (num.abs().mean() + 1e-9)
        num = num[spread.sort_values(ascending=False, kind="mergesort").index[:MAX_NEIGHBOUR_COLUMNS]]
    return num.fillna(0)


def add_graph_features(
    features: dict[str, pd.DataFrame], proj: Projection, counts: Mapping[str, np.ndarray] | None = None
) -> dict[str, pd.DataFrame]:
    """Add PageRank, 2-hop reach and neighbour means to each entity type's features. `counts`:
    `degree`, `two_hop_paths` and `pagerank` per global node index computed elsewhere (the
    Spark engine's counts; `graph_pagerank` in a thread beside the other features), taken as
    they are."""
    counts = counts or {}
    out = {t: f.copy(deep=False) for t, f in features.items()}  # new columns only: the input frames stay as given
    adj = proj.adjacency()
    pr = counts["pagerank"] if "pagerank" in counts else graph_pagerank(proj)
    degree = counts["degree"] if "degree" in counts else np.diff(adj.indptr).astype(np.float64)
    two_hop = (  # paths of length 2 (cheap; distinct reach is not)
        counts["two_hop_paths"] if "two_hop_paths" in counts else adj @ (degree - 1).clip(min=0)
    )
    for t, f in out.items():
        lo = proj.offsets[t]
        f["pagerank"] = pr[lo : lo + len(f)]
        f["degree"] = degree[lo : lo + len(f)]
        f["two_hop_paths"] = two_hop[lo : lo + len(f)]
    base = {t: _numeric(features[t]) for t in features}
    for etype, rel, ntype, transpose in NEIGHBOUR_LINKS:
        m = proj.matrix(rel, ntype if transpose else etype, etype if transpose else ntype)
        if transpose:
            m = m.T.tocsr()
        if m.nnz == 0 or base[ntype].shape[1] == 0:
            continue
        mean = row_normalise((m > 0).astype(np.float64)) @ base[ntype].to_numpy()
        cols = [f"nb_{rel.lower()}_{ntype}_{c}" for c in base[ntype].columns]
        out[etype] = pd.concat([out[etype], pd.DataFrame(mean, index=out[etype].index, columns=cols)], axis=1)
    return out
