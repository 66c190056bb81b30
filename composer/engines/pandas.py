"""The pandas engine: the stage functions as they are, in this process."""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from composer.engines import Engine
from features.build import build_features
from features.graph_features import add_graph_features, graph_pagerank
from features.rings.grouping import group_locally
from graph.dataset import Dataset
from graph.projection import Projection
from riskgraph.settings import RingSettings


class PandasEngine(Engine):
    name = "pandas"

    def features(
        self, dataset: Dataset, proj: Projection, exclude: Collection[str] = frozenset()
    ) -> dict[str, pd.DataFrame]:
        # PageRank's sparse products (outside the GIL) on the second core beside the entity features
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagerank") as pool:
            ranked = pool.submit(graph_pagerank, proj)
            built = build_features(dataset, proj, exclude=exclude)
            return add_graph_features(built, proj, counts={"pagerank": ranked.result()})

    def group_nodes(
        self, n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, s: RingSettings, min_size: int | None = None
    ) -> np.ndarray:
        return group_locally(n, src, dst, w, s, min_size)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}
