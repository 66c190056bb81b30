"""Liveness, readiness and Prometheus metrics (no key needed)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StateDep
from api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}}, summary="Ready to serve")
async def readyz(state: StateDep) -> JSONResponse:
    """Ready when the graph store answers and scores are loaded."""
    try:
        with anyio.fail_after(5):
            store_ok = bool(await anyio.to_thread.run_sync(state.store.ping))
    except Exception:  # an unreachable store is a readiness answer, not an error
        store_ok = False
    checks = {"store": store_ok, "scores": len(state.book.credit), "rules": state.rules_error is None}
    ready = store_ok and state.book.loaded
    return JSONResponse(
        Health(status="ready" if ready else "not_ready", checks=checks).model_dump(), status_code=200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    m = state.metrics
    m.audit_pending.set(len(state.audit.rows))
    m.audit_written.set(state.audit.written)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
