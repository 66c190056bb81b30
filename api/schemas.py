"""Request and response models of the HTTP API (separate from internal objects)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.contract import ENTITY_TYPES, IDENTIFIER_TYPES
from graph.projection import REL_TYPES

EntityType = Enum("EntityType", {t: t for t in ENTITY_TYPES}, type=str)  # type: ignore[misc]
NodeType = Enum("NodeType", {t: t for t in ENTITY_TYPES + IDENTIFIER_TYPES}, type=str)  # type: ignore[misc]
RelType = Enum("RelType", {t: t for t in REL_TYPES}, type=str)  # type: ignore[misc]
Grade = Literal["A", "B", "C", "D"]
EntityId = Annotated[str, Field(min_length=1, max_length=128, examples=["P0000001"])]

PERSON_EXAMPLE: dict[str, Any] = {"entity_type": "person", "entity_id": "P0000001"}


class ErrorBody(BaseModel):
    code: str = Field(examples=["entity_not_found"])
    message: str = Field(examples=["no person 'P9' in the scored results"])
    detail: Any | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Bands(BaseModel):
    A: float = 650
    B: float = 550
    C: float = 450


class Reason(BaseModel):
    """One reason in the catalogue's schema (docs/reasons.md)."""

    code: str = Field(description="stable reason code, e.g. RG-M-006 (docs/reasons.md)")
    direction: Literal["raises_risk", "lowers_risk"]
    value: Any | None = Field(None, description="the entity's value of the feature (a grade for a rule cap)")
    contribution: float | None = Field(None, description="push on the score (log-odds); null for a rule cap")
    text: str = Field(description="plain-language reason in the asked language (lang)")
    text_zh: str


class Improvement(BaseModel):
    """What would raise the grade: the nearest better band and what holds the entity back."""

    next_grade: Grade | None = Field(description="null when already A or when a rule cap holds the grade")
    points_needed: int | None
    held_back_by: list[str] = Field(description="reason codes that hold the grade back")
    text: str
    text_zh: str


class SchemeCriterion(BaseModel):
    id: str
    clause: str
    title_en: str
    title_zh: str


class SchemeItem(BaseModel):
    """An official scheme's grade or list status of the entity, beside the model's grade."""

    scheme: str = Field(examples=["labour_integrity"])
    version: str
    title: str
    title_zh: str
    legal_basis: str
    status: str = Field(
        description="the scheme's grade (A, B, C) or list status (listed, removed, expired, not_listed)"
    )
    clause: str = Field(description="the clause of the regulation that gives this status")
    criteria: list[SchemeCriterion] = Field(description="the criteria met, worst first")
    listed_date: str | None = None
    expires_date: str | None = None
    removed_date: str | None = None
    removal: str | None = Field(None, description="expired | early_removal")
    source: str = Field(description="data (this run's records) or import (the list exchange)")
    cap: Grade | None = Field(description="the A-D cap the policy maps this status onto")
    binds: bool = Field(description="the cap is stricter than the model's grade and sets the final grade")


class Loan(BaseModel):
    cap_yuan: float
    term_months: int


class TreatmentReason(BaseModel):
    scheme: str
    status: str
    text: str
    text_zh: str


class Treatments(BaseModel):
    """What the policy in force says to do with this grade and these scheme statuses."""

    priority_handling: bool = Field(description="优先办理")
    commitment_procedure: bool = Field(description="the credit-commitment procedure (告知承诺) is allowed")
    online_scope: Literal["none", "limited", "standard", "full"] = Field(description="网上业务范围")
    extra_checks: list[str]
    startup_loan: Loan = Field(description="start-up guarantee loan cap and term (创业担保贷款) for this entity type")
    because: list[TreatmentReason] = Field(description="scheme statuses that made the treatments stricter")


class PolicyRef(BaseModel):
    id: str
    version: str
    effective_date: str


