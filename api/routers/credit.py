"""Credit grades for approval systems (the audited hot path)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from api import services
from api.deps import CREDIT_ROLES, CreditCaller, StateDep, authenticate
from api.schemas import (
    PERSON_EXAMPLE,
    CreditBatchRequest,
    CreditBatchResponse,
    CreditResponse,
    ErrorResponse,
)
from graph.contract import ENTITY_TYPES

LANGS = ("en", "zh")
MAX_ID = 128


def _problem(where: str, name: str, message: str) -> dict[str, object]:
    return {"loc": (where, name), "msg": message, "type": "value_error"}


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
    openapi_extra={
        "security": [{"APIKeyHeader": []}],
        "parameters": [
            {
                "name": "entity_type",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(ENTITY_TYPES)},
            },
            {
                "name": "entity_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID},
                "example": "P0000001",
            },
            {
                "name": "lang",
                "in": "query",
                "required": False,
                "description": "language of each reason's `text` (`text_zh` is always Chinese)",
                "schema": {"type": "string", "enum": list(LANGS), "default": "en"},
            },
        ],
    },
)
async def get_credit(request: Request) -> Response:
    """Grade, points, probability, model version, reasons (reason catalogue codes, at most 4,
    raising and lowering risk), what would raise the grade, rule hits, cap, bands and as-of time."""
    # Hot path: the parameters and the key are read and checked here, not declared or injected:
    # FastAPI's parameter solving cost as much as the answer itself (bench/bench_api.py). They
    # are documented through openapi_extra above.
    entity_type, entity_id = request.path_params["entity_type"], request.path_params["entity_id"]
    lang = request.query_params.get("lang", "en")
    problems = []
    if entity_type not in ENTITY_TYPES:
        problems.append(_problem("path", "entity_type", f"Input should be one of {', '.join(ENTITY_TYPES)}"))
    if not 1 <= len(entity_id) <= MAX_ID:
        problems.append(_problem("path", "entity_id", f"String should have 1 to {MAX_ID} characters"))
    if lang not in LANGS:
        problems.append(_problem("query", "lang", f"Input should be one of {', '.join(LANGS)}"))
    if problems:
        raise RequestValidationError(problems)
    caller = authenticate(request, request.headers.get("x-api-key"), CREDIT_ROLES)
    body = await services.credit_one(
        state=request.app.state.riskgraph, principal=caller, entity_type=entity_type, entity_id=entity_id, lang=lang
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
