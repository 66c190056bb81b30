"""The FastAPI application: `create_app(settings)` wires state, routers, error mapping (one place),
middleware (request-size limit, metrics, structured access log), background tasks and scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import riskgraph
from api.audit import AuditWriter
from api.jobs import JobRunner, build_scheduler
from api.metrics import Metrics
from api.routers import admin, cases, credit, governance, graph, health, objections, persons, policies, risk
from api.security import LOOPBACK_HOSTS, Tokens, load_keyring
from api.state import AppState
from composer.runs import try_recover
from graph.factory import open_store
from riskgraph.api_keys import KeyStore, Pepper
from riskgraph.errors import RiskGraphError
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from scoring.registry import ModelRegistry

log = logging.getLogger("riskgraph.api")
access_log = logging.getLogger("riskgraph.api.access")
STATIC_DIR = Path(__file__).parent / "static"
VENDOR_URL = "/static/vendor"  # pinned copies of Swagger UI and ReDoc (see api/static/vendor/README.md)

DESCRIPTION = """Credit grades, risk lists, investigation graph and model operations.
Authenticate with an `X-API-Key` header; the key's role (inspector, approval_system, investigator,
model_owner, admin) decides what you may call. Errors are `{"error": {"code", "message"}}`."""


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return {"error": body}


def build_state(settings: Settings) -> AppState:
    """Open the results DB and graph store and load the served results."""
    db = ResultsDB.of(settings)
    keyring = load_keyring(settings, KeyStore(db.engine, Pepper.of(settings.home, settings.secret_key_file)))
    registry = ModelRegistry(db)
    metrics = Metrics()
    audit = AuditWriter(db, flush_ms=settings.api_audit_flush_ms, fault=settings.fault)
    store = open_store(settings.store, settings)
    try_recover(settings, db, store)  # finishes a commit cut short (no-op while a run is going)
    state = AppState(
        settings=settings,
        db=db,
        registry=registry,
        store=store,
        keyring=keyring,
        audit=audit,
        runner=JobRunner(settings, db),
        metrics=metrics,
        tokens=Tokens.of(settings.home, settings.secret_key_file),
    )
    state.runner.on_success = lambda job_id: state.load_results()
    state.load_results()
    state.load_rules()
    if keyring.dev_mode:
        log.warning("no API keys configured: development keys from %s (loopback clients only)", keyring.source)
    return state


def create_app(settings: Settings) -> FastAPI:
    """The API application for `settings` (results are loaded here; tasks start with the lifespan)."""
    state = build_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.audit.start()
        poller = asyncio.get_running_loop().create_task(_poll_results(state), name="results-poller")
        key_poller = asyncio.get_running_loop().create_task(_poll_keys(state), name="keys-poller")
        if settings.api_scheduler:
            state.scheduler = build_scheduler(settings, state.runner)
            state.scheduler.start()
        try:
            yield
        finally:
            if state.scheduler is not None:
                state.scheduler.shutdown(wait=False)
                state.scheduler = None
            for task in (poller, key_poller):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            state.close_graph_pool()
            await state.audit.stop()
            state.store.close()

    app = FastAPI(
        title="RiskGraph API",
        version=riskgraph.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below from the vendored assets, so the docs work offline
        redoc_url=None,
        openapi_tags=[
            {"name": "credit", "description": "approval systems: audited credit grades"},
            {"name": "risk", "description": "inspectors: ranked risk lists and CSV export"},
            {"name": "investigation", "description": "investigators: entities, graph, paths, rings"},
            {"name": "models", "description": "model owners: registry, retraining, promotion"},
            {"name": "jobs", "description": "scheduled jobs and their history"},
            {"name": "rules", "description": "rule packs and versions"},
            {"name": "policies", "description": "grade -> treatment policies (versioned, audited)"},
            {"name": "audit", "description": "who was told what, when"},
            {"name": "operations", "description": "health, readiness, metrics"},
        ],
    )
    app.state.riskgraph = state
    _add_error_handlers(app)
    app.add_middleware(
        ServiceMiddleware,
        metrics=state.metrics,
        max_body=settings.api_max_body_bytes,
        max_headers=settings.api_max_header_bytes,
    )
    for r in (
        credit.router,
        risk.router,
        graph.router,
        persons.router,
        cases.router,
        cases.alerts_router,
        objections.router,
        governance.router,  # before admin, so that /v1/models/compare is not read as a version
        admin.router,
        policies.router,
        health.router,
    ):
        app.include_router(r)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
        _add_docs(app)
        if (STATIC_DIR / "index.html").is_file():

            @app.get("/", include_in_schema=False)
            async def index() -> FileResponse:
                return FileResponse(STATIC_DIR / "index.html")

        @app.get("/pages/config", include_in_schema=False)
        async def pages_config(request: Request) -> dict[str, Any]:
            """What the pages need before a key: where the dev keys are (loopback clients, dev mode only)."""
            local = request.client is not None and request.client.host in LOOPBACK_HOSTS
            return {
                "version": riskgraph.__version__,
                "dev_keys_file": state.keyring.source if state.keyring.dev_mode and local else None,
            }

    return app


def _add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc) from the vendored copies: nothing fetched from a CDN."""
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = "/docs/oauth2-redirect"
    favicon = f"{VENDOR_URL}/swagger-ui/favicon-32x32.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{VENDOR_URL}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR_URL}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=favicon,
            oauth2_redirect_url=oauth2_redirect,
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{VENDOR_URL}/redoc/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )


