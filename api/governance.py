"""Service functions of model governance: replaying decisions (more follow: monitoring,
champion/challenger). Keyword-only arguments, no web framework."""

from __future__ import annotations

import anyio

from api.replay import Replayer, find_decision
from api.security import Principal
from api.state import AppState


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
