"""Monitoring end to end: a drifted input makes monitoring.json, the report, the API, an alert
row in the audit log and the drift metric say so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from composer.pipeline import run_pipeline
from riskgraph.results import ResultsDB
from synth.generator import generate
from tests.api.support import headers, make_settings


@pytest.mark.slow
def test_drifted_input_raises_alerts(tmp_path: Path) -> None:
    generate(persons=500, seed=11, out=tmp_path / "data", progress=False)
    settings = make_settings(tmp_path / "home")
    first = run_pipeline(data=tmp_path / "data", out=tmp_path / "out", settings=settings)
    first_monitoring = json.loads((tmp_path / "out" / "monitoring.json").read_text())
    assert first_monitoring["previous_run_id"] is None and first_monitoring["alerts"] == []
    person = first_monitoring["types"]["person"]
    assert person["score_psi"] == {"previous": None, "reference": 0.0}

    shutil.copytree(tmp_path / "data", tmp_path / "drifted")
    contributions = pd.read_csv(tmp_path / "drifted" / "contributions.csv")
    contributions["paid"] = contributions["paid"] * 3
    contributions.to_csv(tmp_path / "drifted" / "contributions.csv", index=False)
    second = run_pipeline(data=tmp_path / "drifted", out=tmp_path / "out", settings=settings)

    monitoring = json.loads((tmp_path / "out" / "monitoring.json").read_text())
    assert monitoring["previous_run_id"] == first.run_id and monitoring["run_id"] == second.run_id
    person = monitoring["types"]["person"]
    paid = next(f for f in person["features"] if f["feature"] == "contribution_paid")
    assert paid["psi_previous"] >= 0.25 and paid["band"] == "alert"
    assert person["features"][0]["psi_previous"] >= paid["psi_previous"]  # most drifted first
    records = len(pd.read_csv(tmp_path / "data" / "persons.csv"))  # every person record, duplicates included
    assert sum(sum(r.values()) for r in person["grade_migration"].values()) == records
    assert {"column": "contribution_paid", "against": "previous", "entity_type": "person"}.items() <= next(
        a for a in monitoring["alerts"] if a["column"] == "contribution_paid"
    ).items()
    assert "Monitoring: drift and stability" in (tmp_path / "out" / "report.html").read_text()

    audit = ResultsDB.of(settings).query("SELECT * FROM audit WHERE action = 'drift_alert'")
    assert list(audit["run_id"]) == [second.run_id] * len(audit) and "person" in set(audit["entity_type"])
    assert "contribution_paid" in audit[audit["entity_type"] == "person"]["detail"].iloc[0]

    version = second.manifest["models"]["person"]["version"]
    with TestClient(create_app(settings)) as client:
        r = client.get(f"/v1/models/{version}/monitoring", headers=headers("model_owner"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["run_id"] == second.run_id and body["entity_type"] == "person"
        assert any(a["column"] == "contribution_paid" for a in body["alerts"])
        assert client.get(f"/v1/models/{version}/monitoring", headers=headers("inspector")).status_code == 403
        assert client.get("/v1/models/person-nope/monitoring", headers=headers("model_owner")).status_code == 404
        metrics = client.get("/metrics").text
        line = next(
            x
            for x in metrics.splitlines()
            if x.startswith('riskgraph_drift_alerts{against="previous",entity_type="person"}')
        )
        assert float(line.split()[-1]) >= 1
