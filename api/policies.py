"""Policy versions behind /v1/policies: listed by any caller who may read rules, added (never
edited in place) by model owners and admins. A new version and its audit row are written in one
transaction; the served book then answers with the version in force on each day."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import anyio

from api.credit_policy import PolicyBook
from api.security import Principal
from api.state import AppState
from composer.supervision import audit_row, policy_row, stored_policies
from riskgraph.errors import RiskGraphError
from riskgraph.results_schema import policies_table
from rules.policy import parse_policy


class PolicyNotFound(RiskGraphError):
    status_code = 404
    code = "policy_not_found"


class PolicyVersionExists(RiskGraphError):
    status_code = 409
    code = "policy_version_exists"


def _version_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": row["version"],
        "effective_date": row["effective_date"],
        "changed_by": row["changed_by"],
        "changed_at": row["changed_at"],
        "note": row["note"] or "",
        "policy": json.loads(row["body"]),
    }


def _listing(state: AppState) -> list[dict[str, Any]]:
    stored_policies(state.db)  # seeds the shipped policies on first use
    rows = state.db.policy_versions()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        p = out.setdefault(r["policy_id"], {"id": r["policy_id"], "in_force": None, "versions": []})
        p["versions"].append(_version_out(r))
        if r["effective_date"] <= today and (
            p["in_force"] is None or r["effective_date"] >= p["in_force"]["effective_date"]
        ):
            p["in_force"] = {"version": r["version"], "effective_date": r["effective_date"]}
    return list(out.values())


async def policies_list(*, state: AppState) -> list[dict[str, Any]]:
    return await anyio.to_thread.run_sync(_listing, state)


def _put(state: AppState, principal: Principal, policy_id: str, body: dict[str, Any]) -> dict[str, Any]:
    versions = stored_policies(state.db, policy_id)
    if not versions:
        raise PolicyNotFound(f"no policy {policy_id!r}; known: {', '.join(p['id'] for p in _listing(state))}")
    data = {**body["policy"], "id": policy_id, "version": body["version"], "effective_date": body["effective_date"]}
    policy = parse_policy(data, f"PUT /v1/policies/{policy_id}")
    if any(p.version == policy.version for p in versions):
        raise PolicyVersionExists(
            f"policy {policy_id} already has a version {policy.version!r}; versions are never edited"
        )
    row = policy_row(policy, changed_by=principal.actor, note=body.get("note") or "")
    detail = {
        "policy_id": policy_id,
        "version": policy.version,
        "effective_date": str(policy.effective_date),
        "previous_version": versions[-1].version,
        "body_sha256": hashlib.sha256(row["body"].encode()).hexdigest()[:16],
        "note": row["note"],
    }
    state.db.write_with_audit(
        policies_table,
        [row],
        [audit_row(actor=principal.actor, role=principal.role, action="policy_change", detail=detail)],
    )
    state.book.credit.policies = PolicyBook(stored_policies(state.db, policy_id))
    return next(_version_out(r) for r in state.db.policy_versions(policy_id) if r["version"] == policy.version)


async def policy_put(*, state: AppState, principal: Principal, policy_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Add a version of a policy (validated; audited in the same transaction)."""
    return await anyio.to_thread.run_sync(_put, state, principal, policy_id, body)
