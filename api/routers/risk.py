"""Ranked risk lists for inspectors: filters, sorting, cursor pagination, regions and CSV export.
Each list page and each export writes one audit row (the filters and the ids shown)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api import risk_lists
from api.deps import RiskCaller, StateDep
from api.schemas import EntityType, ErrorResponse, RegionList, RiskPage, RiskSort

router = APIRouter(
    prefix="/v1/risk",
    tags=["risk"],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)

SORT_HELP = "column to sort by; ties by entity_id, rows without a value last. " + ", ".join(
    f"{s} (default {o})" for s, o in risk_lists.DEFAULT_ORDER.items()
)


class RiskFilters(BaseModel):
    region: str | None = Field(None, max_length=128, description="exact region")
    grade: list[Literal["A", "B", "C", "D"]] | None = Field(None, description="one or more grades")
    rule: str | None = Field(None, max_length=128, description="entities hit by this rule id")
    ring: str | None = Field(None, max_length=128, description="members of this ring id")
    min_score: float | None = Field(None, ge=0, le=1)
    max_score: float | None = Field(None, ge=0, le=1)
    sort: RiskSort = "priority"
    order: Literal["asc", "desc"] | None = None


def _filters(
    region: Annotated[str | None, Query(max_length=128)] = None,
    grade: Annotated[list[Literal["A", "B", "C", "D"]] | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=128, examples=["med_over_prescribing"])] = None,
    ring: Annotated[str | None, Query(max_length=128)] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    sort: Annotated[RiskSort, Query(description=SORT_HELP)] = "priority",
    order: Annotated[
        Literal["asc", "desc"] | None, Query(description="asc or desc; the sort's default when left out")
    ] = None,
) -> RiskFilters:
    return RiskFilters(
        region=region,
        grade=grade,
        rule=rule,
        ring=ring,
        min_score=min_score,
        max_score=max_score,
        sort=sort,
        order=order,
    )


Filters = Annotated[RiskFilters, Depends(_filters)]


def _query(entity_type: EntityType, f: RiskFilters) -> risk_lists.RiskQuery:
    return risk_lists.RiskQuery(
        entity_type=entity_type.value,
        region=f.region,
        grades=tuple(f.grade or ()),
        rule=f.rule,
        ring=f.ring,
        min_score=f.min_score,
        max_score=f.max_score,
        sort=f.sort,
        order=f.order,
    )


@router.get(
    "/{entity_type}/regions", response_model=RegionList, summary="The regions of one entity type's scored entities"
)
async def get_regions(entity_type: EntityType, caller: RiskCaller, state: StateDep) -> RegionList:
    """Distinct non-empty regions, sorted: the choices of the list's region filter."""
    return RegionList(regions=risk_lists.regions(state=state, entity_type=entity_type.value, principal=caller))


@router.get("/{entity_type}", response_model=RiskPage, summary="Ranked risk list of one entity type")
async def get_risk(
    entity_type: EntityType,
    caller: RiskCaller,
    state: StateDep,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: every matching row as a download")] = "json",
    lang: Annotated[Literal["en", "zh"], Query(description="csv: language of the rule titles and reasons")] = "en",
) -> RiskPage | StreamingResponse:
    """In triage priority by default (`sort`, `order` choose another column); `next_cursor`
    continues the list with the same sort. `format=csv` exports every matching row, sorted the
    same way: UTF-8 with a BOM, rule titles and the top 3 reasons in `lang`, the row count in the
    `X-Row-Count` header. Each page and each export is audited as one row (`risk_list` /
    `risk_export`: the filters and the ids) before it is sent."""
    q = _query(entity_type, filters)
    if format == "csv":
        count, lines = await risk_lists.risk_export(state=state, principal=caller, q=q, lang=lang)
        return StreamingResponse(
            lines,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="risk-{entity_type.value}.csv"',
                "X-Row-Count": str(count),
            },
        )
    limit = min(limit, state.settings.api_page_max)
    return RiskPage.model_validate(
        await risk_lists.risk_page(state=state, principal=caller, q=q, limit=limit, cursor=cursor)
    )
