"""Grouping linked entities into rings: connected components, split by seeded Leiden when a
component is above `max_ring_size` or too sparse; pieces still above the cap are dropped.

The grouping can be handed to a stage engine (composer/engines/: the Spark engine runs it as
DataFrame work) for the ring finders called inside `grouped_by(engine_grouping)`; outside, and
in a process forked before it, the scipy/igraph grouping of `group_locally` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from riskgraph.settings import RingSettings


def _symmetric(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> sp.csr_matrix:
    a = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([src, dst]), np.concatenate([dst, src]))), shape=(n, n))
    return a.tocsr()


Grouping = Callable[[int, np.ndarray, np.ndarray, np.ndarray, RingSettings, int], np.ndarray]
_grouping: ContextVar[Grouping | None] = ContextVar("ring_grouping", default=None)


@contextmanager
def grouped_by(grouping: Grouping) -> Iterator[None]:
    """Within this block, `group_nodes` hands its work to `grouping` (same arguments, same labels)."""
    token = _grouping.set(grouping)
    try:
        yield
    finally:
        _grouping.reset(token)


def group_nodes(
    n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, s: RingSettings, min_size: int | None = None
) -> np.ndarray:
    """Group linked nodes: components, Leiden-split when too big or too sparse; -1 = no group."""
    min_size = s.min_ring_size if min_size is None else min_size
    grouping = _grouping.get()
    if grouping is not None:
        return grouping(n, np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(w, np.float64), s, min_size)
    return group_locally(n, src, dst, w, s, min_size)


def group_locally(
    n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, s: RingSettings, min_size: int | None = None
) -> np.ndarray:
    """`group_nodes` in this process: scipy's connected components, igraph/leidenalg's Leiden."""
    min_size = s.min_ring_size if min_size is None else min_size
    labels = np.full(n, -1, dtype=np.int64)
    if len(src) == 0:
        return labels
    _, comp = connected_components(_symmetric(n, src, dst, w), directed=False)
    sizes = np.bincount(comp)
    n_edges = np.bincount(comp[src], minlength=len(sizes))
    possible = np.maximum(sizes * (sizes - 1) / 2, 1)
    density = n_edges / possible
    split = (sizes > s.max_ring_size) | ((sizes >= s.split_check_size) & (density < s.min_density))
    keep = ~split & (sizes >= min_size)
    labels = np.where(keep[comp], comp, -1)
    next_label = len(sizes)
    for c in np.flatnonzero(split):  # loops over oversized components only
        nodes = np.flatnonzero(comp == c)
        m = comp[src] == c
        pieces = _leiden(len(nodes), np.searchsorted(nodes, src[m]), np.searchsorted(nodes, dst[m]), w[m], s)
        ok = pieces >= 0
        labels[nodes[ok]] = pieces[ok] + next_label
        next_label += int(pieces.max()) + 1 if len(pieces) else 0
    # Drop groups below the minimum size after splitting.
    valid = labels >= 0
    if valid.any():
        counts = np.bincount(labels[valid])
        small = counts[labels[valid]] < min_size
        idx = np.flatnonzero(valid)
        labels[idx[small]] = -1
    return labels


def _leiden(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, s: RingSettings) -> np.ndarray:
    """Seeded Leiden communities of one component; pieces above the cap are re-split or dropped."""
    import igraph as ig
    import leidenalg

    out = np.full(n, -1, dtype=np.int64)
    todo = [(np.arange(n), src, dst, w, s.leiden_resolution, 0)]
    label = 0
    while todo:
        nodes, a, b, ww, res, depth = todo.pop()
        g = ig.Graph(n=len(nodes), edges=np.column_stack([a, b]).tolist())
        part = leidenalg.find_partition(
            g,
            leidenalg.RBConfigurationVertexPartition,
            weights=ww.astype(float).tolist(),
            resolution_parameter=res,
            seed=s.seed,
        )
        memb = np.asarray(part.membership, dtype=np.int64)
        for k in range(int(memb.max()) + 1 if len(memb) else 0):
            inside = np.flatnonzero(memb == k)
            if len(inside) <= s.max_ring_size:
                out[nodes[inside]] = label
                label += 1
            elif depth < s.leiden_retries and len(inside) < len(nodes):
                m = (memb[a] == k) & (memb[b] == k)
                todo.append(
                    (
                        nodes[inside],
                        np.searchsorted(inside, a[m]),
                        np.searchsorted(inside, b[m]),
                        ww[m],
                        res * 2,
                        depth + 1,
                    )
                )
            elif depth < s.leiden_retries:
                todo.append((nodes, a, b, ww, res * 2, depth + 1))
    return out
