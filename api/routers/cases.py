"""Cases for inspectors and investigators: open from an alert or an entity, assign (one or many),
comment, move through the statuses, confirm with a second person's approval (docs/cases.md).
Model owners read the dispositions (the labels cases hand to training). Every change is audited
in the same transaction that makes it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api import cases as service
from api.deps import StateDep, caller
from api.schemas import ErrorResponse
from api.security import Principal
from composer import cases as workflow

router = APIRouter(
    prefix="/v1/cases",
    tags=["cases"],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

CASE_ROLES = ("inspector", "investigator", "admin")
CaseWorker = Annotated[Principal, Depends(caller(*CASE_ROLES))]
DispositionReader = Annotated[Principal, Depends(caller("inspector", "investigator", "model_owner", "admin"))]
CaseId = Annotated[str, Path(min_length=1, max_length=40, examples=["CASE-20261130-1a2b3c4d"])]
SubjectType = Literal["person", "employer", "clinic", "pharmacy", "agency", "ring"]
Status = Literal["new", "in_progress", "awaiting_approval", "confirmed", "dismissed"]
Note = Annotated[str | None, Field(None, max_length=4000)]
Actor = Annotated[str | None, Field(None, max_length=128, description="an actor id, e.g. investigator:ab12cd34")]
Day = Annotated[str | None, Field(None, max_length=10, description="YYYY-MM-DD")]


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert_id: str | None = Field(None, max_length=40, description="open the case on this alert of the served run")
    entity_type: SubjectType | None = None
    entity_id: str | None = Field(None, max_length=128)
    typology: str | None = Field(None, max_length=64, description="with an entity: default 'manual'")
    assignee: Actor = None
    due_date: Day = None
    note: Note = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["in_progress", "confirmed", "dismissed"]
    note: Note = Field(None, description="required for confirmed and dismissed")
    version: int | None = Field(None, description="the case version you saw; a newer one refuses (409)")


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    note: Note = Field(None, description="required when refusing")
    version: int | None = None


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: Actor = Field(None, description="null: unassigned; 'me': the caller")
    due_date: Day = None


class BulkAssignment(Assignment):
    case_ids: list[Annotated[str, Field(max_length=40)]] = Field(min_length=1, max_length=500)


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)


class CaseOut(BaseModel):
    case_id: str
    subject_type: str
    subject_id: str
    typology: str
    alert_id: str | None = None
    run_id: str | None = None
    region: str | None = None
    status: Status
    assignee: str | None = None
    due_date: str | None = None
    created_at: str
    created_by: str
    updated_at: str
    proposed_by: str | None = None
    disposition: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    as_of: str | None = None
    note: str | None = None
    version: int
    existing: bool | None = Field(
        None, description="on create: an open case of the subject and typology already existed"
    )


class CaseEvent(BaseModel):
    at: str
    actor: str
    role: str
    kind: str
    from_status: str | None = None
    to_status: str | None = None
    note: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class CaseDetail(CaseOut):
    history: list[CaseEvent]
    alert: dict[str, Any] | None = Field(None, description="the alert as the served run has it now")


class CasePage(BaseModel):
    total: int
    limit: int
    offset: int
    cases: list[CaseOut]


class Disposition(BaseModel):
    entity_type: str
    entity_id: str
    label: int
    as_of: str
    case_id: str
    decided_by: str
    decided_at: str
    source: str


def _who(assignee: str | None, principal: Principal) -> str | None:
    return principal.actor if assignee == "me" else assignee


@router.post("", response_model=CaseOut, status_code=201, summary="Open a case from an alert or an entity")
async def create_case(body: CaseCreate, principal: CaseWorker, state: StateDep) -> CaseOut:
    """An open case of the same subject and typology is returned instead of a second one
    (`existing: true`)."""
    return CaseOut.model_validate(
        await service.create_case(
            state=state,
            principal=principal,
            alert_id=body.alert_id,
            entity_type=body.entity_type,
            entity_id=body.entity_id,
            typology=body.typology,
            assignee=_who(body.assignee, principal),
            due_date=body.due_date,
            note=body.note,
        )
    )


@router.get("", response_model=CasePage, summary="Cases, filtered")
async def list_cases(
    principal: CaseWorker,
    state: StateDep,
    status: Annotated[list[Status] | None, Query()] = None,
    open: Annotated[bool, Query(description="only new, in_progress and awaiting_approval")] = False,
    mine: Annotated[bool, Query(description="only cases assigned to the caller")] = False,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    region: Annotated[str | None, Query(max_length=128)] = None,
    typology: Annotated[str | None, Query(max_length=64)] = None,
    subject_type: Annotated[SubjectType | None, Query()] = None,
    subject_id: Annotated[str | None, Query(max_length=128)] = None,
    alert_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePage:
    """Open cases first, by due date, then the newest. `open=true&mine=true`: my open cases."""
    f = workflow.CaseFilters(
        status=tuple(status or ()),
        open_only=open,
        assignee=principal.actor if mine else assignee,
        region=region,
        typology=typology,
        subject_type=subject_type,
        subject_id=subject_id,
        alert_id=alert_id,
    )
    return CasePage.model_validate(
        await service.list_cases(state=state, principal=principal, f=f, limit=limit, offset=offset)
    )


@router.get("/dispositions", response_model=list[Disposition], summary="Decided cases as training labels")
async def dispositions(principal: DispositionReader, state: StateDep) -> list[Disposition]:
    """Confirmed (label 1) and dismissed (label 0) entity cases with their provenance: case id,
    who decided, when, and `as_of`, the point in time the label holds for (docs/cases.md)."""
    labels = await anyio.to_thread.run_sync(workflow.case_labels, state.db)
    if principal.region is not None:
        return []  # labels are installation-wide; a region-scoped key reads none
    await service.disclosed(state, principal, "dispositions", {"ids": labels["case_id"].tolist()})
    return [Disposition.model_validate(r) for r in labels.to_dict("records")]


class LabelConflict(BaseModel):
    entity_type: str
    entity_id: str
    file_label: int
    file_as_of: str | None = None
    case_label: int
    case_as_of: str | None = None
    case_id: str
    kept: Literal["case", "labels.csv"]


@router.get("/label-conflicts", response_model=list[LabelConflict], summary="Where cases and labels.csv disagreed")
async def label_conflicts(principal: DispositionReader, state: StateDep) -> list[LabelConflict]:
    """The served run's training labels where a decided case and labels.csv disagreed, and which
    one it kept (the later-dated; a case wins a tie)."""
    run_id = state.db.served_run_id()
    if run_id is None or principal.region is not None:
        return []
    rows = await anyio.to_thread.run_sync(state.db.read_run_table, run_id, "label_conflicts")
    await service.disclosed(
        state, principal, "label_conflicts", {"ids": rows["entity_id"].tolist() if "entity_id" in rows else []}
    )
    return [LabelConflict.model_validate(r) for r in rows.to_dict("records")]


@router.post("/assign", response_model=list[CaseOut], summary="Assign many cases at once")
async def bulk_assign(body: BulkAssignment, principal: CaseWorker, state: StateDep) -> list[CaseOut]:
    """All the cases change in one transaction, or none (a closed or unknown case refuses)."""
    for case_id in body.case_ids:
        await service.scoped(state, principal, case_id)
    rows = await anyio.to_thread.run_sync(
        lambda: workflow.assign(
            state.db,
            service.actor(principal),
            body.case_ids,
            assignee=_who(body.assignee, principal),
            due_date=body.due_date,
            set_due="due_date" in body.model_fields_set,
        )
    )
    return [CaseOut.model_validate(r) for r in rows]


@router.get("/{case_id}", response_model=CaseDetail, summary="One case with its history and alert")
async def get_case(case_id: CaseId, principal: CaseWorker, state: StateDep) -> CaseDetail:
    return CaseDetail.model_validate(await service.case_detail(state=state, principal=principal, case_id=case_id))


@router.post("/{case_id}/status", response_model=CaseOut, summary="Move a case")
async def change_status(case_id: CaseId, body: StatusChange, principal: CaseWorker, state: StateDep) -> CaseOut:
    """`in_progress`; `dismissed` (note required); `confirmed` (note required) asks a second
    person's approval: the case waits as `awaiting_approval`."""
    await service.scoped(state, principal, case_id)
    row = await anyio.to_thread.run_sync(
        lambda: workflow.change_status(
            state.db, service.actor(principal), case_id, to=body.status, note=body.note, version=body.version
        )
    )
    return CaseOut.model_validate(row)


