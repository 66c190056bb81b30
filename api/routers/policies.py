"""Grade -> treatment policies: list them, add a version (model owners and admins, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from api import policies
from api.deps import OwnerCaller, RulesCaller, StateDep
from api.schemas import ErrorResponse, PolicyOut, PolicyPut, PolicyVersionOut

router = APIRouter(
    prefix="/v1/policies",
    tags=["policies"],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
PolicyId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{2,63}$", examples=["credit_treatments"])]


@router.get("", response_model=list[PolicyOut], summary="Policies, their versions and the one in force")
async def list_policies(caller: RulesCaller, state: StateDep) -> list[PolicyOut]:
    return [PolicyOut.model_validate(p) for p in await policies.policies_list(state=state)]


@router.put(
    "/{policy_id}",
    response_model=PolicyVersionOut,
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
    summary="Add a version of a policy, in force from its effective date (audited)",
)
async def put_policy(
    policy_id: PolicyId, request: Annotated[PolicyPut, Body()], caller: OwnerCaller, state: StateDep
) -> PolicyVersionOut:
    """The whole policy, validated like a rule pack (every problem named with its field); a new
    version never replaces an old one, and the credit answers switch on its effective date."""
    body = request.model_dump(mode="json")
    return PolicyVersionOut.model_validate(
        await policies.policy_put(state=state, principal=caller, policy_id=policy_id, body=body)
    )
