"""Person resolution endpoints: the review list and decisions, the lookup by ID number; roles and audit."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from graph.resolve.idnumber import to18
from tests.api.support import headers


def _state(client: TestClient):
    return client.app.state.riskgraph


def _audit_actions(client: TestClient) -> list[str]:
    return [r["action"] for r in _state(client).db.audit_rows()]


def test_lookup_by_id_number_finds_the_golden_person_from_either_form(private_client: TestClient) -> None:
    state = _state(private_client)
    persons = state.store.dataset().table("persons")
    short = persons[persons["id_number"].str.len() == 15].iloc[0]
    full = to18(pd.Series([short["id_number"]]))[0]
    got = private_client.get(f"/v1/persons/by-id-number/{full}", headers=headers("investigator"))
    assert got.status_code == 200, got.text
    body = got.json()
    ids = {r["person_id"] for r in body["records"]}
    assert short["person_id"] in ids and len(ids) >= 2  # the 15-digit duplicate and its 18-digit record
    again = private_client.get(f"/v1/persons/by-id-number/{short['id_number']}", headers=headers("investigator"))
    assert again.json()["golden_id"] == body["golden_id"]
    assert "person_by_id_number" in _audit_actions(private_client)
    # the numbers were checked once, for the served run: a reload starts afresh
    assert "id_numbers" in state.book.lookups and "resolved" in state.book.lookups
    state.load_results()
    assert state.book.lookups == {}
    third = private_client.get(f"/v1/persons/by-id-number/{full}", headers=headers("investigator"))
    assert third.json() == body


def test_lookup_is_for_investigators_only_and_refuses_bad_numbers(private_client: TestClient) -> None:
    for role in ("inspector", "approval_system", "model_owner", "admin"):
        r = private_client.get("/v1/persons/by-id-number/11010519491231002X", headers=headers(role))
        assert r.status_code == 403, role
    r = private_client.get("/v1/persons/by-id-number/11010519491231002Y", headers=headers("investigator"))
    assert r.status_code == 422
    r = private_client.get("/v1/persons/by-id-number/11010519491231002X", headers=headers("investigator"))
    assert r.status_code == 404


def test_review_list_and_a_decision_are_stored_and_audited(private_client: TestClient) -> None:
    r = private_client.get("/v1/review/persons", headers=headers("investigator"))
    assert r.status_code == 200, r.text
    assert {"run_id", "total", "items"} <= set(r.json())
    assert private_client.get("/v1/review/persons", headers=headers("inspector")).status_code == 403
    persons = _state(private_client).store.dataset().table("persons")["person_id"].tolist()
    body = {"left": persons[3], "right": persons[1], "decision": "reject"}
    d = private_client.post("/v1/review/persons/decisions", json=body, headers=headers("investigator"))
    assert d.status_code == 200, d.text
    assert (d.json()["left"], d.json()["right"]) == (persons[1], persons[3])
    stored = _state(private_client).db.person_decisions()
    assert stored[["left", "right", "decision"]].values.tolist() == [[persons[1], persons[3], "reject"]]
    assert "review_decision" in _audit_actions(private_client)
    unknown = dict(body, left="NOPE")
    assert (
        private_client.post("/v1/review/persons/decisions", json=unknown, headers=headers("investigator")).status_code
        == 404
    )
    bad = dict(body, decision="maybe")
    assert (
        private_client.post("/v1/review/persons/decisions", json=bad, headers=headers("investigator")).status_code
        == 422
    )