@router.post("/{case_id}/approval", response_model=CaseOut, summary="Approve or refuse a confirmation")
async def approval(case_id: CaseId, body: Approval, principal: CaseWorker, state: StateDep) -> CaseOut:
    """Four eyes: only someone other than the one who asked to confirm may answer (else 409)."""
    await service.scoped(state, principal, case_id)
    row = await anyio.to_thread.run_sync(
        lambda: workflow.decide_approval(
            state.db, service.actor(principal), case_id, approve=body.approve, note=body.note, version=body.version
        )
    )
    return CaseOut.model_validate(row)


@router.post("/{case_id}/assign", response_model=CaseOut, summary="Assign a case")
async def assign(case_id: CaseId, body: Assignment, principal: CaseWorker, state: StateDep) -> CaseOut:
    await service.scoped(state, principal, case_id)
    rows = await anyio.to_thread.run_sync(
        lambda: workflow.assign(
            state.db,
            service.actor(principal),
            [case_id],
            assignee=_who(body.assignee, principal),
            due_date=body.due_date,
            set_due="due_date" in body.model_fields_set,
        )
    )
    return CaseOut.model_validate(rows[0])


@router.post("/{case_id}/comments", response_model=CaseOut, summary="Comment on a case")
async def add_comment(case_id: CaseId, body: CommentIn, principal: CaseWorker, state: StateDep) -> CaseOut:
    await service.scoped(state, principal, case_id)
    row = await anyio.to_thread.run_sync(
        lambda: workflow.comment(state.db, service.actor(principal), case_id, text=body.text)
    )
    return CaseOut.model_validate(row)


