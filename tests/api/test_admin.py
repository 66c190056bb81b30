"""Model owners: models, promotion, jobs (API, CLI, scheduler), rules, audit."""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.jobs import JOBS, JobRunner, build_scheduler
from cli.jobs import jobs as jobs_cli
from riskgraph.results import ResultsDB
from tests.api.support import headers, make_settings

H = headers("model_owner")


def _wait(client: TestClient, run_id: int, timeout: float = 180) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        runs = client.get("/v1/jobs/runs", params={"limit": 50}, headers=H).json()
        run = next(r for r in runs if r["run_id"] == run_id)
        if run["status"] != "running":
            return run
        time.sleep(0.5)
    raise AssertionError("job did not finish")


def test_models_list_show_metrics(client: TestClient) -> None:
    models = client.get("/v1/models", headers=H).json()
    person = next(m for m in models if m["entity_type"] == "person" and m["champion"])
    assert person["kind"] == "supervised" and person["label_counts"]["fraud"] > 0
    if min(person["label_counts"].values()) < 30:  # too few labels: withheld (tests/api/test_model_metrics.py)
        assert person["metrics"] is None and person["metrics_withheld"]
    else:
        assert "roc_auc" in person["metrics"]
    assert all(
        m["entity_type"] == "clinic"
        for m in client.get("/v1/models", params={"entity_type": "clinic"}, headers=H).json()
    )
    detail = client.get(f"/v1/models/{person['version']}", headers=H).json()
    assert len(detail["features"]) == detail["n_features"] and detail["params"]
    metrics = client.get(f"/v1/models/{person['version']}/metrics", headers=H).json()
    assert metrics["metrics_withheld"] == person["metrics_withheld"]
    if person["metrics"] is not None:
        assert metrics["metrics"]["roc_auc"] == person["metrics"]["roc_auc"]
    assert client.get("/v1/models/nope", headers=H).status_code == 404
    assert client.get("/v1/models/nope/metrics", headers=H).status_code == 404
    assert client.post("/v1/models/nope/promote", headers=H).status_code == 404


def test_retrain_makes_a_candidate_and_promotion_is_explicit(private_client: TestClient) -> None:
    c = private_client
    before = {m["version"]: m for m in c.get("/v1/models", params={"entity_type": "person"}, headers=H).json()}
    champion = next(v for v, m in before.items() if m["champion"])
    r = c.post("/v1/models/retrain", headers=H)
    assert r.status_code == 202
    run = r.json()
    assert c.post("/v1/jobs/weekly-retrain/run", headers=H).status_code in (409, 202)
    done = _wait(c, run["run_id"])
    assert done["status"] == "succeeded", done["message"]
    c.app.state.riskgraph.runner.join(60)
    after = c.get("/v1/models", params={"entity_type": "person"}, headers=H).json()
    new = [m for m in after if m["version"] not in before]
    assert new and not any(m["champion"] for m in new)
    assert next(m["version"] for m in after if m["champion"]) == champion
    # the promotion gate: too few out-of-time labels here, so only a stated reason gets it through
    refused = c.post(f"/v1/models/{new[0]['version']}/promote", headers=H)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "promotion_refused"
    assert "30 per class" in refused.json()["error"]["message"] or "out-of-time" in refused.json()["error"]["message"]
    promoted = c.post(
        f"/v1/models/{new[0]['version']}/promote", params={"force_reason": "reviewed by the model board"}, headers=H
    ).json()
    assert promoted["champion"]
    audit = c.get("/v1/audit", params={"action": "promote"}, headers=H).json()["items"]
    assert audit[0]["model_version"] == new[0]["version"]
    assert json.loads(audit[0]["detail"])["forced"] == "reviewed by the model board"


def test_jobs_listed_with_schedules(client: TestClient) -> None:
    jobs = client.get("/v1/jobs", headers=H).json()
    assert [j["id"] for j in jobs] == list(JOBS)
    assert all(j["schedule"] and j["next_run_at"] for j in jobs)
    one = client.get("/v1/jobs/ring-refresh", headers=H).json()
    assert one["id"] == "ring-refresh" and isinstance(one["history"], list)
    assert client.get("/v1/jobs/nope", headers=H).status_code == 404
    assert client.post("/v1/jobs/nope/run", headers=H).status_code == 404
    assert client.get("/v1/jobs/runs", params={"status": "weird"}, headers=H).status_code == 422


