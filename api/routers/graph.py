"""Entities, neighbourhoods, paths and rings for investigators (personal data masked by role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import services
from api.deps import GraphCaller, StateDep
from api.schemas import EntityDetail, EntityType, ErrorResponse, GraphOut, PathOut, RelType, RingDetail, RingPage
from graph.store import EntityRef

router = APIRouter(
    prefix="/v1",
    tags=["investigation"],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

EntityIdPath = Annotated[str, Path(min_length=1, max_length=128, examples=["P0000001"])]
IdQuery = Annotated[str, Query(min_length=1, max_length=128)]


@router.get("/entities/{entity_type}/{entity_id}", response_model=EntityDetail, summary="Entity detail")
async def get_entity(
    entity_type: EntityType, entity_id: EntityIdPath, caller: GraphCaller, state: StateDep
) -> EntityDetail:
    """Attributes, credit answer, rule hits with evidence and ring memberships."""
    return EntityDetail.model_validate(
        await services.entity_detail(state=state, principal=caller, entity_type=entity_type.value, entity_id=entity_id)
    )


@router.get("/entities/{entity_type}/{entity_id}/neighbours", response_model=GraphOut, summary="Neighbourhood")
async def get_neighbours(
    entity_type: EntityType,
    entity_id: EntityIdPath,
    caller: GraphCaller,
    state: StateDep,
    hops: Annotated[int, Query(ge=1, le=3)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000, description="most nodes returned (nearest first)")] = 200,
    rel_type: Annotated[list[RelType] | None, Query(description="only these relationship types")] = None,
) -> GraphOut:
    """Nodes within `hops` of the entity and the edges among them."""
    limit = min(limit, state.settings.api_neighbour_limit_max)
    return GraphOut.model_validate(
        await services.neighbours(
            state=state,
            principal=caller,
            entity_type=entity_type.value,
            entity_id=entity_id,
            hops=hops,
            limit=limit,
            rel_types=[r.value for r in rel_type] if rel_type else None,
        )
    )


@router.get("/paths", response_model=PathOut, summary="Shortest path between two entities")
async def get_path(
    source_type: EntityType,
    source_id: IdQuery,
    target_type: EntityType,
    target_id: IdQuery,
    caller: GraphCaller,
    state: StateDep,
    max_hops: Annotated[int, Query(ge=1, le=10)] = 6,
) -> PathOut:
    """One shortest path (`found=false` when none within `max_hops`)."""
    return PathOut.model_validate(
        await services.path(
            state=state,
            principal=caller,
            source=EntityRef(source_type.value, source_id),
            target=EntityRef(target_type.value, target_id),
            max_hops=min(max_hops, state.settings.api_path_max_hops),
        )
    )


@router.get("/rings", response_model=RingPage, summary="Suspected rings, highest score first")
async def get_rings(
    caller: GraphCaller,
    state: StateDep,
    ring_type: Annotated[str | None, Query(max_length=64, examples=["collusion"])] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    entity_type: EntityType | None = None,
    entity_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RingPage:
    """Optionally only rings of one type, above a score, or containing one entity."""
    return RingPage.model_validate(
        services.rings_page(
            state=state,
            ring_type=ring_type,
            min_score=min_score,
            entity_type=entity_type.value if entity_type else None,
            entity_id=entity_id,
            limit=limit,
            cursor=cursor,
        )
    )


@router.get("/rings/{ring_id}", response_model=RingDetail, summary="One ring with its evidence subgraph")
async def get_ring(
    ring_id: Annotated[str, Path(min_length=1, max_length=128)], caller: GraphCaller, state: StateDep
) -> RingDetail:
    """The members, and the evidence linking them: shared identifiers by value for investigators
    and admins, masked tokens (as in neighbourhoods) for inspectors."""
    return RingDetail.model_validate(await services.ring_detail(state=state, principal=caller, ring_id=ring_id))