# -- alerts of the served run (what cases are opened from) ----------------------------------------

alerts_router = APIRouter(prefix="/v1/alerts", tags=["cases"], responses=router.responses)


class AlertOut(BaseModel):
    alert_id: str
    subject_type: str
    subject_id: str
    typology: str
    event: Literal["new", "reopened", "changed", "unchanged", "gone"]
    raised: bool
    score: float | None = None
    previous_score: float | None = None
    score_rise: float | None = None
    n_members: int
    n_rules: int
    new_members: list[str]
    left_members: list[str]
    new_rules: list[str]
    new_serious_rules: list[str]
    first_seen: str
    last_seen: str
    raised_at: str
    first_run: str
    last_run: str
    case_id: str | None = Field(None, description="the newest case of this subject and typology, if any")
    case_status: str | None = None


class AlertPage(BaseModel):
    total: int
    limit: int
    offset: int
    run_id: str | None
    alerts: list[AlertOut]


@alerts_router.get("", response_model=AlertPage, summary="Alerts of the served run")
async def list_alerts(
    principal: CaseWorker,
    state: StateDep,
    raised: Annotated[bool | None, Query(description="true: new and re-opened only")] = None,
    event: Annotated[list[Literal["new", "reopened", "changed", "unchanged", "gone"]] | None, Query()] = None,
    subject_type: Annotated[SubjectType | None, Query()] = None,
    subject_id: Annotated[str | None, Query(max_length=128)] = None,
    typology: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlertPage:
    """Raised alerts first (new, then re-opened), then by score. An alert carries what changed
    since the run before: new and departed members, new rules, new serious rules, the score's
    rise (docs/cases.md)."""
    page = await anyio.to_thread.run_sync(
        lambda: service.alert_page(
            state,
            principal,
            raised=raised,
            events=tuple(event or ()),
            subject_type=subject_type,
            subject_id=subject_id,
            typology=typology,
            limit=limit,
            offset=offset,
        )
    )
    await service.disclosed(state, principal, "alert_list", {"ids": [a["alert_id"] for a in page["alerts"]]})
    return AlertPage.model_validate(page)
