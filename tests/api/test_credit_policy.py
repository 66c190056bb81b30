"""Credit supervision in the answers: scheme grades beside the model's, treatments and the policy
version; policies listed and changed through the API (model owners and admins, audited)."""

from __future__ import annotations

import json

import pandas as pd
from fastapi.testclient import TestClient

from riskgraph.results import ResultsDB
from tests.api.support import headers


def _db(client: TestClient) -> ResultsDB:
    return client.app.state.riskgraph.db


def _outcomes(client: TestClient) -> pd.DataFrame:
    from composer.runs import run_dir
    from composer.supervision import SCHEMES_PARQUET

    state = client.app.state.riskgraph
    return pd.read_parquet(run_dir(state.settings, state.book.run_id) / "features" / SCHEMES_PARQUET)


def test_an_employer_answer_carries_its_schemes_treatments_and_policy_version(client: TestClient) -> None:
    out = _outcomes(client)
    c = out[(out["scheme"] == "labour_integrity") & (out["status"] == "C")].iloc[0]
    body = client.get(f"/v1/credit/employer/{c.entity_id}", headers=headers("approval_system")).json()
    integrity = next(s for s in body["schemes"] if s["scheme"] == "labour_integrity")
    assert integrity["status"] == "C" and integrity["clause"].startswith("第七条（三）")
    assert integrity["cap"] == "D" and "人社部规〔2016〕1号" in integrity["legal_basis"]
    assert body["grade"] == "D"  # the stricter of the model's grade and the cap binds
    assert integrity["binds"] == (body["score_grade"] != "D")
    assert body["policy"] == {"id": "credit_treatments", "version": "2026.1", "effective_date": "2026-01-01"}
    t = body["treatments"]
    assert t["online_scope"] == "none" and t["commitment_procedure"] is False
    assert t["startup_loan"] == {"cap_yuan": 0.0, "term_months": 0}
    assert "labour_inspection_priority" in t["extra_checks"]
    audit = [r for r in _db(client).audit_rows() if r["entity_id"] == c.entity_id and r["action"] == "credit"]
    assert json.loads(audit[-1]["detail"])["policy"] == "credit_treatments 2026.1"
    if integrity["binds"]:
        assert body["reasons"][0]["code"] == "RG-C-001" and "grade C" in body["reasons"][0]["text"]


def test_credit_points_stay_the_models(client: TestClient) -> None:
    out = _outcomes(client)
    ids = out.loc[out["status"].isin(["C", "listed"]), "entity_id"]
    scores = _db(client).read("scores")
    capped = scores[(scores["entity_type"] == "employer") & scores["entity_id"].isin(ids)]
    for row in capped.itertuples():
        body = client.get(f"/v1/credit/employer/{row.entity_id}", headers=headers("admin")).json()
        assert body["credit_points"] == row.credit_points and body["grade"] == "D"


def test_a_listed_employer_is_listed_in_the_answer(client: TestClient) -> None:
    out = _outcomes(client)
    listed = out[(out["scheme"] == "wage_arrears_list") & (out["status"] == "listed")].iloc[0]
    body = client.get(f"/v1/credit/employer/{listed.entity_id}", headers=headers("approval_system")).json()
    item = next(s for s in body["schemes"] if s["scheme"] == "wage_arrears_list")
    assert item["status"] == "listed" and item["listed_date"] and item["expires_date"]
    assert body["grade"] == "D" and body["treatments"]["because"][0]["scheme"] == "wage_arrears_list"


def test_a_person_gets_treatments_without_schemes(client: TestClient) -> None:
    scores = _db(client).read("scores")
    row = scores[scores["entity_type"] == "person"].iloc[0]
    body = client.get(f"/v1/credit/person/{row.entity_id}", headers=headers("approval_system")).json()
    assert body["schemes"] == [] and body["policy"]["version"] == "2026.1"
    assert set(body["treatments"]) >= {"priority_handling", "commitment_procedure", "online_scope", "startup_loan"}


def _new_version(version: str, effective: str) -> dict:
    from rules.policy import seed_policies

    policy = json.loads(seed_policies()[0].model_dump_json())
    for k in ("id", "version", "effective_date"):
        policy.pop(k)
    policy["grades"]["A"]["startup_loan"]["person"] = {"cap_yuan": 500000, "term_months": 36}
    return {"version": version, "effective_date": effective, "policy": policy, "note": "raise the A loan cap"}


def test_policies_are_listed(client: TestClient) -> None:
    r = client.get("/v1/policies", headers=headers("inspector"))
    assert r.status_code == 200
    p = next(p for p in r.json() if p["id"] == "credit_treatments")
    assert p["in_force"]["version"] == "2026.1" and p["versions"][0]["changed_by"] == "seed"


