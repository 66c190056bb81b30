"""Plain service functions behind the routers (keyword-only arguments, no web framework)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson

from api import ring_evidence
from api.audit import new_decision_id
from api.book import ResultsBook
from api.credit_book import CreditEntry, with_decision
from api.cursors import decode_cursor, encode_cursor
from api.errors import InvalidParameter, ResultsNotLoaded, RingNotFound
from api.security import Principal, current_principal, mask_attributes, mask_entity, mask_evidence, mask_value
from api.state import AppState
from features.rings import RingResult
from graph.contract import ENTITY_TYPES, IDENTIFIER_TYPES
from graph.store import EntityRef, Subgraph
from riskgraph.errors import EntityNotFound

# -- credit (approval systems, hot path) ----------------------------------------------------------


async def credit_one(
    *, state: AppState, principal: Principal, entity_type: str, entity_id: str, lang: str = "en"
) -> bytes:
    """The encoded credit answer for one entity, sent only once its audit row is durable."""
    book = _book(state)
    entry = book.credit.answer(entity_type, entity_id, lang)
    if entry is None or (principal.region is not None and state.region_of(entity_type, entity_id) != principal.region):
        raise EntityNotFound(f"no {entity_type} {entity_id!r} in the scored results")
    decision_id = new_decision_id()
    await state.audit.decide(
        [
            _credit_row(
                state=state,
                principal=principal,
                entity_type=entity_type,
                entity_id=entity_id,
                entry=entry,
                decision_id=decision_id,
                run_id=book.run_id,
            )
        ]
    )
    return with_decision(entry.body, decision_id)


async def credit_batch(
    *, state: AppState, principal: Principal, items: list[tuple[str, str]], lang: str = "en"
) -> bytes:
    """Encoded answers for many entities, each with its own decision id; unknown ones are listed,
    not an error. Every answer's audit row is durable before the response leaves."""
    if len(items) > state.settings.api_batch_max:
        raise InvalidParameter(f"at most {state.settings.api_batch_max} items per batch, got {len(items)}")
    book = _book(state)
    bodies, missing, rows = [], [], []
    region = principal.region
    for entity_type, entity_id in items:
        entry = book.credit.answer(entity_type, entity_id, lang)
        if entry is None or (region is not None and state.region_of(entity_type, entity_id) != region):
            missing.append({"entity_type": entity_type, "entity_id": entity_id})
            continue
        decision_id = new_decision_id()
        rows.append(
            _credit_row(
                state=state,
                principal=principal,
                entity_type=entity_type,
                entity_id=entity_id,
                entry=entry,
                decision_id=decision_id,
                run_id=book.run_id,
                action="credit_batch",
            )
        )
        bodies.append(orjson.Fragment(with_decision(entry.body, decision_id)))
    await state.audit.decide(rows)
    return orjson.dumps({"results": bodies, "not_found": missing, "run_id": book.run_id})


def _credit_row(
    *,
    state: AppState,
    principal: Principal,
    entity_type: str,
    entity_id: str,
    entry: CreditEntry,
    decision_id: str,
    run_id: str,
    action: str = "credit",
) -> dict[str, Any]:
    state.metrics.credit_by_grade[entry.grade].inc()
    return state.audit.row(
        actor=principal.actor,
        role=principal.role,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        model_version=entry.model_version,
        grade=entry.grade,
        detail=entry.audit_detail,
        decision_id=decision_id,
        run_id=run_id,
    )


def _book(state: AppState) -> ResultsBook:
    if not state.book.loaded:
        raise ResultsNotLoaded("no scores yet: run `riskgraph pipeline` (or the nightly-rescore job) first")
    return state.book


# -- entities and graph (investigators) -----------------------------------------------------------


