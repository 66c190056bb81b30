"""The case endpoints' service functions: the caller's scope, the served run's alerts, and the
case workflow of composer/cases.py run off the event loop (every change there is one
transaction with its history event and audit row)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pandas as pd
import sqlalchemy as sa

from api.audit import new_decision_id
from api.errors import ResultsNotLoaded
from api.security import Principal
from api.state import AppState
from composer import cases as workflow
from riskgraph.errors import EntityNotFound
from riskgraph.results import run_table
from riskgraph.results_schema import cases_table


class AlertNotFound(EntityNotFound):
    code = "alert_not_found"


def actor(principal: Principal) -> workflow.Actor:
    return workflow.Actor(principal.actor, principal.role)


def served_alert(state: AppState, alert_id: str) -> dict[str, Any] | None:
    """One alert of the served run (None: no such alert, or nothing served)."""
    run_id = state.db.served_run_id()
    if run_id is None:
        return None
    table = run_table(run_id, "alerts")
    with state.db.engine.connect() as conn:
        if not sa.inspect(conn).has_table(table):
            return None
        row = conn.execute(sa.text(f'SELECT * FROM "{table}" WHERE alert_id = :a'), {"a": alert_id}).first()
    return {**dict(row._mapping), "run_id": run_id} if row is not None else None


def _check_case_scope(state: AppState, principal: Principal, case: dict[str, Any]) -> None:
    """A case outside the key's region scope is not found (as if it did not exist)."""
    if principal.region is not None and case.get("region") != principal.region:
        raise workflow.CaseNotFound(f"no case {case['case_id']!r}")


async def create_case(
    *,
    state: AppState,
    principal: Principal,
    alert_id: str | None,
    entity_type: str | None,
    entity_id: str | None,
    typology: str | None,
    assignee: str | None,
    due_date: str | None,
    note: str | None,
) -> dict[str, Any]:
    """A case from an alert of the served run, or from an entity (scored in the served run)."""
    run_id = state.db.served_run_id()
    if alert_id is not None:
        alert = await anyio.to_thread.run_sync(served_alert, state, alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id!r} in the served run")
        subject_type, subject_id, typ = alert["subject_type"], str(alert["subject_id"]), alert["typology"]
        run_id = alert["run_id"]
    else:
        if entity_type is None or entity_id is None:
            raise workflow.CaseInvalid("give an alert_id, or an entity_type and entity_id")
        if not state.book.loaded:
            raise ResultsNotLoaded("no scores yet: run `riskgraph pipeline` first")
        if entity_type != "ring" and (entity_type, entity_id) not in state.book.credit:
            raise EntityNotFound(f"no {entity_type} {entity_id!r} in the served run")
        subject_type, subject_id, typ = entity_type, entity_id, typology or "manual"
    region = state.region_of(subject_type, subject_id) if subject_type != "ring" else None
    if principal.region is not None and region != principal.region:
        raise EntityNotFound(f"no {subject_type} {subject_id!r}")
    return await anyio.to_thread.run_sync(
        lambda: workflow.open_case(
            state.db,
            actor(principal),
            subject_type=subject_type,
            subject_id=subject_id,
            typology=typ,
            alert_id=alert_id,
            run_id=run_id,
            region=region,
            assignee=assignee,
            due_date=due_date,
            note=note,
        )
    )


async def case_detail(*, state: AppState, principal: Principal, case_id: str) -> dict[str, Any]:
    """The case, its history and the alert it came from (as the served run has it now)."""
    case = await anyio.to_thread.run_sync(workflow.get_case, state.db, case_id)
    _check_case_scope(state, principal, case)
    alert = await anyio.to_thread.run_sync(served_alert, state, case["alert_id"]) if case["alert_id"] else None
    entity = case["subject_type"] != "ring"
    await disclosed(
        state,
        principal,
        "case_view",
        {"case_id": case_id} | ({} if entity else {"ring_id": case["subject_id"]}),
        entity_type=case["subject_type"] if entity else None,
        entity_id=case["subject_id"] if entity else None,
    )
    return case | {"alert": alert}


async def disclosed(
    state: AppState,
    principal: Principal,
    action: str,
    detail: dict[str, Any],
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
) -> None:
    """A read's one audit row (the case or alert ids shown), durable before the answer leaves."""
    await state.audit.decide(
        [
            state.audit.row(
                actor=principal.actor,
                role=principal.role,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                detail=json.dumps(detail, sort_keys=True, default=str),
                decision_id=new_decision_id(),
                run_id=state.db.served_run_id(),
            )
        ]
    )


