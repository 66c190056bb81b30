"""Service functions of model governance: replaying decisions (more follow: monitoring,
champion/challenger). Keyword-only arguments, no web framework."""

from __future__ import annotations

import json
from typing import Any

import anyio

from api.replay import Replayer, find_decision
from api.security import Principal
from api.state import AppState
from composer import governance
from composer.monitoring import saved_monitoring
from riskgraph.errors import RiskGraphError


class MonitoringNotFound(RiskGraphError):
    status_code = 404
    code = "monitoring_not_found"


async def replay_decision(*, state: AppState, principal: Principal, decision_id: str) -> bytes:
    """A past credit answer, byte-identical apart from `replayed_at`; the replay itself is audited."""
    replayer = Replayer(state.settings, state.db)
    body = await anyio.to_thread.run_sync(replayer.replay, decision_id)
    decision = await anyio.to_thread.run_sync(find_decision, state.db, decision_id)
    state.audit.record(
        actor=principal.actor,
        role=principal.role,
        action="replay",
        entity_type=decision.entity_type,
        entity_id=decision.entity_id,
        model_version=decision.model_version,
        grade=decision.grade,
        decision_id=decision_id,
        run_id=decision.run_id,
    )
    await state.audit.flush()
    return body


def model_monitoring_sync(state: AppState, version: str) -> dict[str, Any]:
    """The drift report of the newest retained run that scored with `version`."""
    rec = state.registry.get(version)  # ModelNotFound for an unknown version
    for run in state.db.runs("committed"):
        if not run["serves"]:
            continue
        manifest = json.loads(run.get("manifest") or "{}")
        if (manifest.get("models", {}).get(rec.entity_type) or {}).get("version") != version:
            continue
        monitoring = saved_monitoring(state.settings, run["run_id"])
        if monitoring is None or rec.entity_type not in monitoring.get("types", {}):
            continue
        rules = monitoring.get("rule_hit_rates")
        return {
            "version": version,
            "entity_type": rec.entity_type,
            "run_id": monitoring["run_id"],
            "previous_run_id": monitoring.get("previous_run_id"),
            "bands": monitoring["bands"],
            **monitoring["types"][rec.entity_type],
            "alerts": [a for a in monitoring["alerts"] if a["entity_type"] == rec.entity_type],
            "rule_hit_rates": None if rules is None else [r for r in rules if r["entity_type"] == rec.entity_type],
        }
    raise MonitoringNotFound(
        f"no retained run scored with {version}: monitoring is kept with the newest retention_runs="
        f"{state.settings.retention_runs} runs"
    )


async def model_monitoring(*, state: AppState, version: str) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(model_monitoring_sync, state, version)


async def compare_models(*, state: AppState, champion: str, challenger: str) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(
        lambda: governance.compare(state.settings, state.db, champion=champion, challenger=challenger)
    )
