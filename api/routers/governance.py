"""Model governance: replaying past decisions, drift monitoring, champion and challenger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from api import governance
from api.deps import OwnerCaller, StateDep
from api.schemas import ErrorResponse

router = APIRouter(
    prefix="/v1",
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
Version = Annotated[str, Path(min_length=1, max_length=64, examples=["person-20260101T020000-ab12cd"])]
DecisionId = Annotated[
    str, Path(min_length=1, max_length=40, pattern="^[0-9a-f]+$", examples=["0192f3a4b5c6d7e8f90a1b2c3d4e5f60"])
]


@router.get(
    "/decisions/{decision_id}",
    tags=["audit"],
    responses={
        200: {"description": "the credit answer as it was sent, plus `replayed_at`"},
        404: {"model": ErrorResponse, "description": "no such decision"},
        409: {"model": ErrorResponse, "description": "the stored inputs differ from the decision record"},
        410: {"model": ErrorResponse, "description": "the decision's run is no longer retained"},
    },
    summary="Replay a past credit decision (audited)",
)
async def get_decision(decision_id: DecisionId, caller: OwnerCaller, state: StateDep) -> Response:
    """The answer sent under `decision_id`, rebuilt from its run's stored inputs: byte-identical
    apart from the `replayed_at` field at the end. Refused (410) once the run has expired."""
    body = await governance.replay_decision(state=state, principal=caller, decision_id=decision_id)
    return Response(body, media_type="application/json")


@router.get(
    "/models/{version}/monitoring",
    tags=["models"],
    responses={404: {"model": ErrorResponse, "description": "unknown version, or no retained run scored with it"}},
    summary="Drift of the runs a version scores (PSI, grade migration, rule hit rates)",
)
async def model_monitoring(version: Version, caller: OwnerCaller, state: StateDep) -> JSONResponse:
    """The score's and every feature's PSI against the previous run and the version's training
    population (bands 0.1 / 0.25), the grade migration from the previous run and the rule
    hit-rate changes, from the newest retained run that scored with `version`."""
    return JSONResponse(await governance.model_monitoring(state=state, version=version))


@router.get(
    "/models/compare",
    tags=["models"],
    responses={
        404: {"model": ErrorResponse, "description": "unknown version"},
        422: {"model": ErrorResponse, "description": "versions of different types, or not shadow-scorable"},
    },
    summary="Champion and challenger side by side on the served run",
)
async def compare_models(
    caller: OwnerCaller,
    state: StateDep,
    champion: Annotated[str, Query(min_length=1, max_length=64)],
    challenger: Annotated[str, Query(min_length=1, max_length=64)],
) -> JSONResponse:
    """Both versions shadow-score the served run's entities: out-of-fold and out-of-time AUC/KS,
    the challenger's score PSI against the champion, the grade migration between them, the
    entities whose grade would change (the first 100, with the challenger's reasons) and the
    promotion gate's verdict."""
    return JSONResponse(await governance.compare_models(state=state, champion=champion, challenger=challenger))