def test_ring_refresh_and_no_overlap(private_client: TestClient) -> None:
    c = private_client
    runner: JobRunner = c.app.state.riskgraph.runner
    gate = threading.Event()
    real = JOBS["ring-refresh"].run
    object.__setattr__(JOBS["ring-refresh"], "run", lambda s: (gate.wait(30), real(s))[1])
    try:
        r = c.post("/v1/jobs/ring-refresh/run", headers=H)
        assert r.status_code == 202
        again = c.post("/v1/jobs/ring-refresh/run", headers=H)
        assert again.status_code == 409 and again.json()["error"]["code"] == "job_running"
        assert c.get("/v1/jobs/ring-refresh", headers=H).json()["running"]
        gate.set()
        assert _wait(c, r.json()["run_id"])["status"] == "succeeded"
    finally:
        object.__setattr__(JOBS["ring-refresh"], "run", real)
        gate.set()
        runner.join(60)


def test_cli_list_and_rescore_then_api_reloads(private_client: TestClient, home_copy) -> None:
    settings = make_settings(home_copy)
    cli = CliRunner()
    out = cli.invoke(jobs_cli, ["list"], obj=settings)
    assert out.exit_code == 0 and all(j in out.output for j in JOBS)
    before = ResultsDB(settings.results_database_url).read("models")
    out = cli.invoke(jobs_cli, ["run", "nightly-rescore"], obj=settings)
    assert out.exit_code == 0, out.output
    assert "succeeded" in out.output
    after = ResultsDB(settings.results_database_url).read("models")
    assert len(after) == len(before), "re-scoring registers no new versions"
    scores = ResultsDB(settings.results_database_url).read("scores")
    champions = set(after.loc[after["champion"], "version"])
    assert set(scores["model_version"]) <= champions
    state = private_client.app.state.riskgraph
    assert state.reload_if_changed()
    assert cli.invoke(jobs_cli, ["run", "nope"], obj=settings).exit_code != 0


def test_scheduler_registers_jobs_with_ids_in_persisted_store(home_copy) -> None:
    settings = make_settings(home_copy, api_scheduler=True)
    db = ResultsDB(settings.results_database_url)
    sched = build_scheduler(settings, JobRunner(settings, db))
    sched.start(paused=True)
    try:
        jobs = {j.id: j for j in sched.get_jobs()}
        assert set(jobs) == set(JOBS)
        assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
    finally:
        sched.shutdown(wait=False)
    assert set(db.query("SELECT id FROM scheduler_jobs")["id"]) == set(JOBS)


def test_app_with_scheduler_shows_next_runs(home_copy) -> None:
    from api.app import create_app

    with TestClient(create_app(make_settings(home_copy, api_scheduler=True))) as c:
        jobs = c.get("/v1/jobs", headers=H).json()
        assert all(j["next_run_at"] for j in jobs)


def test_rules_listed_with_versions(client: TestClient) -> None:
    rules = client.get("/v1/rules", headers=headers("inspector")).json()
    assert rules and all(r["version"] and r["rule_id"] for r in rules)
    persons = client.get("/v1/rules", params={"entity_type": "person"}, headers=H).json()
    assert persons and all(r["entity_type"] == "person" for r in persons)


def test_audit_filters_and_cursor(client: TestClient) -> None:
    for i in range(1, 6):
        client.get(f"/v1/credit/person/P000000{i}", headers=headers("approval_system"))
    page = client.get("/v1/audit", params={"limit": 2, "action": "credit"}, headers=H).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    nxt = client.get(
        "/v1/audit", params={"limit": 2, "action": "credit", "cursor": page["next_cursor"]}, headers=H
    ).json()
    assert nxt["items"][0]["id"] < page["items"][-1]["id"]
    assert client.get("/v1/audit", params={"since": "2000-01-01T00:00:00"}, headers=H).json()["items"]
    assert client.get("/v1/audit", params={"since": "yesterday"}, headers=H).status_code == 422
    assert client.get("/v1/audit", params={"cursor": "???"}, headers=H).status_code == 422


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_operations(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    if path == "/metrics":
        assert "riskgraph_http_requests_total" in r.text and "riskgraph_scores_loaded" in r.text
    if path == "/readyz":
        assert r.json()["checks"]["store"] is True


def test_not_ready_without_scores(tmp_path) -> None:
    from api.app import create_app

    with TestClient(create_app(make_settings(tmp_path / "empty"))) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "not_ready"
        r = c.get("/v1/credit/person/P1", headers=headers("approval_system"))
        assert r.status_code == 503 and r.json()["error"]["code"] == "no_results"
        assert c.get("/healthz").status_code == 200
