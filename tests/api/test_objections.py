"""Objection -> correction -> re-grade through /v1/objections: the inspector objects on the
person's behalf to a rule hit, the investigator corrects the data (amendments addressed by the
natural key of a keyless table), the person is re-graded; before and after are kept and audited."""

from __future__ import annotations

from fastapi.testclient import TestClient

from composer.objections import corrections_of, has_completed_correction
from riskgraph.results import ResultsDB
from tests.api.support import headers

INSPECTOR, INVESTIGATOR = headers("inspector"), headers("investigator")
RULE = "ben_unemployment_while_contributing"  # unemployment benefit in a month an employer paid in


def _db(client: TestClient) -> ResultsDB:
    return client.app.state.riskgraph.db  # type: ignore[attr-defined,no-any-return]


def _hit(client: TestClient) -> tuple[str, list[dict]]:
    hits = _db(client).read("rule_hits")
    person = str(hits.loc[hits["rule_id"] == RULE, "entity_id"].iloc[0])
    detail = client.get(f"/v1/entities/person/{person}", headers=INVESTIGATOR).json()
    evidence = next(h["evidence"] for h in detail["rule_hits"] if h["rule_id"] == RULE)
    return person, evidence["records"]


def test_objection_correction_regrade(private_client: TestClient) -> None:
    c = private_client
    person, records = _hit(c)
    disputed = [
        {"table": "contributions", "key": {"employer_id": r["employer_id"], "person_id": person, "month": r["month"]}}
        for r in records
    ]
    body = {
        "entity_type": "person",
        "entity_id": person,
        "against": "rule_hit",
        "rule_id": RULE,
        "records": disputed,
        "statement": "the employer filed contributions for the wrong person in those months",
    }
    bad = c.post(
        "/v1/objections",
        json=body | {"records": [{"table": "contributions", "key": {"month": "2025-08"}}]},
        headers=INSPECTOR,
    )
    assert bad.status_code == 422 and "employer_id, person_id, month" in bad.json()["error"]["message"]
    r = c.post("/v1/objections", json=body, headers=INSPECTOR)
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["status"] == "open" and RULE in o["before"]["rule_hits"]
    oid = o["objection_id"]
    assert not has_completed_correction(_db(c), "person", person, rule_id=RULE)

    amendments = [{"table": d["table"], "key": d["key"], "action": "delete"} for d in disputed]
    assert (
        c.post(
            f"/v1/objections/{oid}/correct", json={"amendments": amendments, "note": "x"}, headers=INSPECTOR
        ).status_code
        == 403
    )
    r = c.post(
        f"/v1/objections/{oid}/correct",
        json={"amendments": amendments, "note": "the payroll office confirmed the mix-up"},
        headers=INVESTIGATOR,
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "corrected" and done["decided_by"].startswith("investigator:")
    assert len(done["amendments"]) == len(disputed)
    assert RULE not in done["after"]["rule_hits"]
    assert done["after"]["run_id"] == done["regrade_run_id"] == _db(c).served_run_id()
    assert done["before"]["run_id"] != done["after"]["run_id"]

    # the served answer is the re-graded one; the credit answer no longer names the rule
    credit = c.get(f"/v1/credit/person/{person}", headers=headers("approval_system")).json()
    assert credit["grade"] == done["after"]["grade"]
    assert RULE not in credit["rule_hits"]

    # audited (objection recorded, corrected, re-graded with before and after), chain intact
    audit = _db(c).query("SELECT action, grade, detail FROM audit WHERE action LIKE 'objection_%' ORDER BY id")
    assert audit["action"].tolist() == ["objection_recorded", "objection_corrected", "objection_regraded"]
    assert '"before"' in audit["detail"].iloc[2] and audit["grade"].iloc[2] == done["after"]["grade"]
    assert _db(c).audit_verify().ok

    # the interface the listings use
    assert has_completed_correction(_db(c), "person", person, rule_id=RULE)
    assert has_completed_correction(_db(c), "person", person)
    assert not has_completed_correction(_db(c), "person", person, rule_id="med_split_admission")
    assert corrections_of(_db(c), "person", person)[0]["after"]["grade"] == done["after"]["grade"]
    # and the credit-policy input of early removal from a list reads the same correction
    listed = _db(c).credit_corrections()
    assert listed[["entity_type", "entity_id", "source"]].values.tolist() == [["person", person, f"objection:{oid}"]]
    again = c.post(f"/v1/objections/{oid}/reject", json={"note": "late"}, headers=INVESTIGATOR)
    assert again.status_code == 409


def test_rejected_objection_changes_nothing(private_client: TestClient) -> None:
    c = private_client
    person, _ = _hit(c)
    served = _db(c).served_run_id()
    o = c.post(
        "/v1/objections",
        json={"entity_type": "person", "entity_id": person, "against": "grade", "statement": "my grade is wrong"},
        headers=INSPECTOR,
    ).json()
    r = c.post(
        f"/v1/objections/{o['objection_id']}/reject", json={"note": "the records are right"}, headers=INVESTIGATOR
    )
    assert r.json()["status"] == "rejected" and r.json()["after"] is None
    assert _db(c).served_run_id() == served
    assert not has_completed_correction(_db(c), "person", person)
    listed = c.get("/v1/objections", params={"entity_id": person}, headers=INSPECTOR).json()
    assert [x["status"] for x in listed] == ["rejected"]
    no_hit = c.post(
        "/v1/objections",
        json={"entity_type": "person", "entity_id": person, "against": "rule_hit", "rule_id": "nope", "statement": "s"},
        headers=INSPECTOR,
    )
    assert no_hit.status_code == 422