async def entity_detail(*, state: AppState, principal: Principal, entity_type: str, entity_id: str) -> dict[str, Any]:
    """Attributes (masked by role), credit answer, rule hits with evidence and rings. An entity
    outside the key's region scope is not found."""
    book = state.book
    _check_scope(state, principal, EntityRef(entity_type, entity_id))
    attrs = await state.graph_call(state.store.entity, EntityRef(entity_type, entity_id))
    entry = book.credit.get((entity_type, entity_id))
    if attrs is None and entry is None:
        raise EntityNotFound(f"no {entity_type} {entity_id!r}")
    credit = None
    if entry is not None:
        credit = orjson.loads(entry.body)
    hits = book.rule_hits
    mine = (
        hits[(hits["entity_type"] == entity_type) & (hits["entity_id"].astype(str) == entity_id)] if len(hits) else hits
    )
    rule_hits = [
        {
            "rule_id": r["rule_id"],
            "severity": int(r["severity"]),
            "grade_cap": r.get("grade_cap") or None,
            "evidence": mask_evidence(_json(r["evidence"]), principal),
        }
        for r in mine.to_dict("records")
    ]
    members = book.ring_members
    rings = (
        members[(members["entity_type"] == entity_type) & (members["entity_id"].astype(str) == entity_id)]
        if len(members)
        else members
    )
    return {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "attributes": mask_attributes(attrs or {}, principal),
        "masked": not principal.sees_personal_data,
        "credit": credit,
        "rule_hits": rule_hits,
        "rings": [
            {"ring_id": r["ring_id"], "ring_type": r["ring_type"], "ring_score": float(r["ring_score"])}
            for r in rings.to_dict("records")
        ],
    }


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _check_scope(state: AppState, principal: Principal, ref: EntityRef) -> None:
    """404 for an entity outside the key's region scope (as if it did not exist)."""
    if principal.region is not None and state.region_of(ref.type, ref.id) != principal.region:
        raise EntityNotFound(f"no {ref.type} {ref.id!r}")


def _hidden(state: AppState, principal: Principal, node_type: str, node_id: str) -> bool:
    """An entity a region-scoped key may not see (shown as a token)."""
    return (
        principal.region is not None
        and node_type in ENTITY_TYPES
        and state.region_of(node_type, node_id) != principal.region
    )


def _node_id(state: AppState, node_type: str, node_id: str, principal: Principal) -> str:
    """How a node is named to this caller: personal identifiers and out-of-scope entities as keyed
    tokens (one token per value on every endpoint), everything else by its id."""
    if node_type in IDENTIFIER_TYPES and not principal.sees_personal_data:
        return mask_value(node_id, state.tokens)
    if _hidden(state, principal, node_type, node_id):
        return mask_entity(node_type, node_id, state.tokens)
    return node_id


def _graph(sub: Subgraph, *, state: AppState, principal: Principal) -> dict[str, Any]:
    book = state.book
    nodes = []
    for ref, attrs in sub.nodes.items():
        hidden = _hidden(state, principal, ref.type, ref.id)
        node = {
            "type": ref.type,
            "id": _node_id(state, ref.type, ref.id, principal),
            "attributes": mask_attributes(attrs, principal) if ref.type in ENTITY_TYPES and not hidden else {},
        }
        grade = None if hidden else book.credit.grade_of(ref.type, ref.id)
        if grade is not None:
            node["grade"] = grade
        nodes.append(node)
    edges = [
        {
            "source_type": e.source.type,
            "source_id": _node_id(state, e.source.type, e.source.id, principal),
            "target_type": e.target.type,
            "target_id": _node_id(state, e.target.type, e.target.id, principal),
            "relation": e.type,
            "count": e.count,
            "properties": e.properties,
        }
        for e in sub.edges
    ]
    return {"nodes": nodes, "edges": edges, "truncated": sub.truncated, "masked": not principal.sees_personal_data}


