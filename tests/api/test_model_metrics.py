"""Model metrics computed on fewer than 30 labels of a class are withheld, with the reason."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.support import headers

H = headers("model_owner")


def _register(client: TestClient, tag: str, metrics: dict[str, Any]) -> str:
    registry = client.app.state.riskgraph.registry
    rec = registry.register(
        entity_type="employer",
        kind="supervised",
        data_hash=f"test-{tag}",
        features=["f1", "f2"],
        params={"tag": tag},
        metrics=metrics,
        model=None,
    )
    return str(rec.version)


def _both(client: TestClient, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    listed = next(m for m in client.get("/v1/models", headers=H).json() if m["version"] == version)
    return listed, client.get(f"/v1/models/{version}/metrics", headers=H).json()


def test_every_model_with_few_labels_hides_its_metrics(client: TestClient) -> None:
    models = client.get("/v1/models", headers=H).json()
    assert models
    for m in models:
        counts = m["label_counts"]
        if counts is not None and min(counts.values()) < 30:
            assert m["metrics"] is None, m["version"]
            assert "at least 30 per class" in m["metrics_withheld"]
            few = counts["fraud"] if counts["fraud"] < 30 else counts["not_fraud"]
            assert f"only {few} " in m["metrics_withheld"]
            detail = client.get(f"/v1/models/{m['version']}/metrics", headers=H).json()
            assert detail["metrics"] is None and detail["metrics_withheld"] == m["metrics_withheld"]
            shown = client.get(f"/v1/models/{m['version']}", headers=H).json()
            assert shown["metrics"] is None and shown["metrics_withheld"] == m["metrics_withheld"]


def test_metrics_on_enough_labels_are_shown(private_client: TestClient) -> None:
    metrics = {"n": 100, "positives": 40, "roc_auc": 0.81, "pr_auc": 0.6, "brier": 0.1, "calibration": [{"bin": 0}]}
    version = _register(private_client, "enough", metrics)
    listed, detail = _both(private_client, version)
    assert listed["metrics_withheld"] is None and listed["metrics"]["roc_auc"] == 0.81
    assert "calibration" not in listed["metrics"]
    assert listed["label_counts"] == {"fraud": 40, "not_fraud": 60}
    assert detail["metrics"]["calibration"] == [{"bin": 0}] and detail["metrics_withheld"] is None


def test_few_labels_of_either_class_or_unknown_counts_withhold(private_client: TestClient) -> None:
    fraud = _register(private_client, "fraud", {"n": 200, "positives": 2, "roc_auc": 1.0})
    listed, detail = _both(private_client, fraud)
    assert listed["metrics"] is None and detail["metrics"] is None
    assert listed["metrics_withheld"] == (
        "metrics withheld: only 2 confirmed-fraud labels; at least 30 per class are needed"
    )
    clean = _register(private_client, "clean", {"n": 45, "positives": 40, "roc_auc": 0.9})
    listed, _ = _both(private_client, clean)
    assert listed["metrics"] is None and "only 5 not-fraud labels" in listed["metrics_withheld"]
    unknown = _register(private_client, "unknown", {"roc_auc": 0.9})
    listed, _ = _both(private_client, unknown)
    assert listed["metrics"] is None and "not recorded" in listed["metrics_withheld"]
    assert listed["label_counts"] is None
    nothing = _register(private_client, "nothing", {})
    listed, _ = _both(private_client, nothing)
    assert listed["metrics"] == {} and listed["metrics_withheld"] is None
