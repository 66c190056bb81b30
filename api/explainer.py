"""Reasons on demand for entities the pipeline did not explain (outside its `explain_top`):
the champion model's contributions for supervised types, deviation from the type's median
otherwise. Matrices and models are loaded lazily and kept until the results are reloaded."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd

from explain.catalogue import Catalogue, built_in
from explain.reasons import reasons_from_contributions
from scoring.registry import ModelRegistry
from scoring.unsupervised import deviation_contributions


class Explainer:
    def __init__(self, *, features_dir: Path, registry: ModelRegistry, per_entity: int) -> None:
        self.features_dir = features_dir
        self.registry = registry
        self.per_entity = per_entity
        self._lock = threading.Lock()
        self._matrices: dict[str, pd.DataFrame | None] = {}
        self._models: dict[str, Any] = {}
        self._deviation: dict[str, pd.DataFrame] = {}
        self._catalogue: Catalogue | None = None

    @property
    def catalogue(self) -> Catalogue:
        """The served run's reason catalogue (saved beside its feature matrices)."""
        if self._catalogue is None:
            path = self.features_dir / "catalogue.json"
            self._catalogue = Catalogue.from_json(path.read_text(encoding="utf-8")) if path.exists() else built_in()
        return self._catalogue

    def reasons(self, *, entity_type: str, entity_id: str, model_version: str) -> str:
        """JSON list of reasons for one entity ("[]" when nothing can be computed)."""
        with self._lock:
            X = self._matrix(entity_type)
            if X is None or entity_id not in X.index:
                return "[]"
            row = X.loc[[entity_id]]
            model = self._model(model_version)
            if model is not None:
                contrib = model.contributions(row)
                return str(
                    reasons_from_contributions(
                        contrib, row.reindex(columns=contrib.columns), self.catalogue, self.per_entity
                    ).iloc[0]
                )
            if entity_type not in self._deviation:
                self._deviation[entity_type] = deviation_contributions(X)
            contrib = self._deviation[entity_type].loc[[entity_id]]
            return str(
                reasons_from_contributions(
                    contrib, row.reindex(columns=contrib.columns), self.catalogue, self.per_entity
                ).iloc[0]
            )

    def _matrix(self, entity_type: str) -> pd.DataFrame | None:
        if entity_type not in self._matrices:
            path = self.features_dir / f"{entity_type}.parquet"
            X = pd.read_parquet(path) if path.exists() else None
            if X is not None:
                X.index = X.index.astype(str)
            self._matrices[entity_type] = X
        return self._matrices[entity_type]

    def _model(self, version: str) -> Any:
        if not version:
            return None
        if version not in self._models:
            self._models[version] = self.registry.load(version)
        return self._models[version]