async def _require_entity(state: AppState, ref: EntityRef, principal: Principal) -> None:
    _check_scope(state, principal, ref)
    if (ref.type, ref.id) in state.book.credit:
        return
    if await state.graph_call(state.store.entity, ref) is None:
        raise EntityNotFound(f"no {ref.type} {ref.id!r}")


async def neighbours(
    *,
    state: AppState,
    principal: Principal,
    entity_type: str,
    entity_id: str,
    hops: int,
    limit: int,
    rel_types: list[str] | None,
) -> dict[str, Any]:
    """The entity's neighbourhood within `hops` (at most `limit` nodes)."""
    ref = EntityRef(entity_type, entity_id)
    await _require_entity(state, ref, principal)
    sub = await state.graph_call(
        state.store.neighbours, ref, hops=hops, limit=limit, rel_types=tuple(rel_types) if rel_types else None
    )
    return _graph(sub, state=state, principal=principal)


async def path(
    *, state: AppState, principal: Principal, source: EntityRef, target: EntityRef, max_hops: int
) -> dict[str, Any]:
    """One shortest path between two entities (found=false when none within `max_hops`)."""
    await _require_entity(state, source, principal)
    await _require_entity(state, target, principal)
    sub = await state.graph_call(state.store.shortest_path, source, target, max_hops=max_hops)
    if sub is None:
        return {
            "nodes": [],
            "edges": [],
            "truncated": False,
            "masked": not principal.sees_personal_data,
            "found": False,
            "hops": None,
        }
    out = _graph(sub, state=state, principal=principal)
    return {**out, "found": True, "hops": len(sub.edges)}


# -- rings ------------------------------------------------------------------------------------------


def _ring_summary(r: dict[str, Any]) -> dict[str, Any]:
    money = r.get("money_at_stake")
    return {
        "ring_id": r["ring_id"],
        "ring_type": r["ring_type"],
        "ring_score": float(r["ring_score"]),
        "size": int(r["size"]),
        "why": str(r.get("why") or ""),
        "money_at_stake": None if money is None or (isinstance(money, float) and math.isnan(money)) else float(money),
    }


def rings_page(
    *,
    state: AppState,
    ring_type: str | None,
    min_score: float | None,
    entity_type: str | None,
    entity_id: str | None,
    limit: int,
    cursor: str | None,
    principal: Principal | None = None,
) -> dict[str, Any]:
    """Rings, highest score first, optionally those of one entity. A region-scoped key sees the
    rings with at least one member in its region, and no ring through an entity outside it."""
    principal = principal or current_principal.get()
    rings = state.book.rings
    if rings.empty:
        return {"items": [], "total": 0, "next_cursor": None}
    if entity_id is not None and entity_type is None:
        raise InvalidParameter("entity_id needs entity_type")
    mask = np.ones(len(rings), dtype=bool)
    if principal is not None and principal.region is not None:
        if entity_id is not None and entity_type is not None:
            _check_scope(state, principal, EntityRef(entity_type, entity_id))
        mask &= rings["ring_id"].isin(_rings_in_scope(state, principal)).to_numpy()
    if ring_type is not None:
        mask &= (rings["ring_type"] == ring_type).to_numpy()
    if min_score is not None:
        mask &= (rings["ring_score"] >= min_score).to_numpy()
    if entity_type is not None:
        m = state.book.ring_members
        m = m[m["entity_type"] == entity_type]
        if entity_id is not None:
            m = m[m["entity_id"].astype(str) == entity_id]
        mask &= rings["ring_id"].isin(m["ring_id"]).to_numpy()
    rows = rings[mask].sort_values(["ring_score", "ring_id"], ascending=[False, True], kind="mergesort")
    total = len(rows)
    if cursor:
        score, last = decode_cursor(cursor, 2)
        if not isinstance(score, (int, float)) or not isinstance(last, str):
            raise InvalidParameter("cursor is not one this API returned")
        rs, ids = rows["ring_score"].to_numpy(dtype=float), rows["ring_id"].to_numpy(dtype=object)
        rows = rows[(rs < score) | ((rs == score) & (ids > last))]
    page = rows.iloc[:limit]
    nxt = (
        encode_cursor([float(page["ring_score"].iloc[-1]), page["ring_id"].iloc[-1]])
        if len(rows) > limit and len(page)
        else None
    )
    return {"items": [_ring_summary(r) for r in page.to_dict("records")], "total": total, "next_cursor": nxt}