def test_a_policy_change_is_audited_and_takes_effect(private_client: TestClient) -> None:
    c = private_client
    scores = _db(c).read("scores")
    a = scores[(scores["entity_type"] == "person") & (scores["grade"] == "A")]
    r = c.put(
        "/v1/policies/credit_treatments", json=_new_version("2026.2", "2026-02-01"), headers=headers("model_owner")
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed_by"].startswith("model_owner:")
    audit = [row for row in _db(c).audit_rows() if row["action"] == "policy_change"]
    assert len(audit) == 1 and json.loads(audit[0]["detail"])["version"] == "2026.2"
    assert json.loads(audit[0]["detail"])["previous_version"] == "2026.1"
    if len(a):
        body = c.get(f"/v1/credit/person/{a.iloc[0].entity_id}", headers=headers("approval_system")).json()
        assert body["policy"]["version"] == "2026.2"
        assert body["treatments"]["startup_loan"] == {"cap_yuan": 500000.0, "term_months": 36}
    listed = c.get("/v1/policies", headers=headers("admin")).json()
    assert [v["version"] for v in listed[0]["versions"]] == ["2026.1", "2026.2"]
    assert _db(c).audit_verify().ok


def test_a_future_version_waits_for_its_effective_date(private_client: TestClient) -> None:
    c = private_client
    r = c.put("/v1/policies/credit_treatments", json=_new_version("2099.1", "2099-01-01"), headers=headers("admin"))
    assert r.status_code == 200
    body = c.get("/v1/policies", headers=headers("admin")).json()[0]
    assert body["in_force"]["version"] == "2026.1"


def test_policy_changes_are_refused_to_other_roles_and_when_invalid(private_client: TestClient) -> None:
    c = private_client
    for role in ("approval_system", "inspector", "investigator"):
        r = c.put("/v1/policies/credit_treatments", json=_new_version("2026.3", "2026-03-01"), headers=headers(role))
        assert r.status_code == 403
    bad = _new_version("2026.3", "2026-03-01")
    bad["policy"]["grades"]["B"]["online_scope"] = "everything"
    r = c.put("/v1/policies/credit_treatments", json=bad, headers=headers("admin"))
    assert r.status_code == 422 and "grades.B.online_scope" in r.text
    again = c.put("/v1/policies/credit_treatments", json=_new_version("2026.1", "2026-03-01"), headers=headers("admin"))
    assert again.status_code == 409
    assert not [row for row in _db(c).audit_rows() if row["action"] == "policy_change"]


def test_a_version_added_by_another_process_is_picked_up(private_client: TestClient) -> None:
    from composer.supervision import audit_row, policy_row
    from riskgraph.results_schema import policies_table
    from rules.policy import seed_policies

    state = private_client.app.state.riskgraph
    newer = seed_policies()[0].model_copy(update={"version": "2026.5"})
    other = ResultsDB(state.db.url, home=state.settings.home, secret_key_file=state.settings.secret_key_file)
    other.write_with_audit(
        policies_table,
        [policy_row(newer, changed_by="admin:cli")],
        [audit_row(actor="admin:cli", role="admin", action="policy_change", detail={"version": "2026.5"})],
    )
    assert state.reload_if_changed() is False  # same served run: only the policies are re-read
    scores = _db(private_client).read("scores")
    row = scores[scores["entity_type"] == "person"].iloc[0]
    body = private_client.get(f"/v1/credit/person/{row.entity_id}", headers=headers("approval_system")).json()
    assert body["policy"]["version"] == "2026.5"


def test_a_decision_replays_with_the_treatments_it_was_served_under(private_client: TestClient) -> None:
    """A policy change after the answer does not change its replay (the record names the version)."""
    from api.replay import Replayer

    c = private_client
    scores = _db(c).read("scores")
    person = scores[scores["entity_type"] == "person"].iloc[0].entity_id
    served = c.get(f"/v1/credit/person/{person}", headers=headers("approval_system"))
    assert served.status_code == 200 and served.json()["policy"]["version"] == "2026.1"
    r = c.put(
        "/v1/policies/credit_treatments", json=_new_version("2026.3", "2026-03-01"), headers=headers("model_owner")
    )
    assert r.status_code == 200, r.text
    assert c.get(f"/v1/credit/person/{person}", headers=headers("approval_system")).json()["policy"]["version"] == (
        "2026.3"
    )
    replayed = Replayer(c.app.state.riskgraph.settings, _db(c)).replay(served.json()["decision_id"])
    body = json.loads(replayed)
    assert body.pop("replayed_at")
    assert replayed.startswith(served.content[:-1]) and body["policy"]["version"] == "2026.1"


def test_a_duplicate_person_records_decision_names_its_input_row_and_replays(private_client: TestClient) -> None:
    """A person record resolved into another's golden person is scored on the golden row: its
    decision record names that row's hash, and the replay checks it."""
    from api.replay import Replayer

    c = private_client
    scores = _db(c).read("scores")
    dup = scores[(scores["entity_type"] == "person") & scores["golden_id"].notna()]
    dup = dup[dup["golden_id"] != dup["entity_id"]].iloc[0]
    served = c.get(f"/v1/credit/person/{dup.entity_id}", headers=headers("approval_system"))
    golden = c.get(f"/v1/credit/person/{dup.golden_id}", headers=headers("approval_system"))
    audit = {r["decision_id"]: json.loads(r["detail"]) for r in _db(c).audit_rows() if r["action"] == "credit"}
    mine, theirs = audit[served.json()["decision_id"]], audit[golden.json()["decision_id"]]
    assert mine["input_row"] is not None and mine["input_row"] == theirs["input_row"]
    replayed = Replayer(c.app.state.riskgraph.settings, _db(c)).replay(served.json()["decision_id"])
    assert replayed.startswith(served.content[:-1])
