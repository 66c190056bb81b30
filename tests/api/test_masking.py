"""Keyed masking: one token per value on every endpoint, unlinkable without the server key, and
the key's rotation (old tokens stop matching, the API keeps working)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import mask_value
from composer.pipeline import run_pipeline
from riskgraph.server_keys import ENV_VAR, Tokens
from tests.api.support import headers, make_settings

IDENTIFIERS = ("phone", "address", "bank_account")
INV, INS = headers("investigator"), headers("inspector")


def _shared_identifier(client: TestClient) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str]]]:
    """A ring sharing an identifier: (investigator's ring, the identifier node, its holders)."""
    rings = client.get("/v1/rings", params={"limit": 500}, headers=INV).json()["items"]
    for summary in rings:
        ring = client.get(f"/v1/rings/{summary['ring_id']}", headers=INV).json()
        for node in ring["subgraph"]["nodes"]:
            if node["type"] in IDENTIFIERS:
                holders = [
                    (e["source_type"], e["source_id"])
                    for e in ring["subgraph"]["edges"]
                    if (e["target_type"], e["target_id"]) == (node["type"], node["id"])
                ]
                if len(holders) >= 2:
                    return ring, node, holders
    raise AssertionError("no ring shares an identifier")


def test_tokens_are_keyed_and_identical_across_endpoints(client: TestClient, scored_home: Path) -> None:
    ring, ident, holders = _shared_identifier(client)
    value = ident["id"]
    tokens = Tokens.of(scored_home)
    token = tokens(value)
    assert token == mask_value(value, client.app.state.riskgraph.tokens)
    assert token.startswith("tok-") and value not in token
    unkeyed = hashlib.sha256(value.encode()).hexdigest()
    assert unkeyed[:12] not in token and unkeyed[:20] not in token

    seen: dict[str, set[str]] = {}
    masked_ring = client.get(f"/v1/rings/{ring['ring_id']}", headers=INS).json()
    seen["ring"] = {n["id"] for n in masked_ring["subgraph"]["nodes"] if n["type"] == ident["type"]}
    (t1, a), (t2, b) = holders[:2]
    around = client.get(f"/v1/entities/{t1}/{a}/neighbours", headers=INS).json()
    seen["neighbours"] = {n["id"] for n in around["nodes"] if n["type"] == ident["type"]}
    params = {"source_type": t1, "source_id": a, "target_type": t2, "target_id": b, "max_hops": 2}
    path = client.get("/v1/paths", params=params, headers=INS).json()
    plain = client.get("/v1/paths", params=params, headers=INV).json()
    assert path["found"] and path["hops"] <= 2
    through = {n["id"] for n in plain["nodes"] if n["type"] in IDENTIFIERS}
    assert through and {n["id"] for n in path["nodes"] if n["type"] in IDENTIFIERS} == {tokens(v) for v in through}
    detail = client.get(f"/v1/entities/{t1}/{a}", headers=INS).json()
    assert detail["masked"] and value not in str(detail)
    for where, ids in seen.items():
        assert token in ids, (where, token, ids)
        assert value not in ids, where
    # whichever identifier the path goes through, the neighbourhoods show it by the same token
    around_b = client.get(f"/v1/entities/{t2}/{b}/neighbours", headers=INS).json()
    assert {tokens(v) for v in through} <= {n["id"] for n in around_b["nodes"]}


def test_key_rotation_changes_tokens_and_the_api_keeps_working(
    home_copy: Path, scored_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def identifier_tokens(c: TestClient) -> set[str]:
        nb = c.get("/v1/entities/person/P0000001/neighbours", headers=INS)
        assert nb.status_code == 200
        return {n["id"] for n in nb.json()["nodes"] if n["type"] in IDENTIFIERS}

    monkeypatch.delenv(ENV_VAR, raising=False)
    with TestClient(create_app(make_settings(home_copy))) as c:
        before = identifier_tokens(c)
        shown = c.get("/v1/entities/person/P0000001/neighbours", headers=INV).json()
    values = {n["id"] for n in shown["nodes"] if n["type"] in IDENTIFIERS}
    assert before and before == {Tokens.of(home_copy)(v) for v in values}

    monkeypatch.setenv(ENV_VAR, "ab" * 32)  # the rotated master secret (docs/security.md)
    # personal data at rest is encrypted under a key derived from the same secret: the documented
    # rotation runs the pipeline again, so the served data is written under the new keys
    run_pipeline(
        data=scored_home.parent / "data", out=home_copy.parent / "out-rotated", settings=make_settings(home_copy)
    )
    with TestClient(create_app(make_settings(home_copy))) as c:
        after = identifier_tokens(c)
        assert c.get("/v1/credit/person/P0000001", headers=headers("approval_system")).status_code == 200
        assert c.get("/v1/risk/person", headers=INS).status_code == 200
        audit = c.get("/v1/audit", params={"limit": 5}, headers=headers("admin"))
        assert audit.status_code == 200
    assert after and not (after & before), "old tokens no longer match new ones"
    assert after == {Tokens.of(home_copy)(v) for v in values}  # the environment holds the rotated secret