def _rings_in_scope(state: AppState, principal: Principal) -> set[str]:
    """The rings with at least one member in the key's region."""
    m = state.book.ring_members
    if not len(m):
        return set()
    inside = [
        state.region_of(t, str(i)) == principal.region
        for t, i in zip(m["entity_type"].tolist(), m["entity_id"].tolist())
    ]
    return set(m["ring_id"][np.asarray(inside, dtype=bool)].tolist())


async def ring_detail(*, state: AppState, principal: Principal, ring_id: str) -> dict[str, Any]:
    """A ring with its members and evidence subgraph. Shared identifiers (phone, bank account,
    address) are the graph's identifier nodes: their values for roles that see personal data, the
    neighbourhoods' masked tokens for the others; `shared_by` counts the ring entities holding one.
    For a region-scoped key, members outside its region are tokens (and a ring without a member in
    its region is not found)."""
    book = state.book
    if book.rings.empty or ring_id not in set(book.rings["ring_id"]):
        raise RingNotFound(f"no ring {ring_id!r}")
    if principal.region is not None and ring_id not in _rings_in_scope(state, principal):
        raise RingNotFound(f"no ring {ring_id!r}")
    summary = _ring_summary(book.rings[book.rings["ring_id"] == ring_id].iloc[0].to_dict())
    ev = RingResult(book.ring_members, book.rings, book.ring_edges).evidence(ring_id)
    wanted = ring_evidence.pseudonyms(ev["nodes"])
    values: dict[tuple[str, str], str] = {}
    if wanted:
        held = await state.graph_call(state.store.subgraph, ring_evidence.holders(ev["nodes"]))
        values = ring_evidence.identifier_values(held, wanted, state.tokens)

    def node_id(node_type: str, raw: Any) -> str:
        return _node_id(state, node_type, values.get((node_type, str(raw)), str(raw)), principal)

    holders_of: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for e in ev["edges"]:
        if e["target_type"] in IDENTIFIER_TYPES:
            key = (e["target_type"], str(e["target_id"]))
            holders_of.setdefault(key, set()).add((e["source_type"], str(e["source_id"])))

    def node(n: dict[str, Any]) -> dict[str, Any]:
        hidden = _hidden(state, principal, n["entity_type"], str(n["entity_id"]))
        grade = None if hidden else book.credit.grade_of(n["entity_type"], str(n["entity_id"]))
        attributes: dict[str, Any] = {"member": bool(n["member"])}
        if n["entity_type"] in IDENTIFIER_TYPES:
            attributes["shared_by"] = len(holders_of.get((n["entity_type"], str(n["entity_id"])), ()))
        return {
            "type": n["entity_type"],
            "id": node_id(n["entity_type"], n["entity_id"]),
            "attributes": attributes,
            "grade": grade,
        }

    nodes = [node(n) for n in ev["nodes"]]
    edges = [
        {
            "source_type": e["source_type"],
            "source_id": node_id(e["source_type"], e["source_id"]),
            "target_type": e["target_type"],
            "target_id": node_id(e["target_type"], e["target_id"]),
            "relation": ring_evidence.relation(str(e["relation"]), e["target_type"]),
            "count": float(e.get("count") or 1),
        }
        for e in ev["edges"]
    ]
    return {
        **summary,
        "members": [n for n, raw in zip(nodes, ev["nodes"]) if raw["member"]],
        "subgraph": {"nodes": nodes, "edges": edges, "truncated": False, "masked": not principal.sees_personal_data},
    }
