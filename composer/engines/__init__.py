"""Stage engines: the same stage functions on pandas (one process) or on Apache Spark.

An engine is chosen by name, as a graph store is chosen by URL (graph/factory.py): the `engine`
setting or `riskgraph pipeline --engine pandas|spark`. The composer calls the stages through
`Engine` only; the pandas engine delegates to the stage functions unchanged, the Spark engine
(composer/engines/spark.py, PySpark imported only there) runs the stages it implements as
DataFrame work and states in `describe()` which stages still run on the driver.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graph.dataset import Dataset, load_dataset
from graph.projection import Projection
from riskgraph.errors import RiskGraphError
from riskgraph.settings import RingSettings, Settings
from rules.detectors.base import DetectorFn
from scoring.model import CrossFittedRiskModel


class UnknownEngine(RiskGraphError):
    status_code = 400
    code = "unknown_engine"


class Engine(ABC):
    """The stage functions an engine implements (documented here, on the interface only)."""

    name: str
    groups_rings: bool = False  # True: the ring finders of the main process group through `group_nodes`

    def load_dataset(self, folder: Path, on_resolvable: Callable[[Dataset], None] | None = None) -> Dataset:
        """The dataset folder read and validated (graph/dataset.py `load_dataset`: its problems,
        with file, row and column, raised as InvalidDataset). `on_resolvable`: called with the
        tables person resolution reads as soon as they are valid, if the engine can (else never)."""
        return load_dataset(folder, on_resolvable)

    @abstractmethod
    def features(
        self, dataset: Dataset, proj: Projection, exclude: Collection[str] = frozenset()
    ) -> dict[str, pd.DataFrame]:
        """Each entity type's feature table (entity attributes, aggregates, graph features),
        rows in the projection's sorted id order: features/build.py + features/graph_features.py."""

    @abstractmethod
    def group_nodes(
        self, n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, s: RingSettings, min_size: int | None = None
    ) -> np.ndarray:
        """Ring grouping (features/rings/grouping.py `group_nodes`): connected components,
        Leiden-split when too big or too sparse; one label per node, -1 = no group."""

    def margin_and_reasons(
        self, model: CrossFittedRiskModel, X: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every row of `X` scored by a fitted model: its raw margin and strongest path
        attributions (`CrossFittedRiskModel.margin_and_reasons`, scoring/score.py `RowScorer`)."""
        return model.margin_and_reasons(X)

    def detectors(self) -> dict[str, DetectorFn]:
        """Rule detectors (by name, rules/detectors/) the engine runs its own way; the others
        run as they are."""
        return {}

    def contributions(self, model: CrossFittedRiskModel, X: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contributions of the rows of `X` (`CrossFittedRiskModel.contributions`)."""
        return model.contributions(X)

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What ran where, for the run's manifest: the engine, its master, the stages it ran
        and the stages that fell back to the driver (with why)."""

    def close(self) -> None:
        """Release the engine's resources (the Spark session of a local master)."""


def _pandas(settings: Settings) -> Engine:
    from composer.engines.pandas import PandasEngine

    return PandasEngine()


def _spark(settings: Settings) -> Engine:
    from composer.engines.spark import SparkEngine  # PySpark is imported only for this engine

    return SparkEngine.of(settings)


ENGINES: dict[str, Callable[[Settings], Engine]] = {"pandas": _pandas, "spark": _spark}


def open_engine(settings: Settings, name: str | None = None) -> Engine:
    """The engine named (default: the `engine` setting)."""
    chosen = name or settings.engine
    factory = ENGINES.get(chosen)
    if factory is None:
        raise UnknownEngine(f"engine {chosen!r}: use one of {', '.join(ENGINES)}")
    return factory(settings)