class CreditResponse(BaseModel):
    """One entity's credit grade, with everything needed to justify a decision."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "entity_type": "person",
                    "entity_id": "P0000001",
                    "grade": "D",
                    "credit_points": 412.3,
                    "probability": 0.4123,
                    "score_grade": "C",
                    "grade_cap": "D",
                    "cap_applied": True,
                    "model_version": "person-20260101T020000-ab12cd",
                    "reasons": [
                        {
                            "code": "RG-C-001",
                            "direction": "raises_risk",
                            "value": "D",
                            "contribution": None,
                            "text": "Grade capped at D by the rule: Benefit fraud over 10,000 yuan (serious discredit)",
                            "text_zh": "因规则“骗取社会保险待遇超过1万元（严重失信）”，等级限定为 D",
                        },
                        {
                            "code": "RG-B-013",
                            "direction": "raises_risk",
                            "value": 24000.0,
                            "contribution": 1.14,
                            "text": "24,000 yuan of benefits paid after the recorded death date",
                            "text_zh": "死亡后领取待遇 24,000 元",
                        },
                    ],
                    "to_improve": {
                        "next_grade": None,
                        "points_needed": None,
                        "held_back_by": [],
                        "text": "A rule finding holds the grade at D: a better score cannot raise it until "
                        "the finding is resolved",
                        "text_zh": "规则认定将等级限定为 D：认定撤销前，分数提高也不能提升等级",
                    },
                    "reason_catalogue": "2026.11.1",
                    "lang": "en",
                    "rule_hits": ["ben_fraud_over_10000"],
                    "bands": {"A": 650, "B": 550, "C": 450},
                    "as_of": "2026-01-01T02:00:00+00:00",
                    "run_id": "20260101T020000-ab12cd",
                    "schemes": [],
                    "treatments": {
                        "priority_handling": False,
                        "commitment_procedure": False,
                        "online_scope": "none",
                        "extra_checks": ["document_review", "on_site_check"],
                        "startup_loan": {"cap_yuan": 0.0, "term_months": 0},
                        "because": [],
                    },
                    "policy": {"id": "credit_treatments", "version": "2026.1", "effective_date": "2026-01-01"},
                    "decision_id": "019b7c1f2a3b8e0c4d5f6a7b8c9d0e1f",
                }
            ]
        }
    )

    decision_id: str | None = Field(
        default=None, description="this answer's id in the audit log (credit calls; durable before the answer is sent)"
    )
    entity_type: str
    entity_id: str
    grade: Grade
    credit_points: float = Field(description="300..900, higher is more trustworthy")
    probability: float = Field(description="calibrated probability of fraud or serious discredit")
    score_grade: Grade = Field(description="the grade the points alone give, before any rule cap")
    grade_cap: Grade | None = Field(description="the strictest cap a rule imposes, if any")
    cap_applied: bool
    model_version: str
    reasons: list[Reason] = Field(description="at most 4, strongest first; a rule cap comes first")
    to_improve: Improvement
    reason_catalogue: str = Field(description="version of the reason catalogue the texts come from")
    lang: Literal["en", "zh"]
    rule_hits: list[str]
    bands: Bands
    as_of: str = Field(description="when these scores were committed (ISO 8601, UTC)")
    run_id: str = Field(description="the committed run these scores come from")
    schemes: list[SchemeItem] = Field(default_factory=list, description="official scheme grades beside the model's")
    treatments: Treatments | None = Field(None, description="the treatments of the policy in force")
    policy: PolicyRef | None = Field(None, description="the policy version the treatments come from")


class EntityKey(BaseModel):
    entity_type: EntityType
    entity_id: EntityId


class CreditBatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"items": [PERSON_EXAMPLE, {"entity_type": "employer", "entity_id": "E0001"}]}]
        },
    )

    items: list[EntityKey] = Field(min_length=1, description="at most `api_batch_max` (default 1000)")


class CreditBatchResponse(BaseModel):
    results: list[CreditResponse]
    not_found: list[EntityKey]
    run_id: str


RiskSort = Literal["priority", "risk_score", "credit_points", "amount_at_stake", "grade", "region", "entity_id"]


class RiskItem(BaseModel):
    entity_type: str
    entity_id: str
    rank: int = Field(description="place in the type's default (priority) order, 1 first")
    priority: int = Field(
        description="triage priority, 1 first: serious-rule D caps, then other caps, then expected loss"
    )
    risk_score: float
    credit_points: float
    amount_at_stake: float | None = Field(description="money at stake in yuan; null when the data has no amounts")
    grade: Grade
    grade_cap: Grade | None
    region: str | None
    rule_hits: list[str]
    rings: list[str]
    model_version: str
    top_reasons: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the first 3 stored reasons, each as in the credit answer's `reasons` (with `text` and "
        "`text_zh`); empty when the pipeline did not explain the entity",
    )


class RiskPage(BaseModel):
    items: list[RiskItem]
    total: int = Field(description="rows matching the filters")
    offset: int = Field(description="matching rows before this page (the first item is row offset + 1)")
    sort: RiskSort = Field(description="the column the list is sorted by (ties by entity_id)")
    order: Literal["asc", "desc"] = Field(description="the sort's order (rows without a value come last)")
    next_cursor: str | None = Field(
        description="pass as `cursor` (with the same sort and order) for the next page; null on the last"
    )
    as_of: str
    run_id: str = Field(description="the committed run these rows come from")


class RegionList(BaseModel):
    regions: list[str] = Field(description="distinct non-empty regions of the type's scored entities, sorted")


class RuleHitOut(BaseModel):
    rule_id: str
    severity: int
    grade_cap: Grade | None
    evidence: Any


class RingRef(BaseModel):
    ring_id: str
    ring_type: str
    ring_score: float


class EntityDetail(BaseModel):
    entity_type: str
    entity_id: str
    attributes: dict[str, Any] = Field(description="personal data masked unless the role may see it")
    masked: bool
    credit: CreditResponse | None
    rule_hits: list[RuleHitOut]
    rings: list[RingRef]


class NodeOut(BaseModel):
    type: str
    id: str
    attributes: dict[str, Any]
    grade: Grade | None = None
    risk_score: float | None = None


class EdgeOut(BaseModel):
    source_type: str
    source_id: str
    target_type: str
    target_id: str
    relation: str
    count: float = 1


class GraphOut(BaseModel):
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    truncated: bool = False
    masked: bool


class PathOut(GraphOut):
    found: bool
    hops: int | None


class RingSummary(BaseModel):
    ring_id: str
    ring_type: str
    ring_score: float
    size: int
    money_at_stake: float | None = None
    why: str


class RingPage(BaseModel):
    items: list[RingSummary]
    total: int
    next_cursor: str | None


class RingDetail(RingSummary):
    members: list[NodeOut]
    subgraph: GraphOut


class LabelCounts(BaseModel):
    fraud: int = Field(description="confirmed-fraud labels")
    not_fraud: int = Field(description="labels confirmed as not fraud")


class ModelOut(BaseModel):
    version: str
    entity_type: str
    kind: str
    created_at: str
    data_hash: str
    champion: bool
    n_features: int
    metrics: dict[str, Any] | None = Field(
        description="headline metrics (calibration table omitted); null when withheld (see metrics_withheld)"
    )
    metrics_withheld: str | None = Field(
        default=None, description="why the metrics are withheld: fewer than 30 labels in a class"
    )
    label_counts: LabelCounts | None = Field(default=None, description="labels the metrics were computed on")


class ModelDetail(ModelOut):
    features: list[str]
    params: dict[str, Any]


class ModelMetrics(BaseModel):
    version: str
    entity_type: str
    kind: str
    metrics: dict[str, Any] | None = Field(description="null when withheld (see metrics_withheld)")
    metrics_withheld: str | None = None
    label_counts: LabelCounts | None = None


class RuleOut(BaseModel):
    pack: str
    version: str
    rule_id: str
    entity_type: str
    severity: str
    severity_level: int
    detector: str
    params: dict[str, Any]
    grade_cap: str | None
    enabled: bool
    title_en: str
    title_zh: str


class JobRunOut(BaseModel):
    run_id: int
    job_id: str
    started_at: str
    finished_at: str | None
    status: str
    message: str | None


class JobOut(BaseModel):
    id: str
    name: str
    description: str
    schedule: str
    next_run_at: str | None
    running: bool
    last_run: JobRunOut | None


class JobDetail(JobOut):
    history: list[JobRunOut]


class JobStarted(BaseModel):
    run_id: int
    job_id: str
    status: Literal["running"] = "running"


class AuditRow(BaseModel):
    id: int
    at: str
    actor: str
    role: str
    action: str
    entity_type: str | None
    entity_id: str | None
    model_version: str | None
    grade: str | None
    detail: str | None
    decision_id: str | None = None  # a credit answer's (and its replays') decision id
    run_id: str | None = None  # the run the row is about


class AuditPage(BaseModel):
    items: list[AuditRow]
    next_cursor: str | None


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)


class PolicyVersionOut(BaseModel):
    version: str
    effective_date: str
    changed_by: str
    changed_at: str
    note: str
    policy: dict[str, Any] = Field(description="the whole policy version (rules/policy.py `Policy`)")


class PolicyInForce(BaseModel):
    version: str
    effective_date: str


class PolicyOut(BaseModel):
    id: str
    in_force: PolicyInForce | None
    versions: list[PolicyVersionOut] = Field(description="every version, in the order added")


class PolicyPut(BaseModel):
    """A new version: its number, the day it takes effect and the policy itself (title_en,
    title_zh, scheme_caps, grades with their treatments, scheme_overrides)."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=64, examples=["2026.2"])
    effective_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-12-01"])
    policy: dict[str, Any]
    note: str = Field("", max_length=500)