async def _poll_keys(state: AppState) -> None:
    """Pick up institution keys created or revoked by `riskgraph keys` (another process)."""
    while True:
        await asyncio.sleep(state.settings.api_keys_refresh_s)
        try:
            if await anyio.to_thread.run_sync(state.keyring.refresh):
                log.info("API keys reloaded: %d keys", len(state.keyring.entries))
        except Exception:
            log.exception("API key reload failed; still using the previous keys")


async def _poll_results(state: AppState) -> None:
    """Pick up results rewritten by another process (pipeline, `riskgraph jobs run`)."""
    while True:
        await asyncio.sleep(state.settings.api_results_poll_s)
        try:
            if await anyio.to_thread.run_sync(state.reload_if_changed):
                log.info("results reloaded: %d scores", len(state.book.credit))
        except Exception:
            log.exception("results reload failed; still serving the previous results")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error becomes `{"error": {"code", "message"}}` here, and only here."""

    @app.exception_handler(RiskGraphError)
    async def domain_error(request: Request, exc: RiskGraphError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, str(exc)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid_request", "request parameters failed validation", detail), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s on %s", type(exc).__name__, _route(request.scope), exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal error; see the server log"), status_code=500)


class _BodyTooLarge(Exception):
    pass


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class ServiceMiddleware:
    """Pure ASGI (cheap on the hot path): header-size limit (431; the server's own limit is in
    api/http_limits.py, before any parsing: this one covers any other ASGI server), body-size limit,
    Prometheus metrics, JSON access log (route template, status, latency, actor id; never parameters
    or bodies)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body: int, max_headers: int = 16_384) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.max_headers = max_headers
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # labelled metrics, per app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        started = False
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        for name, value in scope["headers"]:
            head += len(name) + len(value) + 4
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body):
                await _send_json(send, 413, error_body("payload_too_large", f"request body over {self.max_body} bytes"))
                self._observe(scope, 413, t0)
                return
        if head > self.max_headers:
            await _send_json(
                send, 431, error_body("headers_too_large", f"request headers over {self.max_headers} bytes")
            )
            self._observe(scope, 431, t0)
            return
        seen = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal status, started
            if too_large:  # whatever the app made of the aborted body, the answer is 413
                if message["type"] == "http.response.start" and not started:
                    status, started = 413, True
                    await _send_json(
                        send, 413, error_body("payload_too_large", f"request body over {self.max_body} bytes")
                    )
                return
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                status, started = 413, True
                await _send_json(send, 413, error_body("payload_too_large", f"request body over {self.max_body} bytes"))
        finally:
            self._observe(scope, status, t0)

    def _observe(self, scope: Scope, status: int, t0: float) -> None:
        elapsed = time.perf_counter() - t0
        route = _route(scope)
        key = (scope["method"], route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels(scope["method"], route, str(status)),
                self.metrics.latency.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                json.dumps(
                    {
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                        "actor": scope.get("state", {}).get("actor"),
                    }
                )
            )


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": raw})
