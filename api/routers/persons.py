"""Person resolution for investigators: the clerical-review list and decisions, and the lookup of
a golden person by ID number. Investigators only (admins may review); every answer is audited."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Path, Query

from api import persons
from api.audit import new_decision_id
from api.deps import StateDep, caller
from api.persons import DecisionIn, DecisionOut, GoldenPerson, ReviewPage
from api.schemas import ErrorResponse
from api.security import Principal
from api.state import AppState

router = APIRouter(
    prefix="/v1",
    tags=["investigation"],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
ReviewCaller = Annotated[Principal, Depends(caller("investigator", "admin"))]
InvestigatorCaller = Annotated[Principal, Depends(caller("investigator"))]


async def _audit(state: AppState, principal: Principal, action: str, detail: dict[str, Any]) -> None:
    """One durable audit row per answer (else 503 and no answer)."""
    await state.audit.decide(
        [
            state.audit.row(
                actor=principal.actor,
                role=principal.role,
                action=action,
                entity_type="person",
                entity_id=detail.get("golden_id") or detail.get("left"),
                model_version=None,
                grade=None,
                detail=orjson.dumps({"unmasked": principal.sees_personal_data, **detail}).decode(),
                decision_id=new_decision_id(),
                run_id=state.book.run_id or None,
            )
        ]
    )


@router.get("/review/persons", response_model=ReviewPage, summary="Person pairs awaiting clerical review")
async def review_persons(
    caller: ReviewCaller,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReviewPage:
    """Undecided pairs of person records between resolve_review_low and resolve_review_high."""
    out = await anyio.to_thread.run_sync(lambda: persons.review_page(state=state, limit=limit, offset=offset))
    await _audit(state, caller, "review_persons", {"pairs": [[i["left"], i["right"]] for i in out["items"]]})
    return ReviewPage.model_validate(out)


@router.post("/review/persons/decisions", response_model=DecisionOut, summary="Accept or reject a person pair")
async def decide_pair(body: DecisionIn, caller: ReviewCaller, state: StateDep) -> DecisionOut:
    """Accept (one person) or reject (two people; splits a wrong merge) a pair; the next run honours it."""
    out = await anyio.to_thread.run_sync(
        lambda: persons.decide(
            state=state, actor=caller.actor, left=body.left, right=body.right, decision=body.decision
        )
    )
    await _audit(state, caller, "review_decision", out)
    return DecisionOut.model_validate(out)


@router.get("/persons/by-id-number/{id_number}", response_model=GoldenPerson, summary="Golden person by ID number")
async def person_by_id_number(
    id_number: Annotated[str, Path(min_length=15, max_length=18, examples=["11010519491231002X"])],
    caller: InvestigatorCaller,
    state: StateDep,
) -> GoldenPerson:
    """The golden person holding an ID number; its 15- and 18-digit forms are the same person."""
    # off the event loop: the run's first lookup checks every ID number (seconds at 1M persons)
    out = await anyio.to_thread.run_sync(lambda: persons.by_id_number(state=state, id_number=id_number))
    await _audit(state, caller, "person_by_id_number", {"golden_id": out["golden_id"], "records": len(out["records"])})
    return GoldenPerson.model_validate(out)
