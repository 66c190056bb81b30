"""Shared dependencies as `Annotated` aliases: the app state and the caller, by role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from api.security import Principal, authorize, current_principal
from api.state import AppState

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key; its role decides what the caller may do"
)


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.riskgraph
    return state


def authenticate(request: Request, key: str | None, allowed: frozenset[str]) -> Principal:
    """The caller behind the X-API-Key header, required to hold one of the `allowed` roles."""
    state: AppState = request.app.state.riskgraph
    principal = state.keyring.authenticate(key, request.client.host if request.client else None)
    request.scope.setdefault("state", {})["actor"] = principal.actor
    current_principal.set(principal)
    authorize(principal, allowed)
    return principal


def caller(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency authenticating the X-API-Key header and requiring one of `roles`."""
    allowed = frozenset(roles)

    async def dependency(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
        return authenticate(request, key, allowed)

    return dependency


CREDIT_ROLES = frozenset({"approval_system", "inspector", "investigator", "admin"})


StateDep = Annotated[AppState, Depends(get_state)]
CreditCaller = Annotated[Principal, Depends(caller(*CREDIT_ROLES))]
RiskCaller = Annotated[Principal, Depends(caller("inspector", "investigator", "model_owner", "admin"))]
GraphCaller = Annotated[Principal, Depends(caller("inspector", "investigator", "admin"))]
RulesCaller = Annotated[Principal, Depends(caller("inspector", "investigator", "model_owner", "admin"))]
OwnerCaller = Annotated[Principal, Depends(caller("model_owner", "admin"))]