async def scoped(state: AppState, principal: Principal, case_id: str) -> None:
    case = await anyio.to_thread.run_sync(workflow.get_case, state.db, case_id)
    _check_case_scope(state, principal, case)


async def list_cases(
    *, state: AppState, principal: Principal, f: workflow.CaseFilters, limit: int, offset: int
) -> dict[str, Any]:
    if principal.region is not None:
        if f.region is not None and f.region != principal.region:
            return {"total": 0, "cases": [], "limit": limit, "offset": offset}
        f = workflow.CaseFilters(**{**f.__dict__, "region": principal.region})
    total, rows = await anyio.to_thread.run_sync(lambda: workflow.list_cases(state.db, f, limit=limit, offset=offset))
    await disclosed(state, principal, "case_list", {"filters": f.__dict__, "ids": [r["case_id"] for r in rows]})
    return {"total": total, "cases": rows, "limit": limit, "offset": offset}


ALERT_LISTS = ("new_members", "left_members", "new_rules", "new_serious_rules")


def _ranked_alerts(state: AppState, run_id: str) -> pd.DataFrame:
    """The run's alerts in listing order (raised new, then re-opened, then by score), read from
    the results database once per served run (100k alerts take 0.8 s to read) and kept with the book."""
    cached = state.book.lookups.get("alerts")
    if cached is None or cached[0] != run_id:
        df = state.db.read_run_table(run_id, "alerts")
        if len(df):
            rank = df["event"].map({"new": 0, "reopened": 1}).fillna(2)
            df = (
                df.assign(_rank=rank)
                .sort_values(["_rank", "score", "alert_id"], ascending=[True, False, True], kind="mergesort")
                .drop(columns="_rank")
            )
        cached = state.book.lookups["alerts"] = (run_id, df)
    ranked: pd.DataFrame = cached[1]
    return ranked


def alert_page(
    state: AppState,
    principal: Principal,
    *,
    raised: bool | None,
    events: tuple[str, ...],
    subject_type: str | None,
    subject_id: str | None,
    typology: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """One page of the served run's alerts, filtered; a region-scoped key sees the entity
    alerts of its region only."""
    run_id = state.db.served_run_id()
    empty: dict[str, Any] = {"total": 0, "limit": limit, "offset": offset, "run_id": run_id, "alerts": []}
    if run_id is None:
        return empty
    df = _ranked_alerts(state, run_id)
    if df.empty:
        return empty
    keep = pd.Series(True, index=df.index)
    if raised is not None:
        keep &= df["raised"].astype(bool) == raised
    if events:
        keep &= df["event"].isin(events)
    for col, value in (("subject_type", subject_type), ("subject_id", subject_id), ("typology", typology)):
        if value is not None:
            keep &= df[col].astype(str) == value
    df = df[keep]
    if principal.region is not None:
        regions = [
            state.region_of(t, str(i)) if t != "ring" else None for t, i in zip(df["subject_type"], df["subject_id"])
        ]
        df = df[[r == principal.region for r in regions]]
    rows = df.iloc[offset : offset + limit]
    latest = _latest_cases(state, rows)
    alerts = []
    for r in rows.to_dict("records"):
        for k in ALERT_LISTS:
            r[k] = json.loads(r[k] or "[]")
        for k in ("score", "previous_score", "score_rise"):
            r[k] = None if r[k] is None or pd.isna(r[k]) else float(r[k])
        r["raised"] = bool(r["raised"])
        case = latest.get((r["subject_type"], str(r["subject_id"]), r["typology"]))
        r["case_id"], r["case_status"] = (case["case_id"], case["status"]) if case else (None, None)
        alerts.append(r)
    return {"total": int(len(df)), "limit": limit, "offset": offset, "run_id": run_id, "alerts": alerts}


def _latest_cases(state: AppState, alerts: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The newest case of each alert's subject and typology (an alert re-opened after its case was
    dismissed shows that case)."""
    if alerts.empty:
        return {}
    c = cases_table.c
    q = (
        sa.select(c.case_id, c.subject_type, c.subject_id, c.typology, c.status, c.created_at)
        .where(c.subject_id.in_([str(i) for i in alerts["subject_id"].unique()]))
        .order_by(c.created_at, c.case_id)
    )
    with state.db.engine.connect() as conn:
        return {(r.subject_type, r.subject_id, r.typology): dict(r._mapping) for r in conn.execute(q)}
