"""All configuration in one object, built once (from RISKGRAPH_* environment variables or
defaults) and passed in. Nothing else in the code base reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
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
    min_positives: int = 5  # fewer labelled positives (or negatives): unsupervised score
    num_leaves: int = 15
    learning_rate: float = 0.06
    n_estimators: int = 200
    min_child_samples: int = 20
    max_bin: int = 63  # histogram bins per feature (LightGBM default 255; 63 trains ~2x faster)
    feature_fraction: float = 0.8
    threads: int = 2
    small_training_rows: int = 20_000  # train on one thread below this many labelled rows
    monotone: dict[str, int] = Field(default_factory=dict)  # feature -> +1 / -1 constraint
    # the rules' evidence as one linear term of the margin, weighed by the labels (scoring/evidence.py)
    rule_evidence: bool = True
    explain_top: int = 2_000  # the riskiest N per type: exact TreeSHAP, worded with context by the pipeline
    reasons_per_entity: int = 4  # at most 4 (the reason schema's limit)
    # gender, age and health columns (graph/contract.py PROTECTED_*) as model features: off by
    # default; even when on they never appear in reasons
    use_protected_attributes: bool = False
    # a label's training row is built from the data cut at its as_of (composer/labels.py); more
    # distinct as_of days than this are grouped by month (cut at the end of the month before)
    label_max_cuts: int = Field(default=12, ge=1)
    # processes the cut days are shared between (each cut rebuilds features, rules and rings)
    label_cut_lanes: int = Field(default=2, ge=1)
    # out-of-time validation (scoring/oot.py): labels dated after the cut are the later period;
    # the cut is `oot_cut` (YYYY-MM-DD) or else leaves the latest `oot_share` of dated labels after it
    oot_cut: str | None = None
    oot_share: float = Field(default=0.2, gt=0, lt=1)


class RingSettings(BaseModel):
    """Named thresholds of ring detection (features/rings/); defaults follow DOMAIN.md.

    Set from the environment as RISKGRAPH_RINGS__<FIELD>, e.g. RISKGRAPH_RINGS__MAX_RING_SIZE=100.
    Facility rings have no detection thresholds of their own: they read the hits of the rules
    named here (thresholds live in the rule pack and the rule overrides).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Any ring type
    max_ring_size: int = Field(default=250, ge=2)  # no ring is larger; bigger groups are split, else dropped
    min_ring_size: int = Field(default=3, ge=2)  # smaller groups are not reported
    min_density: float = 0.25  # groups of >= split_check_size sparser than this are split
    split_check_size: int = 8  # density check applies from this group size up
    leiden_resolution: float = 1.0  # RBConfiguration resolution for splitting groups
    leiden_retries: int = 4  # resolution doubles on each retry while a piece is too big
    seed: int = 42  # Leiden seed: same input, same rings
    # Identity rings
    identifier_max_degree: int = 50  # identifier values shared by more entities are too common
    identity_min_size: int = 2  # two strangers sharing a phone and a bank account is a ring
    phone_weight: float = 1.0  # link weight of a shared phone
    bank_account_weight: float = 1.0  # link weight of a shared bank account
    address_weight: float = 0.0  # an address alone never links (families share them)
    identity_min_link: float = 1.0  # two entities are linked from this shared weight up
    # Collusion rings
    min_covisit_days: int = 3  # k: same-day clinic+pharmacy days to count as repeated
    min_covisit_overlap: float = 0.5  # shared days / smaller member's days at the pair
    min_pair_lift: float = 2.0  # clinic-pharmacy same-day patients vs. their sizes
    prescription_is_visit: bool = False  # a purchase naming a clinic counts as a visit there
    #                                   (off: regular refills would look like repeated co-visits)
    max_event_persons: int = 1000  # (clinic, pharmacy, day) events larger are skipped (cost)
    pair_share: float = 0.25  # clinic-pharmacy pairs with this share of a ring's links join it
    fraudar_c: float = 5.0  # event weight 1/log(event size + c): big days count less
    # Enrolment rings
    short_spell_months: int = 12  # contribution spells this short are suspicious
    early_claim_months: int = 12  # benefit claimed within this many months of enrolling
    shell_min_share: float = 0.6  # share of an employer's enrolees that are suspicious
    shell_min_enrolees: int = 2  # a shell employer carries at least this many suspicious
    enrolment_min_shells: int = 2  # an agency runs at least this many shells
    # Broker rings
    broker_min_cards: int = 3  # broker + cards tied by phones / bank accounts
    broker_min_pharmacies: int = 4  # distinct pharmacies the group buys at
    broker_min_codays: int = 3  # pharmacy-days with several of the group's cards buying
    # Facility rings: the rule hits they read (split admissions, phantom stays, over-prescribing)
    split_admission_rule: str = "med_split_admission"  # hits at the clinic of both stays
    phantom_stay_rule: str = "med_activity_during_stay"  # hits at the clinic of the stay
    over_prescribing_rule: str = "med_overlapping_long_supply"  # hits at the pharmacy of the refill
    oversupply_min_hits: int = 2  # a person's over-prescribing hits at one pharmacy (one alone
    #                                   is a slip, or a card of a broker buying around)
    facility_min_persons: int = 3  # persons with such hits at one facility
    facility_min_lift: float = 5.0  # their share of the facility's base vs. the population's
    facility_alpha: float = 0.25  # Poisson tail of the count at the population rate must be
    #                                   <= alpha / facilities of the type (Bonferroni: about alpha
    #                                   false facility rings per kind of hit, whatever the scale)
    facility_min_concentration: float = 0.8  # share of a person's hits of the kind at the facility
    duplicate_share: float = 0.5  # a ring with this share of its members inside a ring of a
    #                                   more specific type (collusion > enrolment > facility >
    #                                   broker > identity) repeats it and is dropped
    # Scoring
    money_scale: float = 50_000.0  # money at stake where its component reaches 1 - 1/e
    weight_density: float = 0.25
    weight_size: float = 0.1
    weight_money: float = 0.2
    weight_strength: float = 0.3
    weight_labels: float = 0.15  # label share: ranking only, never a model feature

    @property
    def label_weight_share(self) -> float:
        """The label share's part of ring_score (its weight over all the weights)."""
        total = self.weight_density + self.weight_size + self.weight_money + self.weight_strength + self.weight_labels
        return self.weight_labels / max(total, 1e-9)


