"""Service functions for model owners and administrators: the model registry, rules, scheduled
jobs and the audit log (keyword-only arguments, no web framework)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import anyio
import pandas as pd
import sqlalchemy as sa

from api.cursors import decode_cursor, encode_cursor
from api.errors import InvalidParameter
from api.jobs import JOBS, next_run_times
from api.security import Principal
from api.state import AppState
from composer import governance
from riskgraph.results_schema import audit_table
from scoring.disclosure import label_counts, withheld


def _metrics_out(metrics: dict[str, Any], *, calibration: bool) -> dict[str, Any]:
    """`metrics` (null when withheld), `metrics_withheld` and `label_counts` of a version."""
    reason = withheld(metrics)
    shown = None if reason else {k: v for k, v in metrics.items() if calibration or k != "calibration"}
    return {"metrics": shown, "metrics_withheld": reason, "label_counts": label_counts(metrics)}


def _model_out(rec: Any, *, detail: bool = False) -> dict[str, Any]:
    d = asdict(rec)
    out = {k: d[k] for k in ("version", "entity_type", "kind", "created_at", "data_hash", "champion")}
    out["n_features"] = len(d["features"])
    out.update(_metrics_out(d["metrics"], calibration=False))
    if detail:
        out["features"], out["params"] = d["features"], d["params"]
    return dict(_finite(out))


def _finite(value: Any) -> Any:
    """JSON-safe: NaN/inf become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


async def models_list(*, state: AppState, entity_type: str | None) -> list[dict[str, Any]]:
    recs = await anyio.to_thread.run_sync(lambda: state.registry.list(entity_type))
    return [_model_out(r) for r in recs]


async def model_detail(*, state: AppState, version: str) -> dict[str, Any]:
    return _model_out(await anyio.to_thread.run_sync(state.registry.get, version), detail=True)


async def model_metrics(*, state: AppState, version: str) -> dict[str, Any]:
    rec = await anyio.to_thread.run_sync(state.registry.get, version)
    out = {"version": rec.version, "entity_type": rec.entity_type, "kind": rec.kind}
    return dict(_finite({**out, **_metrics_out(rec.metrics, calibration=True)}))


async def promote(
    *, state: AppState, principal: Principal, version: str, force_reason: str | None = None
) -> dict[str, Any]:
    """Make `version` its type's champion through the promotion gate (composer/governance.py; served
    from the next re-scoring); audited there, with the gate's figures and any forcing reason."""

    def run() -> Any:
        governance.promote(
            state.settings, state.db, version, actor=principal.actor, role=principal.role, force_reason=force_reason
        )
        return state.registry.get(version)

    return _model_out(await anyio.to_thread.run_sync(run))


def rules_list(*, state: AppState, entity_type: str | None) -> list[dict[str, Any]]:
    if state.rules_error is not None:
        raise state.rules_error
    rules = state.rules if state.rules is not None else pd.DataFrame()
    if entity_type is not None and len(rules):
        rules = rules[rules["entity_type"] == entity_type]
    disabled = set(state.settings.rules_disabled)
    return [
        {
            **r,
            "params": json.loads(r["params"]),
            "grade_cap": r["grade_cap"] or None,
            "version": str(r["version"]),
            "enabled": bool(r["enabled"]) and r["rule_id"] not in disabled,
        }
        for r in rules.to_dict("records")
    ]


def _run_out(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": r["id"],
        "job_id": r["job_id"],
        "started_at": r["started_at"],
        "finished_at": r["finished_at"],
        "status": r["status"],
        "message": r["message"],
    }


def _job_out(state: AppState, job_id: str, nxt: dict[str, Any]) -> dict[str, Any]:
    spec = JOBS[job_id]
    last = state.runner.history(job_id, limit=1)
    when = nxt.get(job_id)
    return {
        "id": spec.id,
        "name": spec.name,
        "description": " ".join(spec.description.split()),
        "schedule": spec.schedule(state.settings),
        "next_run_at": when.isoformat() if when else None,
        "running": state.runner.running(job_id),
        "last_run": _run_out(last[0]) if last else None,
    }


def _next_runs(state: AppState) -> dict[str, Any]:
    if state.scheduler is not None:
        return {j.id: j.next_run_time for j in state.scheduler.get_jobs()}
    return next_run_times(state.settings)


async def jobs_list(*, state: AppState) -> list[dict[str, Any]]:
    def build() -> list[dict[str, Any]]:
        nxt = _next_runs(state)
        return [_job_out(state, job_id, nxt) for job_id in JOBS]

    return await anyio.to_thread.run_sync(build)


async def job_detail(*, state: AppState, job_id: str, limit: int) -> dict[str, Any]:
    state.runner.spec(job_id)

    def build() -> dict[str, Any]:
        return {
            **_job_out(state, job_id, _next_runs(state)),
            "history": [_run_out(r) for r in state.runner.history(job_id, limit=limit)],
        }

    return await anyio.to_thread.run_sync(build)


async def job_runs(*, state: AppState, job_id: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
    if job_id is not None:
        state.runner.spec(job_id)
    return [
        _run_out(r)
        for r in await anyio.to_thread.run_sync(lambda: state.runner.history(job_id, limit=limit, status=status))
    ]


async def job_start(*, state: AppState, principal: Principal, job_id: str) -> dict[str, Any]:
    """Start a job now in the background; 409 while a run is going."""
    run_id = await anyio.to_thread.run_sync(state.runner.start, job_id)
    state.audit.record(actor=principal.actor, role=principal.role, action="job_run", detail=f'{{"job_id":"{job_id}"}}')
    return {"run_id": run_id, "job_id": job_id, "status": "running"}


async def audit_query(
    *,
    state: AppState,
    actor: str | None,
    action: str | None,
    entity_type: str | None,
    entity_id: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Audit rows, newest first (queued rows are written first, so the answer is complete)."""
    await state.audit.flush()
    t = audit_table
    q = sa.select(t).order_by(t.c.id.desc()).limit(limit + 1)
    for col, val in (
        (t.c.actor, actor),
        (t.c.action, action),
        (t.c.entity_type, entity_type),
        (t.c.entity_id, entity_id),
    ):
        if val is not None:
            q = q.where(col == val)
    if since is not None:
        q = q.where(t.c.at >= since)
    if until is not None:
        q = q.where(t.c.at < until)
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        if not isinstance(before, int):
            raise InvalidParameter("cursor is not one this API returned")
        q = q.where(t.c.id < before)

    def run() -> list[dict[str, Any]]:
        with state.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    rows = await anyio.to_thread.run_sync(run)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": encode_cursor([rows[-1]["id"]]) if more and rows else None}
