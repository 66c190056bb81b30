"""Objections and corrections (docs/cases.md): an inspector records an objection on the graded
person's or employer's behalf; an investigator rejects it, or corrects the data (amendments
addressed by each row's key) and the entity is re-graded, its grade before and after kept and
audited."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.cases import actor, disclosed
from api.deps import StateDep, caller
from api.schemas import ErrorResponse
from api.security import Principal
from api.state import AppState
from composer import objections as workflow
from composer.amendments import Amendment
from riskgraph.errors import EntityNotFound

router = APIRouter(
    prefix="/v1/objections",
    tags=["cases"],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

Recorder = Annotated[Principal, Depends(caller("inspector", "investigator", "admin"))]
Decider = Annotated[Principal, Depends(caller("investigator", "admin"))]
ObjectionId = Annotated[str, Path(min_length=1, max_length=40)]
Value = str | float | int | None


class RecordRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str = Field(max_length=32, examples=["visits"])
    key: dict[str, str] = Field(examples=[{"visit_id": "V0000001"}], max_length=4)


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity_type: Literal["person", "employer"]
    entity_id: str = Field(min_length=1, max_length=128)
    against: Literal["grade", "rule_hit"]
    rule_id: str | None = Field(None, max_length=128)
    records: list[RecordRef] = Field(default_factory=list, max_length=200)
    statement: str = Field(min_length=1, max_length=4000)
    case_id: str | None = Field(None, max_length=40)


class AmendmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str = Field(max_length=32)
    key: dict[str, str] = Field(max_length=4)
    action: Literal["update", "delete"] = "update"
    changes: dict[str, Value] | None = Field(None, max_length=20)


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amendments: list[AmendmentIn] = Field(min_length=1, max_length=200)
    note: str = Field(min_length=1, max_length=4000)
    regrade: bool = Field(True, description="re-grade now (a re-scoring run); false: at the next run")


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=4000)


class Grade(BaseModel):
    run_id: str
    grade: str
    credit_points: float
    risk_score: float
    rule_hits: list[str]


class ObjectionOut(BaseModel):
    objection_id: str
    entity_type: str
    entity_id: str
    against: str
    rule_id: str | None = None
    records: list[dict[str, Any]]
    statement: str
    status: Literal["open", "corrected", "rejected"]
    case_id: str | None = None
    created_at: str
    created_by: str
    decided_at: str | None = None
    decided_by: str | None = None
    note: str | None = None
    before: Grade | None = None
    after: Grade | None = None
    regrade_run_id: str | None = None
    amendments: list[dict[str, Any]] | None = None


def _scope(state: AppState, principal: Principal, entity_type: str, entity_id: str) -> None:
    if principal.region is not None and state.region_of(entity_type, entity_id) != principal.region:
        raise EntityNotFound(f"no {entity_type} {entity_id!r}")


async def _scoped(state: AppState, principal: Principal, objection_id: str) -> dict[str, Any]:
    o = await anyio.to_thread.run_sync(workflow.get_objection, state.db, objection_id)
    if principal.region is not None and state.region_of(o["entity_type"], o["entity_id"]) != principal.region:
        raise workflow.ObjectionNotFound(f"no objection {objection_id!r}")
    return o


@router.post("", response_model=ObjectionOut, status_code=201, summary="Record an objection")
async def record(body: ObjectionIn, principal: Recorder, state: StateDep) -> ObjectionOut:
    """Against the entity's grade, or one of its rule hits (`rule_id`), with the disputed
    records, each addressed by its key (docs/cases.md). The current grade is kept as `before`."""
    _scope(state, principal, body.entity_type, body.entity_id)
    row = await anyio.to_thread.run_sync(
        lambda: workflow.record_objection(
            state.db,
            actor(principal),
            entity_type=body.entity_type,
            entity_id=body.entity_id,
            against=body.against,
            rule_id=body.rule_id,
            statement=body.statement,
            records=[r.model_dump() for r in body.records],
            case_id=body.case_id,
        )
    )
    return ObjectionOut.model_validate(row)


@router.get("", response_model=list[ObjectionOut], summary="Objections, filtered")
async def list_objections(
    principal: Recorder,
    state: StateDep,
    entity_type: Annotated[Literal["person", "employer"] | None, Query()] = None,
    entity_id: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[Literal["open", "corrected", "rejected"] | None, Query()] = None,
) -> list[ObjectionOut]:
    rows = await anyio.to_thread.run_sync(
        lambda: workflow.list_objections(state.db, entity_type=entity_type, entity_id=entity_id, status=status)
    )
    if principal.region is not None:
        rows = [o for o in rows if state.region_of(o["entity_type"], o["entity_id"]) == principal.region]
    await disclosed(state, principal, "objection_list", {"ids": [o["objection_id"] for o in rows]})
    return [ObjectionOut.model_validate(o) for o in rows]


@router.get("/{objection_id}", response_model=ObjectionOut, summary="One objection with its amendments")
async def get_objection(objection_id: ObjectionId, principal: Recorder, state: StateDep) -> ObjectionOut:
    o = await _scoped(state, principal, objection_id)
    await disclosed(
        state,
        principal,
        "objection_view",
        {"objection_id": objection_id},
        entity_type=o["entity_type"],
        entity_id=o["entity_id"],
    )
    return ObjectionOut.model_validate(o)


@router.post("/{objection_id}/reject", response_model=ObjectionOut, summary="Reject an objection")
async def reject(objection_id: ObjectionId, body: Rejection, principal: Decider, state: StateDep) -> ObjectionOut:
    await _scoped(state, principal, objection_id)
    row = await anyio.to_thread.run_sync(
        lambda: workflow.reject_objection(state.db, actor(principal), objection_id, note=body.note)
    )
    return ObjectionOut.model_validate(row)


@router.post("/{objection_id}/correct", response_model=ObjectionOut, summary="Correct the data and re-grade")
async def correct(objection_id: ObjectionId, body: Correction, principal: Decider, state: StateDep) -> ObjectionOut:
    """Stores the amendments (applied on top of every later load) and, with `regrade` (the
    default), re-grades now: a re-scoring run of the served snapshot with the champion models,
    served when it commits. The answer carries the grade `before` and `after`."""
    await _scoped(state, principal, objection_id)
    amendments = [Amendment(a.table, a.key, a.action, a.changes) for a in body.amendments]
    who = actor(principal)
    await anyio.to_thread.run_sync(
        lambda: workflow.correct_objection(state.db, who, objection_id, amendments=amendments, note=body.note)
    )
    if body.regrade:
        await anyio.to_thread.run_sync(lambda: workflow.regrade(state.settings, state.db, who, objection_id))
        await anyio.to_thread.run_sync(state.load_results)
    return ObjectionOut.model_validate(await anyio.to_thread.run_sync(workflow.get_objection, state.db, objection_id))
