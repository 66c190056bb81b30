"""All configuration in one object, built once (from RISKGRAPH_* environment variables or
defaults) and passed in. Nothing else in the code base reads the environment."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GradeBands(BaseModel):
    """Minimum credit points for each grade; anything below the last band is D."""

    A: float = 650
    B: float = 550
    C: float = 450

    def grade(self, points: float) -> str:
        if points >= self.A:
            return "A"
        if points >= self.B:
            return "B"
        if points >= self.C:
            return "C"
        return "D"


class Scorecard(BaseModel):
    """Scorecard scaling: `base_points` at `base_odds` good:bad, `pdo` points to double the odds."""

    base_points: float = 600
    base_odds: float = 20
    pdo: float = 50
    min_points: float = 300
    max_points: float = 900


class ModelSettings(BaseModel):
    folds: int = 5
    seed: int = 7
    min_positives: int = 5          # fewer labelled positives (or negatives): unsupervised score
    num_leaves: int = 15
    learning_rate: float = 0.06
    n_estimators: int = 200
    min_child_samples: int = 20
    max_bin: int = 63               # histogram bins per feature (LightGBM default 255; 63 trains ~2x faster)
    feature_fraction: float = 0.8
    threads: int = 2
    small_training_rows: int = 20_000  # train on one thread below this many labelled rows
    monotone: dict[str, int] = Field(default_factory=dict)  # feature -> +1 / -1 constraint
    explain_top: int = 10_000       # reasons computed for the riskiest N per entity type
    reasons_per_entity: int = 5


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKGRAPH_", env_nested_delimiter="__")

    home: Path = Path(".riskgraph")                 # store, runs, results DB, local servers' data
    store_url: str = ""                             # default: memory://<home>/store
    results_url: str = ""                           # default: sqlite under `home`
    retention_runs: int = Field(default=5, ge=1)    # committed runs kept whole (snapshot, files, results)
    run_heartbeat_s: float = 30.0                   # a running run's heartbeat ...
    run_stale_after_s: float = 180.0                # ... and when a run without one counts as dead
    min_free_bytes: int = 200_000_000               # refuse to start a run with less free space than this
    fault: str = ""                                 # tests only: POINT[:kill|enospc|erofs], see riskgraph/faults.py
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str = ""
    rule_packs: Path | None = None                  # default: the packs shipped in rules/packs
    rule_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    rules_disabled: list[str] = Field(default_factory=list)
    scorecard: Scorecard = Field(default_factory=Scorecard)
    bands: GradeBands = Field(default_factory=GradeBands)
    model: ModelSettings = Field(default_factory=ModelSettings)
    progress: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: dict[str, str] = Field(default_factory=dict)  # key -> role

    @property
    def store(self) -> str:
        """The graph store URL in force (the embedded store under `home` unless set)."""
        return self.store_url or f"memory://{self.home.as_posix()}/store"

    @property
    def results_database_url(self) -> str:
        return self.results_url or f"sqlite:///{(self.home / 'results.db').as_posix()}"
    # -- HTTP API (api/) ----------------------------------------------------------------------
    api_scheduler: bool = True                # run the scheduled jobs inside `riskgraph serve`
    api_audit_flush_ms: int = 200             # audit queue flushed at least this often ...
    api_audit_batch_rows: int = 500           # ... or as soon as this many rows wait
    api_audit_max_pending: int = 50_000       # beyond this, a request waits for a flush (never drops)
    api_max_body_bytes: int = 1_000_000       # larger request bodies get 413
    api_batch_max: int = 1_000                # entities per POST /v1/credit/batch
    api_page_max: int = 500                   # rows per page of any list
    api_export_max_rows: int = 1_000_000      # rows per CSV export
    api_neighbour_limit_max: int = 1_000      # nodes per neighbourhood answer
    api_path_max_hops: int = 6
    api_results_poll_s: float = 30.0          # reload served results when another process rewrote them
    # -- scheduled jobs (api/jobs.py), crontab syntax -----------------------------------------
    job_timezone: str = "UTC"
    job_rescore_cron: str = "0 2 * * *"       # nightly re-scoring with the champion models
    job_retrain_cron: str = "0 3 * * sun"     # weekly retraining: new candidate versions
    job_rings_cron: str = "0 1 * * *"         # ring refresh
