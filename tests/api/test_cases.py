"""The case lifecycle through /v1/cases: open from an alert, assign, work, confirm with a second
person's approval, comments and history, filters, bulk assignment, roles, audit, dispositions."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from riskgraph.results import ResultsDB
from tests.api.support import headers

INSPECTOR, INVESTIGATOR, OWNER = headers("inspector"), headers("investigator"), headers("model_owner")


def _db(client: TestClient) -> ResultsDB:
    return client.app.state.riskgraph.db  # type: ignore[attr-defined,no-any-return]


def _alerts(client: TestClient) -> pd.DataFrame:
    db = _db(client)
    run_id = db.served_run_id()
    assert run_id is not None
    return db.read_run_table(run_id, "alerts")


def _actor(client: TestClient, h: dict[str, str]) -> str:
    case = client.post("/v1/cases", json={"entity_type": "ring", "entity_id": "probe"}, headers=h)
    return str(case.json()["created_by"])


@pytest.fixture
def entity_alert(private_client: TestClient) -> dict:
    alerts = _alerts(private_client)
    person = alerts[(alerts["subject_type"] == "person") & alerts["raised"].astype(bool)]
    assert len(person), "the scored sample raises person alerts"
    return person.iloc[0].to_dict()


def test_case_lifecycle_with_four_eyes(private_client: TestClient, entity_alert: dict) -> None:
    c = private_client
    r = c.post("/v1/cases", json={"alert_id": entity_alert["alert_id"], "note": "from the list"}, headers=INSPECTOR)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["status"] == "new" and case["existing"] is False
    assert (case["subject_type"], case["subject_id"], case["typology"]) == (
        entity_alert["subject_type"],
        entity_alert["subject_id"],
        entity_alert["typology"],
    )
    again = c.post("/v1/cases", json={"alert_id": entity_alert["alert_id"]}, headers=INVESTIGATOR).json()
    assert again["case_id"] == case["case_id"] and again["existing"] is True
    cid = case["case_id"]

    r = c.post(f"/v1/cases/{cid}/assign", json={"assignee": "me", "due_date": "2026-12-31"}, headers=INSPECTOR)
    assert r.status_code == 200 and r.json()["due_date"] == "2026-12-31"
    me = r.json()["assignee"]
    assert me.startswith("inspector:")
    mine = c.get("/v1/cases", params={"open": True, "mine": True}, headers=INSPECTOR).json()
    assert [x["case_id"] for x in mine["cases"]] == [cid]
    assert c.get("/v1/cases", params={"open": True, "mine": True}, headers=INVESTIGATOR).json()["total"] == 0
    assert c.get("/v1/cases", params={"typology": case["typology"]}, headers=INSPECTOR).json()["total"] == 1
    assert c.get("/v1/cases", params={"typology": "nope"}, headers=INSPECTOR).json()["total"] == 0
    if case["region"]:
        assert c.get("/v1/cases", params={"region": case["region"]}, headers=INSPECTOR).json()["total"] == 1

    v = r.json()["version"]
    assert (
        c.post(f"/v1/cases/{cid}/status", json={"status": "confirmed", "note": "x"}, headers=INSPECTOR).status_code
        == 409
    )
    r = c.post(f"/v1/cases/{cid}/status", json={"status": "in_progress", "version": v}, headers=INSPECTOR)
    assert r.json()["status"] == "in_progress"
    stale = c.post(
        f"/v1/cases/{cid}/status", json={"status": "dismissed", "note": "n", "version": v}, headers=INSPECTOR
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "case_conflict"
    no_note = c.post(f"/v1/cases/{cid}/status", json={"status": "confirmed"}, headers=INSPECTOR)
    assert no_note.status_code == 422 and no_note.json()["error"]["code"] == "case_invalid"
    r = c.post(f"/v1/cases/{cid}/status", json={"status": "confirmed", "note": "records match"}, headers=INSPECTOR)
    assert r.json()["status"] == "awaiting_approval" and r.json()["proposed_by"] == me
    own = c.post(f"/v1/cases/{cid}/approval", json={"approve": True}, headers=INSPECTOR)
    assert own.status_code == 409 and "four eyes" in own.json()["error"]["message"]
    refused = c.post(
        f"/v1/cases/{cid}/approval", json={"approve": False, "note": "check the pharmacy"}, headers=INVESTIGATOR
    )
    assert refused.json()["status"] == "in_progress"
    c.post(f"/v1/cases/{cid}/status", json={"status": "confirmed", "note": "pharmacy checked"}, headers=INSPECTOR)
    r = c.post(f"/v1/cases/{cid}/approval", json={"approve": True, "note": "agreed"}, headers=INVESTIGATOR)
    done = r.json()
    assert done["status"] == "confirmed" and done["disposition"] == "confirmed"
    assert done["decided_by"].startswith("investigator:")
    assert done["as_of"] == datetime.now(UTC).date().isoformat()
    assert c.post(f"/v1/cases/{cid}/assign", json={"assignee": None}, headers=INSPECTOR).status_code == 409
    assert c.post(f"/v1/cases/{cid}/comments", json={"text": "closing note"}, headers=INVESTIGATOR).status_code == 200

    detail = c.get(f"/v1/cases/{cid}", headers=INVESTIGATOR).json()
    kinds = [e["kind"] for e in detail["history"]]
    assert kinds == [
        "created",
        "assigned",
        "status",
        "confirmation_requested",
        "approval_refused",
        "confirmation_requested",
        "approved",
        "comment",
    ]
    assert detail["alert"]["alert_id"] == entity_alert["alert_id"]
    assert detail["history"][0]["note"] == "from the list"

    # every change audited, in the hash chain; notes stay out of the audit
    audit = _db(c).query(
        "SELECT action, detail FROM audit WHERE action LIKE 'case_%' AND action NOT IN ('case_view', 'case_list')"
    )
    assert audit["action"].value_counts().to_dict() == {
        "case_created": 1,
        "case_assigned": 1,
        "case_status": 1,
        "case_confirmation_requested": 2,
        "case_approval_refused": 1,
        "case_approved": 1,
        "case_comment": 1,
    }
    assert not audit["detail"].str.contains("pharmacy").any()
    reads = _db(c).query("SELECT action, detail FROM audit WHERE action IN ('case_view', 'case_list')")
    assert (reads["action"] == "case_view").sum() == 1 and cid in reads["detail"].iloc[-1]
    assert _db(c).audit_verify().ok

    # the disposition is a label with provenance; model owners read it, but work no case
    labels = c.get("/v1/cases/dispositions", headers=OWNER).json()
    mine_label = [x for x in labels if x["case_id"] == cid]
    assert mine_label and mine_label[0]["label"] == 1 and mine_label[0]["entity_id"] == entity_alert["subject_id"]
    assert mine_label[0]["as_of"] == done["as_of"] and mine_label[0]["decided_by"] == done["decided_by"]
    assert c.get("/v1/cases", headers=OWNER).status_code == 403
    assert c.post("/v1/cases", json={"alert_id": entity_alert["alert_id"]}, headers=OWNER).status_code == 403
    assert c.get("/v1/cases", headers=headers("approval_system")).status_code == 403
    assert c.get("/v1/cases", headers=headers(None)).status_code == 401


def test_bulk_assignment_is_all_or_nothing(private_client: TestClient) -> None:
    c = private_client
    alerts = _alerts(c)
    subjects = alerts[alerts["subject_type"] == "person"].drop_duplicates("subject_id").head(3)
    ids = [
        c.post("/v1/cases", json={"entity_type": "person", "entity_id": s}, headers=INSPECTOR).json()["case_id"]
        for s in subjects["subject_id"]
    ]
    r = c.post("/v1/cases/assign", json={"case_ids": ids[:2], "assignee": "investigator:x"}, headers=INSPECTOR)
    assert r.status_code == 200 and {x["assignee"] for x in r.json()} == {"investigator:x"}
    assert c.get("/v1/cases", params={"assignee": "investigator:x"}, headers=INSPECTOR).json()["total"] == 2
    dismissed = c.post(f"/v1/cases/{ids[2]}/status", json={"status": "dismissed", "note": "clean"}, headers=INSPECTOR)
    assert dismissed.json()["status"] == "dismissed"
    r = c.post("/v1/cases/assign", json={"case_ids": ids, "assignee": "inspector:y"}, headers=INSPECTOR)
    assert r.status_code == 409
    assert c.get("/v1/cases", params={"assignee": "inspector:y"}, headers=INSPECTOR).json()["total"] == 0
    assert (
        c.post("/v1/cases/assign", json={"case_ids": ["CASE-none"], "assignee": None}, headers=INSPECTOR).status_code
        == 404
    )
    labels = {x["entity_id"]: x["label"] for x in c.get("/v1/cases/dispositions", headers=OWNER).json()}
    assert labels[subjects["subject_id"].iloc[2]] == 0


def test_create_needs_a_known_subject(private_client: TestClient) -> None:
    c = private_client
    assert c.post("/v1/cases", json={"alert_id": "AL-nope"}, headers=INSPECTOR).status_code == 404
    assert (
        c.post("/v1/cases", json={"entity_type": "person", "entity_id": "nobody"}, headers=INSPECTOR).status_code == 404
    )
    assert c.post("/v1/cases", json={}, headers=INSPECTOR).status_code == 422


def test_dispositions_are_the_next_training_run_s_labels(private_client: TestClient, home_copy) -> None:
    """Label hand-over: a confirmed case labels its entity in the next run (with provenance), a
    dismissed case overrides an older labels.csv label, and that conflict is listed."""
    from composer.pipeline import run_pipeline
    from tests.api.support import make_settings

    c = private_client
    db = _db(c)
    served = db.served_run_id()
    assert served is not None
    file_labels = db.read_run_table(served, "labels")
    positives = file_labels[(file_labels["entity_type"] == "person") & (file_labels["label"] == 1)]
    labelled = set(file_labels.loc[file_labels["entity_type"] == "person", "entity_id"])
    scores = db.read_run_table(served, "scores")
    fresh = next(i for i in scores.loc[scores["entity_type"] == "person", "entity_id"] if i not in labelled)
    overridden = str(positives["entity_id"].iloc[0])

    confirm = c.post("/v1/cases", json={"entity_type": "person", "entity_id": fresh}, headers=INSPECTOR).json()
    c.post(f"/v1/cases/{confirm['case_id']}/status", json={"status": "in_progress"}, headers=INSPECTOR)
    c.post(f"/v1/cases/{confirm['case_id']}/status", json={"status": "confirmed", "note": "proven"}, headers=INSPECTOR)
    c.post(f"/v1/cases/{confirm['case_id']}/approval", json={"approve": True}, headers=INVESTIGATOR)
    dismiss = c.post("/v1/cases", json={"entity_type": "person", "entity_id": overridden}, headers=INSPECTOR).json()
    c.post(
        f"/v1/cases/{dismiss['case_id']}/status", json={"status": "dismissed", "note": "re-checked"}, headers=INSPECTOR
    )

    run = run_pipeline(data=None, out=None, settings=make_settings(home_copy))
    labels = db.read_run_table(run.run_id, "labels").set_index("entity_id")
    assert labels.loc[fresh, "label"] == 1 and labels.loc[fresh, "source"] == "case"
    assert labels.loc[fresh, "case_id"] == confirm["case_id"]
    assert labels.loc[fresh, "decided_by"].startswith("investigator:")
    assert labels.loc[overridden, "label"] == 0 and labels.loc[overridden, "source"] == "case"
    assert run.manifest["labels"]["from_cases"] == 2
    assert [x["entity_id"] for x in run.manifest["labels"]["conflicts"]] == [overridden]
    c.app.state.riskgraph.load_results()  # type: ignore[attr-defined]
    conflicts = c.get("/v1/cases/label-conflicts", headers=OWNER).json()
    assert conflicts == [
        {
            "entity_type": "person",
            "entity_id": overridden,
            "file_label": 1,
            "file_as_of": str(positives["as_of"].iloc[0])[:10],
            "case_label": 0,
            "case_as_of": dismiss["created_at"][:10],
            "case_id": dismiss["case_id"],
            "kept": "case",
        }
    ]


def test_alerts_list_what_cases_are_opened_from(client: TestClient) -> None:
    page = client.get("/v1/alerts", params={"raised": True, "limit": 5}, headers=INSPECTOR).json()
    assert page["total"] > 0 and len(page["alerts"]) == min(5, page["total"])
    first = page["alerts"][0]
    assert first["event"] == "new" and first["raised"] is True  # the first run: everything is new
    assert isinstance(first["new_members"], list) and first["first_seen"] <= first["last_seen"]
    rings = client.get("/v1/alerts", params={"subject_type": "ring"}, headers=INSPECTOR).json()
    assert all(a["subject_type"] == "ring" and a["n_members"] >= 2 for a in rings["alerts"])
    assert client.get("/v1/alerts", headers=OWNER).status_code == 403


def test_an_alert_shows_its_subject_s_latest_case(private_client: TestClient, entity_alert: dict) -> None:
    c = private_client
    case = c.post("/v1/cases", json={"alert_id": entity_alert["alert_id"]}, headers=INSPECTOR).json()
    c.post(f"/v1/cases/{case['case_id']}/status", json={"status": "dismissed", "note": "fine"}, headers=INSPECTOR)
    page = c.get("/v1/alerts", params={"subject_id": entity_alert["subject_id"]}, headers=INSPECTOR).json()
    mine = next(a for a in page["alerts"] if a["alert_id"] == entity_alert["alert_id"])
    assert (mine["case_id"], mine["case_status"]) == (case["case_id"], "dismissed")


def test_a_region_scoped_key_works_only_its_region_s_cases(home_copy) -> None:
    """A region-scoped inspector key opens, lists and changes cases of its region only; others are
    not found (as if they did not exist)."""
    import time

    from api.app import create_app
    from riskgraph.api_keys import KeyStore, Pepper
    from tests.api.support import make_settings

    with TestClient(create_app(make_settings(home_copy, api_keys_refresh_s=0.05))) as c:
        frame = c.app.state.riskgraph.book.risk["person"]  # type: ignore[attr-defined]
        regions = frame["region"].dropna()
        mine = regions.value_counts().index[0]
        own = str(frame[frame["region"] == mine].iloc[0]["entity_id"])
        other = str(frame[frame["region"].notna() & (frame["region"] != mine)].iloc[0]["entity_id"])
        store = KeyStore(ResultsDB(make_settings(home_copy).results_database_url).engine, Pepper.of(home_copy))
        key, _ = store.create(role="inspector", institution="Inspectorate", region=mine)
        h = {"X-API-Key": key}
        end = time.monotonic() + 5
        while c.get("/v1/cases", headers=h).status_code != 200:
            assert time.monotonic() < end
            time.sleep(0.05)
        theirs = c.post("/v1/cases", json={"entity_type": "person", "entity_id": other}, headers=INSPECTOR).json()
        assert c.post("/v1/cases", json={"entity_type": "person", "entity_id": other}, headers=h).status_code == 404
        ours = c.post("/v1/cases", json={"entity_type": "person", "entity_id": own}, headers=h)
        assert ours.status_code == 201 and ours.json()["region"] == mine
        listed = c.get("/v1/cases", headers=h).json()
        assert [x["case_id"] for x in listed["cases"]] == [ours.json()["case_id"]]
        assert c.get(f"/v1/cases/{theirs['case_id']}", headers=h).status_code == 404
        r = c.post(f"/v1/cases/{theirs['case_id']}/comments", json={"text": "x"}, headers=h)
        assert r.status_code == 404
        bulk = c.post("/v1/cases/assign", json={"case_ids": [theirs["case_id"]], "assignee": None}, headers=h)
        assert bulk.status_code == 404
