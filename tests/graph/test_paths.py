"""The memory store's shortest path searches only as deep as asked, and finds the very path a
whole-graph breadth-first search (scipy's) would: same predecessors, same hops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from graph.dataset import load_dataset
from graph.memory_store import breadth_first_path
from graph.projection import Projection

SAMPLE = Path(__file__).resolve().parents[2] / "data_samples"


def _scipy_path(adj, a: int, b: int, max_hops: int) -> list[int] | None:
    _, pred = csgraph.breadth_first_order(adj, a, directed=False, return_predecessors=True)
    if a == b:
        return [a]
    if pred[b] < 0:
        return None
    path = [b]
    while path[-1] != a:
        path.append(int(pred[path[-1]]))
    return path[::-1] if len(path) - 1 <= max_hops else None


def test_bounded_search_finds_the_whole_graph_search_s_path() -> None:
    proj = Projection(load_dataset(SAMPLE))
    adj = proj.adjacency()
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(300):
        a, b = (int(x) for x in rng.integers(0, proj.n_nodes, size=2))
        if a == b:
            continue
        for max_hops in (1, 2, 4, 6):
            expected = _scipy_path(adj, a, b, max_hops)
            assert breadth_first_path(adj, a, b, max_hops) == expected, (a, b, max_hops)
            found += expected is not None
    assert found > 100  # most pairs of the sample are linked within a few hops


def test_a_node_out_of_reach_has_no_path() -> None:
    # 0-1-2-3 in a line, 4 alone
    s, t = np.array([0, 1, 2]), np.array([1, 2, 3])
    adj = sp.csr_matrix((np.ones(6, dtype=np.int8), (np.r_[s, t], np.r_[t, s])), shape=(5, 5))
    adj.sort_indices()
    assert breadth_first_path(adj, 0, 3, 3) == [0, 1, 2, 3]
    assert breadth_first_path(adj, 0, 3, 2) is None
    assert breadth_first_path(adj, 0, 4, 6) is None
    assert breadth_first_path(adj, 4, 0, 6) is None
