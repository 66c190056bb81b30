"""Model owners: models, retraining, jobs, rules and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import operations
from api.deps import OwnerCaller, RulesCaller, StateDep
from api.schemas import (
    AuditPage,
    EntityType,
    ErrorResponse,
    JobDetail,
    JobOut,
    JobRunOut,
    JobStarted,
    ModelDetail,
    ModelMetrics,
    ModelOut,
    RuleOut,
)

router = APIRouter(
    prefix="/v1",
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
Version = Annotated[str, Path(min_length=1, max_length=64, examples=["person-20260101T020000-ab12cd"])]
JobId = Annotated[str, Path(min_length=1, max_length=64, examples=["nightly-rescore"])]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/models", response_model=list[ModelOut], tags=["models"], summary="Model versions, newest first")
async def list_models(caller: OwnerCaller, state: StateDep, entity_type: EntityType | None = None) -> list[ModelOut]:
    return [
        ModelOut.model_validate(m)
        for m in await operations.models_list(state=state, entity_type=entity_type.value if entity_type else None)
    ]


@router.post(
    "/models/retrain",
    response_model=JobStarted,
    status_code=202,
    tags=["models"],
    responses={409: {"model": ErrorResponse}},
    summary="Retrain now (background job)",
)
async def retrain(caller: OwnerCaller, state: StateDep) -> JobStarted:
    """Starts `weekly-retrain` now: new candidate versions, promotion stays explicit."""
    return JobStarted.model_validate(await operations.job_start(state=state, principal=caller, job_id="weekly-retrain"))


@router.get(
    "/models/{version}",
    response_model=ModelDetail,
    tags=["models"],
    responses={404: {"model": ErrorResponse}},
    summary="One model version",
)
async def show_model(version: Version, caller: OwnerCaller, state: StateDep) -> ModelDetail:
    return ModelDetail.model_validate(await operations.model_detail(state=state, version=version))


@router.get(
    "/models/{version}/metrics",
    response_model=ModelMetrics,
    tags=["models"],
    responses={404: {"model": ErrorResponse}},
    summary="Out-of-fold metrics of a version",
)
async def model_metrics(version: Version, caller: OwnerCaller, state: StateDep) -> ModelMetrics:
    return ModelMetrics.model_validate(await operations.model_metrics(state=state, version=version))


@router.post(
    "/models/{version}/promote",
    response_model=ModelOut,
    tags=["models"],
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
    summary="Make a version its type's champion (through the gate)",
)
async def promote_model(
    version: Version,
    caller: OwnerCaller,
    state: StateDep,
    force_reason: Annotated[
        str | None, Query(min_length=1, max_length=500, description="promote past a refusing gate, for this reason")
    ] = None,
) -> ModelOut:
    """Through the promotion gate (409 `promotion_refused` with its reasons: out-of-time AUC more
    than 0.01 below the champion's, score PSI over 0.25 against it, or under 30 labels a class);
    `force_reason` overrides a refusal and is audited. Served scores switch at the next
    `nightly-rescore` (or run it now via /v1/jobs)."""
    return ModelOut.model_validate(
        await operations.promote(state=state, principal=caller, version=version, force_reason=force_reason)
    )


@router.get("/jobs", response_model=list[JobOut], tags=["jobs"], summary="Scheduled jobs")
async def list_jobs(caller: OwnerCaller, state: StateDep) -> list[JobOut]:
    return [JobOut.model_validate(j) for j in await operations.jobs_list(state=state)]


@router.get("/jobs/runs", response_model=list[JobRunOut], tags=["jobs"], summary="Job run history")
async def job_runs(
    caller: OwnerCaller,
    state: StateDep,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(running|succeeded|failed)$")] = None,
    limit: Limit = 50,
) -> list[JobRunOut]:
    return [
        JobRunOut.model_validate(r)
        for r in await operations.job_runs(state=state, job_id=job_id, status=status, limit=limit)
    ]


@router.get(
    "/jobs/{job_id}",
    response_model=JobDetail,
    tags=["jobs"],
    responses={404: {"model": ErrorResponse}},
    summary="One job and its recent runs",
)
async def show_job(job_id: JobId, caller: OwnerCaller, state: StateDep, limit: Limit = 20) -> JobDetail:
    return JobDetail.model_validate(await operations.job_detail(state=state, job_id=job_id, limit=limit))


@router.post(
    "/jobs/{job_id}/run",
    response_model=JobStarted,
    status_code=202,
    tags=["jobs"],
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
    summary="Run a job now",
)
async def run_job(job_id: JobId, caller: OwnerCaller, state: StateDep) -> JobStarted:
    return JobStarted.model_validate(await operations.job_start(state=state, principal=caller, job_id=job_id))


@router.get("/rules", response_model=list[RuleOut], tags=["rules"], summary="Rules with their pack versions")
async def list_rules(caller: RulesCaller, state: StateDep, entity_type: EntityType | None = None) -> list[RuleOut]:
    return [
        RuleOut.model_validate(r)
        for r in operations.rules_list(state=state, entity_type=entity_type.value if entity_type else None)
    ]


@router.get("/audit", response_model=AuditPage, tags=["audit"], summary="Audit log, newest first")
async def audit(
    caller: OwnerCaller,
    state: StateDep,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=32, examples=["credit"])] = None,
    entity_type: EntityType | None = None,
    entity_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AuditPage:
    return AuditPage.model_validate(
        await operations.audit_query(
            state=state,
            actor=actor,
            action=action,
            entity_type=entity_type.value if entity_type else None,
            entity_id=entity_id,
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            limit=limit,
            cursor=cursor,
        )
    )
