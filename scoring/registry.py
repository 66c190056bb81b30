"""Model registry: every trained model with its version, data hash, features, parameters and
metrics, stored in the results database; one champion per entity type."""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from riskgraph.errors import ModelNotFound
from riskgraph.results import ResultsDB, to_json
from riskgraph.results_schema import models_table


@dataclass(frozen=True)
class ModelRecord:
    version: str
    entity_type: str
    kind: str
    created_at: str
    data_hash: str
    features: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any]
    champion: bool
    staged: bool = False


def _record(row: Any) -> ModelRecord:
    return ModelRecord(
        row.version,
        row.entity_type,
        row.kind,
        row.created_at,
        row.data_hash,
        json.loads(row.features),
        json.loads(row.params),
        json.loads(row.metrics),
        bool(row.champion),
        bool(getattr(row, "staged", False)),
    )


class ModelRegistry:
    def __init__(self, db: ResultsDB) -> None:
        self.db = db

    def register(
        self,
        *,
        entity_type: str,
        kind: str,
        data_hash: str,
        features: list[str],
        params: dict[str, Any],
        metrics: dict[str, Any],
        model: Any | None,
        promote: bool = False,
        run_id: str | None = None,
    ) -> ModelRecord:
        """Store a trained model under a new version id; optionally make it the champion.

        With `run_id`, the version is staged: invisible in listings and never champion until
        that run commits (composer/runs.py)."""
        created = datetime.now(UTC)
        digest = hashlib.sha256(f"{data_hash}{to_json(params)}{created.isoformat()}".encode()).hexdigest()[:6]
        version = f"{entity_type}-{created:%Y%m%dT%H%M%S}-{digest}"
        row = dict(
            version=version,
            entity_type=entity_type,
            kind=kind,
            created_at=created.isoformat(timespec="seconds"),
            data_hash=data_hash,
            features=to_json(features),
            params=to_json(params),
            metrics=to_json(metrics),
            champion=False,
            artifact=pickle.dumps(model) if model is not None else None,
            run_id=run_id,
            staged=run_id is not None,
        )

        def insert() -> Any:
            with self.db.engine.begin() as conn:
                conn.execute(models_table.insert().values(**row))
                return conn.execute(
                    sa.select(models_table.c.version).where(
                        (models_table.c.entity_type == entity_type) & models_table.c.champion
                    )
                ).first()

        has_champion = self.db.retry(insert)
        if run_id is None and (promote or has_champion is None):
            self.promote(version)
        return self.get(version)

    def list(self, entity_type: str | None = None) -> list[ModelRecord]:
        q = (
            sa.select(*[c for c in models_table.c if c.name not in ("artifact", "reference")])
            .where(models_table.c.staged.is_(False))
            .order_by(models_table.c.created_at.desc(), models_table.c.version.desc())
        )
        if entity_type:
            q = q.where(models_table.c.entity_type == entity_type)
        with self.db.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q)]

    def get(self, version: str) -> ModelRecord:
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(models_table).where(models_table.c.version == version)).first()
        if row is None:
            raise ModelNotFound(f"no model version {version!r}")
        return _record(row)

    def load(self, version: str) -> Any:
        """The fitted model object of a version (None for unsupervised scorers)."""
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(models_table.c.artifact).where(models_table.c.version == version)).first()
        if row is None:
            raise ModelNotFound(f"no model version {version!r}")
        return pickle.loads(row.artifact) if row.artifact is not None else None

    def champion(self, entity_type: str) -> ModelRecord | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(models_table).where((models_table.c.entity_type == entity_type) & models_table.c.champion)
            ).first()
        return _record(row) if row else None

    def set_reference(self, version: str, profile: dict[str, Any]) -> None:
        """Keep the profile of the population a version was trained on (the drift reference)."""

        def write() -> None:
            with self.db.engine.begin() as conn:
                conn.execute(
                    models_table.update().where(models_table.c.version == version).values(reference=to_json(profile))
                )

        self.db.retry(write)

    def reference(self, version: str) -> dict[str, Any] | None:
        """The training population's profile of a version (None: not recorded)."""
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(models_table.c.reference).where(models_table.c.version == version)).first()
        if row is None:
            raise ModelNotFound(f"no model version {version!r}")
        value: dict[str, Any] | None = json.loads(row.reference) if row.reference else None
        return value

    def promote(self, version: str) -> ModelRecord:
        """Make `version` the champion of its entity type."""
        rec = self.get(version)
        if rec.staged:
            raise ModelNotFound(f"model version {version!r} belongs to a run that has not committed")

        def swap() -> None:
            with self.db.engine.begin() as conn:
                conn.execute(
                    models_table.update().where(models_table.c.entity_type == rec.entity_type).values(champion=False)
                )
                conn.execute(models_table.update().where(models_table.c.version == version).values(champion=True))

        self.db.retry(swap)
        return self.get(version)
