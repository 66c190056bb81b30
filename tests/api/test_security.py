"""Keys, roles, masking, dev keys, request-size limit."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import ROLES
from tests.api.support import headers, make_settings, run_async

# (method, path, body, roles allowed)
CREDIT = {"approval_system", "inspector", "investigator", "admin"}
RISK = {"inspector", "investigator", "model_owner", "admin"}
GRAPH = {"inspector", "investigator", "admin"}
OWNER = {"model_owner", "admin"}
ENDPOINTS = [
    ("GET", "/v1/credit/person/P0000001", None, CREDIT),
    ("POST", "/v1/credit/batch", {"items": [{"entity_type": "person", "entity_id": "P0000001"}]}, CREDIT),
    ("GET", "/v1/risk/person", None, RISK),
    ("GET", "/v1/entities/person/P0000001", None, GRAPH),
    ("GET", "/v1/entities/person/P0000001/neighbours", None, GRAPH),
    ("GET", "/v1/paths?source_type=person&source_id=P0000001&target_type=person&target_id=P0000002", None, GRAPH),
    ("GET", "/v1/rings", None, GRAPH),
    ("GET", "/v1/models", None, OWNER),
    ("GET", "/v1/jobs", None, OWNER),
    ("GET", "/v1/jobs/runs", None, OWNER),
    ("GET", "/v1/jobs/nightly-rescore", None, OWNER),
    ("GET", "/v1/rules", None, RISK),
    ("GET", "/v1/audit", None, OWNER),
]


@pytest.mark.parametrize("method,path,body,allowed", ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_role_matrix(client: TestClient, method: str, path: str, body: dict | None, allowed: set[str]) -> None:
    r = client.request(method, path, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    r = client.request(method, path, json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid API key"
    for role in ROLES:
        r = client.request(method, path, json=body, headers=headers(role))
        if role in allowed:
            assert r.status_code == 200, (role, r.text)
        else:
            assert r.status_code == 403, role
            assert r.json()["error"]["code"] == "forbidden" and role in r.json()["error"]["message"]


def test_owner_only_writes_are_forbidden_to_others(client: TestClient) -> None:
    for role in ("inspector", "approval_system", "investigator"):
        assert client.post("/v1/models/x/promote", headers=headers(role)).status_code == 403
        assert client.post("/v1/jobs/ring-refresh/run", headers=headers(role)).status_code == 403
        assert client.post("/v1/models/retrain", headers=headers(role)).status_code == 403


def test_personal_data_masked_unless_investigator_or_admin(client: TestClient) -> None:
    url = "/v1/entities/person/P0000001"
    seen = client.get(url, headers=headers("investigator")).json()
    hidden = client.get(url, headers=headers("inspector")).json()
    assert not seen["masked"] and hidden["masked"]
    for col in ("name", "id_number", "phone", "bank_account", "address"):
        if seen["attributes"].get(col) is not None:
            assert hidden["attributes"][col] == "***" and seen["attributes"][col] != "***"
    nb = client.get(url + "/neighbours", headers=headers("inspector")).json()
    ids = [n["id"] for n in nb["nodes"] if n["type"] in ("phone", "address", "bank_account")]
    assert ids and all(i.startswith("tok-") for i in ids)
    raw = json.dumps(nb)
    if seen["attributes"].get("phone"):
        assert str(seen["attributes"]["phone"]) not in raw


def test_dev_keys_generated_once_and_loopback_only(home_copy: Path) -> None:
    settings = make_settings(home_copy, api_keys={})
    app = create_app(settings)
    path = home_copy / "api_keys.json"
    keys = json.loads(path.read_text())
    assert sorted(keys.values()) == sorted(ROLES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    create_app(settings)
    assert json.loads(path.read_text()) == keys, "keys are generated once"
    key = next(k for k, r in keys.items() if r == "approval_system")

    async def call(client_host: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client_host, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/v1/credit/person/P0000001", headers={"X-API-Key": key})

    assert run_async(call, "127.0.0.1").status_code == 200
    assert run_async(call, "10.1.2.3").status_code == 403


def test_no_keys_and_public_host_refuses_to_start(home_copy: Path) -> None:
    with pytest.raises(ValueError, match="no API keys"):
        create_app(make_settings(home_copy, api_keys={}, host="0.0.0.0"))


def test_unknown_role_in_settings_refused(home_copy: Path) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        create_app(make_settings(home_copy, api_keys={"k": "superuser"}))


def test_request_size_limit(client: TestClient) -> None:
    big = b'{"items": [' + b'{"entity_type":"person","entity_id":"P0000001"},' * 30000 + b"]}"
    r = client.post(
        "/v1/credit/batch", content=big, headers={**headers("approval_system"), "content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():
        yield big

    r = client.post(
        "/v1/credit/batch", content=chunks(), headers={**headers("approval_system"), "content-type": "application/json"}
    )
    assert r.status_code == 413