class SparkSettings(BaseModel):
    """The Spark engine (composer/engines/spark.py, docs/scale.md): where it runs and how big."""

    # local[N] / local[*] in this process, spark://host:7077 for a standalone cluster, or a Spark
    # Connect URL sc://host:15002
    master: str = "local[*]"
    driver_memory: str = "2g"  # local mode: the whole engine's heap
    shuffle_partitions: int = 8  # spark.sql.shuffle.partitions (docs/scale.md: about 2-3 per core)
    io_encryption: bool = True  # spark.io.encryption.enabled: shuffle and spill files encrypted
    batch_rows: int = 10_000  # Arrow batch size of mapInPandas / applyInPandas


class AlertSettings(BaseModel):
    """Alert lineage and what counts as material (composer/alerts.py, docs/cases.md).

    Set from the environment as RISKGRAPH_ALERTS__<FIELD>, e.g. RISKGRAPH_ALERTS__REOPEN_SCORE_RISE=0.2.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lineage_min_jaccard: float = Field(default=0.5, gt=0, le=1)  # a ring inherits an earlier id from this overlap up
    min_severity: int = Field(default=1, ge=1, le=4)  # rule hits from this severity up raise entity alerts
    serious_min_severity: int = Field(default=3, ge=1, le=4)  # a rule this severe (or marked serious) is serious
    reopen_on_new_member: bool = True  # material: a ring gained a member
    reopen_on_serious_rule: bool = True  # material: a serious rule hit the alert's subject for the first time
    reopen_score_rise: float = Field(default=0.1, ge=0)  # material: the score rose by more than this


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKGRAPH_", env_nested_delimiter="__")

    home: Path = Path(".riskgraph")  # store, runs, results DB, local servers' data
    # the master secret (riskgraph/server_keys.py): RISKGRAPH_SECRET_KEY, else this file, else HOME/secret.key
    secret_key_file: Path | None = None
    # personal values at rest (riskgraph/field_crypto.py): "aes-gcm" or "sm4" (SM4-CTR + HMAC-SM3)
    field_encryption: str = "aes-gcm"
    store_url: str = ""  # default: memory://<home>/store
    results_url: str = ""  # default: sqlite under `home`
    retention_runs: int = Field(default=5, ge=1)  # committed runs kept whole (snapshot, files, results)
    run_heartbeat_s: float = 30.0  # a running run's heartbeat ...
    run_stale_after_s: float = 180.0  # ... and when a run without one counts as dead
    min_free_bytes: int = 200_000_000  # refuse to start a run with less free space than this
    fault: str = ""  # tests only: POINT[:kill|enospc|erofs], see riskgraph/faults.py
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str = ""
    rule_packs: Path | None = None  # default: the packs shipped in rules/packs
    rule_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    rules_disabled: list[str] = Field(default_factory=list)
    scorecard: Scorecard = Field(default_factory=Scorecard)
    bands: GradeBands = Field(default_factory=GradeBands)
    model: ModelSettings = Field(default_factory=ModelSettings)
    rings: RingSettings = Field(default_factory=RingSettings)  # env RISKGRAPH_RINGS__<FIELD>
    engine: str = "pandas"  # the stage engine: "pandas" (one process) or "spark" (composer/engines/)
    spark: SparkSettings = Field(default_factory=SparkSettings)  # env RISKGRAPH_SPARK__<FIELD>

    # person resolution (一数一源, docs/resolution.md): pairs at or above resolve_review_high merge,
    # pairs from resolve_review_low up to it go to the clerical-review list
    resolve: bool = True
    resolve_review_low: float = Field(default=0.5, ge=0, le=1)
    resolve_review_high: float = Field(default=0.95, ge=0, le=1)
    resolve_registry_threshold: float = Field(default=0.9, ge=0, le=1)  # a registry row matches at or above
    resolve_memory_limit: str = "4GB"  # DuckDB's memory cap; it spills to HOME/tmp beyond it
    resolve_threads: int = Field(default=2, ge=1)
    # a run reuses the served run's fitted person model (m, u) instead of re-running EM, unless
    # resolve_refit, or the record count moved by more than resolve_refit_drift (a fraction) from
    # the count the model was fitted on
    resolve_refit: bool = False
    resolve_refit_drift: float = Field(default=0.2, ge=0)
    alerts: AlertSettings = Field(default_factory=AlertSettings)  # env RISKGRAPH_ALERTS__<FIELD>
    progress: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: dict[str, str] = Field(default_factory=dict)  # key -> role

    @model_validator(mode="after")
    def _review_band(self) -> Settings:
        if self.resolve_review_low > self.resolve_review_high:
            raise ValueError("resolve_review_low must not exceed resolve_review_high")
        return self

    @property
    def store(self) -> str:
        """The graph store URL in force (the embedded store under `home` unless set)."""
        return self.store_url or f"memory://{self.home.as_posix()}/store"

    @property
    def results_database_url(self) -> str:
        return self.results_url or f"sqlite:///{(self.home / 'results.db').as_posix()}"

    # -- HTTP API (api/) ----------------------------------------------------------------------
    api_scheduler: bool = True  # run the scheduled jobs inside `riskgraph serve`
    api_audit_flush_ms: int = 200  # audit rows that hold no answer (promotions, job starts) wait at most this
    api_max_body_bytes: int = 1_000_000  # larger request bodies get 413
    api_batch_max: int = 1_000  # entities per POST /v1/credit/batch
    api_page_max: int = 500  # rows per page of any list
    api_export_max_rows: int = 1_000_000  # rows per CSV export
    api_neighbour_limit_max: int = 1_000  # nodes per neighbourhood answer
    api_path_max_hops: int = 6
    api_results_poll_s: float = 30.0  # reload served results when another process rewrote them
    api_max_header_bytes: int = 16_384  # request line + headers over this get 431 (docs/security.md)
    api_graph_timeout_s: float = 10.0  # a graph query (entity, neighbours, paths, rings) answering later gets 504
    api_graph_per_key: int = 2  # graph queries one key may run at once (more wait, within the timeout)
    api_graph_threads: int = 4  # graph queries running at once, all keys together
    api_keys_refresh_s: float = 5.0  # keys created or revoked by `riskgraph keys` take effect within this
    # -- scheduled jobs (api/jobs.py), crontab syntax -----------------------------------------
    job_timezone: str = "UTC"
    job_rescore_cron: str = "0 2 * * *"  # nightly re-scoring with the champion models
    job_retrain_cron: str = "0 3 * * sun"  # weekly retraining: new candidate versions
    job_rings_cron: str = "0 1 * * *"  # ring refresh
