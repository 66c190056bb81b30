"""Ranked risk lists for inspectors, with filters, cursor pagination and CSV export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api import services
from api.deps import RiskCaller, StateDep
from api.schemas import EntityType, ErrorResponse, RiskPage

router = APIRouter(
    prefix="/v1/risk",
    tags=["risk"],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)


class RiskFilters(BaseModel):
    region: str | None = Field(None, max_length=128, description="exact region")
    grade: list[Literal["A", "B", "C", "D"]] | None = Field(None, description="one or more grades")
    rule: str | None = Field(None, max_length=128, description="entities hit by this rule id")
    ring: str | None = Field(None, max_length=128, description="members of this ring id")
    min_score: float | None = Field(None, ge=0, le=1)
    max_score: float | None = Field(None, ge=0, le=1)


def _filters(
    region: Annotated[str | None, Query(max_length=128)] = None,
    grade: Annotated[list[Literal["A", "B", "C", "D"]] | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=128, examples=["med_over_prescribing"])] = None,
    ring: Annotated[str | None, Query(max_length=128)] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> RiskFilters:
    return RiskFilters(region=region, grade=grade, rule=rule, ring=ring, min_score=min_score, max_score=max_score)


Filters = Annotated[RiskFilters, Depends(_filters)]


@router.get("/{entity_type}", response_model=RiskPage, summary="Ranked risk list of one entity type")
async def get_risk(
    entity_type: EntityType,
    caller: RiskCaller,
    state: StateDep,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: every matching row as a download")] = "json",
) -> RiskPage | StreamingResponse:
    """Riskiest first; `next_cursor` continues the list. `format=csv` exports all matching rows."""
    f = filters
    if format == "csv":
        lines = services.risk_csv(
            state=state,
            entity_type=entity_type.value,
            region=f.region,
            grades=list(f.grade) if f.grade else None,
            rule=f.rule,
            ring=f.ring,
            min_score=f.min_score,
            max_score=f.max_score,
        )
        return StreamingResponse(
            lines,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="risk-{entity_type.value}.csv"'},
        )
    limit = min(limit, state.settings.api_page_max)
    return RiskPage.model_validate(
        services.risk_page(
            state=state,
            entity_type=entity_type.value,
            region=f.region,
            grades=list(f.grade) if f.grade else None,
            rule=f.rule,
            ring=f.ring,
            min_score=f.min_score,
            max_score=f.max_score,
            limit=limit,
            cursor=cursor,
        )
    )
