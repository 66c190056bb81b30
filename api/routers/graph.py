"""Entities, neighbourhoods, paths and rings for investigators (personal data masked by role).

Every answer here is a disclosure: it writes ONE audit row (the role, whether personal data was
unmasked, the entity or ring ids shown) and is sent only once that row is durable."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query

from api import services
from api.audit import new_decision_id
from api.deps import GraphCaller, StateDep
from api.schemas import EntityDetail, EntityType, ErrorResponse, GraphOut, PathOut, RelType, RingDetail, RingPage
from api.security import Principal
from api.state import AppState
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


async def _audit(
    state: AppState,
    principal: Principal,
    action: str,
    *,
    detail: dict[str, Any],
    entity_type: str | None = None,
    entity_id: str | None = None,
    model_version: str | None = None,
    grade: str | None = None,
) -> None:
    """Write the disclosure's one audit row and wait until it is durable (else 503, no answer)."""
    body = {"unmasked": principal.sees_personal_data, **detail}
    await state.audit.decide(
        [
            state.audit.row(
                actor=principal.actor,
                role=principal.role,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                model_version=model_version,
                grade=grade,
                detail=orjson.dumps(body).decode(),
                decision_id=new_decision_id(),
                run_id=state.book.run_id or None,
            )
        ]
    )


def _shown(nodes: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The ids shown, by node type (as sent: tokens where masked)."""
    out: dict[str, list[str]] = {}
    for n in nodes:
        out.setdefault(str(n["type"]), []).append(str(n["id"]))
    return out


@router.get("/entities/{entity_type}/{entity_id}", response_model=EntityDetail, summary="Entity detail")
async def get_entity(
    entity_type: EntityType, entity_id: EntityIdPath, caller: GraphCaller, state: StateDep
) -> EntityDetail:
    """Attributes, credit answer, rule hits with evidence and ring memberships."""
    out = await services.entity_detail(
        state=state, principal=caller, entity_type=entity_type.value, entity_id=entity_id
    )
    credit = out.get("credit") or {}
    await _audit(
        state,
        caller,
        "entity_detail",
        entity_type=entity_type.value,
        entity_id=entity_id,
        model_version=credit.get("model_version"),
        grade=credit.get("grade"),
        detail={
            "credit": bool(credit),
            "rule_hits": [h["rule_id"] for h in out.get("rule_hits", [])],
            "rings": [r["ring_id"] for r in out.get("rings", [])],
        },
    )
    return EntityDetail.model_validate(out)


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
    rel_types = [r.value for r in rel_type] if rel_type else None
    out = await services.neighbours(
        state=state,
        principal=caller,
        entity_type=entity_type.value,
        entity_id=entity_id,
        hops=hops,
        limit=limit,
        rel_types=rel_types,
    )
    await _audit(
        state,
        caller,
        "neighbours",
        entity_type=entity_type.value,
        entity_id=entity_id,
        detail={"hops": hops, "limit": limit, "rel_types": rel_types, "ids": _shown(out["nodes"])},
    )
    return GraphOut.model_validate(out)


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
    max_hops = min(max_hops, state.settings.api_path_max_hops)
    out = await services.path(
        state=state,
        principal=caller,
        source=EntityRef(source_type.value, source_id),
        target=EntityRef(target_type.value, target_id),
        max_hops=max_hops,
    )
    await _audit(
        state,
        caller,
        "path",
        entity_type=source_type.value,
        entity_id=source_id,
        detail={
            "target": [target_type.value, target_id],
            "max_hops": max_hops,
            "found": out["found"],
            "ids": _shown(out["nodes"]),
        },
    )
    return PathOut.model_validate(out)


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
    type_ = entity_type.value if entity_type else None
    out = services.rings_page(
        state=state,
        ring_type=ring_type,
        min_score=min_score,
        entity_type=type_,
        entity_id=entity_id,
        limit=limit,
        cursor=cursor,
    )
    filters = {"ring_type": ring_type, "min_score": min_score, "entity_type": type_, "entity_id": entity_id}
    await _audit(
        state,
        caller,
        "rings_list",
        entity_type=type_,
        entity_id=entity_id,
        detail={
            "filters": {k: v for k, v in filters.items() if v is not None},
            "cursor": bool(cursor),
            "total": out["total"],
            "ids": [r["ring_id"] for r in out["items"]],
        },
    )
    return RingPage.model_validate(out)


@router.get("/rings/{ring_id}", response_model=RingDetail, summary="One ring with its evidence subgraph")
async def get_ring(
    ring_id: Annotated[str, Path(min_length=1, max_length=128)], caller: GraphCaller, state: StateDep
) -> RingDetail:
    """The members, and the evidence linking them: shared identifiers by value for investigators
    and admins, masked tokens (as in neighbourhoods) for inspectors."""
    out = await services.ring_detail(state=state, principal=caller, ring_id=ring_id)
    await _audit(
        state,
        caller,
        "ring_detail",
        entity_type="ring",
        entity_id=ring_id,
        detail={
            "ring_type": out["ring_type"],
            "members": _shown(out["members"]),
            "nodes": len(out["subgraph"]["nodes"]),
        },
    )
    return RingDetail.model_validate(out)
