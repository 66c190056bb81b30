"""Credit grades for approval systems (the audited hot path)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response

from api import services
from api.deps import CREDIT_ROLES, CreditCaller, StateDep, authenticate
from api.schemas import (
    PERSON_EXAMPLE,
    CreditBatchRequest,
    CreditBatchResponse,
    CreditResponse,
    EntityType,
    ErrorResponse,
)

router = APIRouter(
    prefix="/v1/credit",
    tags=["credit"],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)


@router.get(
    "/{entity_type}/{entity_id}",
    response_model=CreditResponse,
    responses={404: {"model": ErrorResponse, "description": "entity not scored"}},
    summary="Credit grade of one entity (audited)",
    openapi_extra={"security": [{"APIKeyHeader": []}]},
)
async def get_credit(
    entity_type: EntityType,
    entity_id: Annotated[str, Path(min_length=1, max_length=128, examples=["P0000001"])],
    request: Request,
    lang: Annotated[Literal["en", "zh"], Query(description="language of each reason's `text`")] = "en",
) -> Response:
    """Grade, points, probability, model version, reasons (reason catalogue codes, at most 4,
    raising and lowering risk), what would raise the grade, rule hits, cap, bands and as-of time."""
    # Hot path: authentication is called inline, not injected; FastAPI's dependency solving
    # costs about as much as the rest of this request together (see bench/bench_api.py).
    caller = authenticate(request, request.headers.get("x-api-key"), CREDIT_ROLES)
    body = await services.credit_one(
        state=request.app.state.riskgraph,
        principal=caller,
        entity_type=entity_type.value,
        entity_id=entity_id,
        lang=lang,
    )
    return Response(body, media_type="application/json")


@router.post("/batch", response_model=CreditBatchResponse, summary="Credit grades of many entities (audited)")
async def post_credit_batch(
    request: Annotated[
        CreditBatchRequest, Body(openapi_examples={"two entities": {"value": {"items": [PERSON_EXAMPLE]}}})
    ],
    caller: CreditCaller,
    state: StateDep,
    lang: Annotated[Literal["en", "zh"], Query(description="language of each reason's `text`")] = "en",
) -> Response:
    """Answers in request order; entities without a score are listed in `not_found`."""
    body = await services.credit_batch(
        state=state, principal=caller, items=[(i.entity_type.value, i.entity_id) for i in request.items], lang=lang
    )
    return Response(body, media_type="application/json")
