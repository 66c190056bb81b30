"""Prometheus metrics, one registry per app (so several apps can live in one process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "riskgraph_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "riskgraph_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.credit_decisions = Counter(
            "riskgraph_credit_decisions", "credit grades served", ["grade"], registry=self.registry
        )
        self.credit_by_grade = {g: self.credit_decisions.labels(g) for g in "ABCD"}  # hot path: no labels() call
        self.scores_loaded = Gauge("riskgraph_scores_loaded", "entities with a served score", registry=self.registry)
        self.audit_pending = Gauge(
            "riskgraph_audit_pending_rows", "audit rows waiting to be written", registry=self.registry
        )
        self.audit_written = Gauge(
            "riskgraph_audit_written_rows", "audit rows written since start", registry=self.registry
        )
        self.drift_alerts = Gauge(
            "riskgraph_drift_alerts",
            "columns (score or feature) of the served run with a PSI of 0.25 or more",
            ["entity_type", "against"],
            registry=self.registry,
        )
        self.score_psi = Gauge(
            "riskgraph_score_psi", "PSI of the served run's score", ["entity_type", "against"], registry=self.registry
        )

    def set_drift(self, monitoring: dict[str, Any] | None) -> None:
        """The served run's drift (composer/monitoring.py): alerts and score PSI per type."""
        self.drift_alerts.clear()
        self.score_psi.clear()
        monitoring = monitoring or {}
        alerts: list[dict[str, Any]] = monitoring.get("alerts") or []
        for t, m in (monitoring.get("types") or {}).items():
            for against in ("previous", "reference"):
                value = m["score_psi"].get(against)
                if value is not None:
                    self.score_psi.labels(t, against).set(value)
                crossed = [a for a in alerts if a["entity_type"] == t and a["against"] == against]
                self.drift_alerts.labels(t, against).set(len(crossed))
