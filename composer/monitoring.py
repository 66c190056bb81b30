"""A run's drift monitoring (out/monitoring.json): the score's and every feature's PSI against
the previous served run and against the population each model was trained on, the grade
migration from the previous run, and rule hit-rate changes (scoring/monitoring.py computes).

Each run keeps its profile (bins and counts of its score and features, grades, rule hit rates)
in `runs/<run>/features/profile.json`; a newly fitted model keeps its type's part in the
registry (its training reference), so the reference outlives the run's retention.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from composer.runs import SCORES_PARQUET, run_dir
from riskgraph.results import ResultsDB, now_iso
from riskgraph.settings import Settings
from scoring.monitoring import (
    PSI_ALERT,
    PSI_WATCH,
    band,
    column_counts,
    column_profile,
    frame_profile,
    grade_migration,
    psi,
    rule_changes,
    rule_hit_rates,
)
from scoring.registry import ModelRegistry
from scoring.score import EntityScores

log = logging.getLogger("composer.monitoring")
PROFILE_JSON = "profile.json"  # runs/<run>/features/: the run's population profile
MONITORING_JSON = "monitoring.json"  # the output file, and a copy beside the profile
SCORE = "risk_score"


def run_profile(scored: dict[str, EntityScores], hits: pd.DataFrame) -> dict[str, Any]:
    """Per type: entities, the score's and each model-matrix column's bins and counts, grades;
    and each rule's hit rate."""
    types: dict[str, Any] = {}
    for t, m in scored.items():
        if m.kind == "empty" or len(m.table) == 0:
            continue
        types[t] = {
            "model_version": m.model_version,
            "entities": len(m.table),
            "score": column_profile(m.table[SCORE]),
            "features": frame_profile(m.matrix) if m.matrix is not None else {},
            "grades": {str(g): int(n) for g, n in m.table["grade"].value_counts().sort_index().items()},
        }
    entities = {t: int(p["entities"]) for t, p in types.items()}
    return {"types": types, "rules": rule_hit_rates(hits, entities)}


def _against(reference: dict[str, Any] | None, score: pd.Series, matrix: pd.DataFrame | None) -> dict[str, Any]:
    """PSI of the score and each feature against one reference type profile (None: n/a)."""
    if not reference:
        return {"score": None, "features": {}}
    out: dict[str, Any] = {"score": psi(reference["score"]["counts"], column_counts(reference["score"], score))}
    features = {}
    for name, profile in (reference.get("features") or {}).items():
        if matrix is not None and name in matrix.columns:
            features[name] = psi(profile["counts"], column_counts(profile, matrix[name]))
    out["features"] = features
    return out


@dataclass(frozen=True)
class MonitoringInputs:
    """What a run's monitoring compares against, read before the comparison runs (it may run in a
    forked worker, which must not touch the results database)."""

    previous_id: str | None
    previous: dict[str, Any] | None
    previous_grades: pd.DataFrame | None
    references: dict[str, dict[str, Any] | None]  # types scored by an earlier model: its reference


def monitoring_inputs(
    settings: Settings, db: ResultsDB, registry: ModelRegistry, scored: dict[str, EntityScores]
) -> MonitoringInputs:
    """The served (previous) run's profile and grades, and each champion-scored type's training reference."""
    previous_id = db.served_run_id()
    return MonitoringInputs(
        previous_id,
        _saved_profile(settings, previous_id),
        _saved_grades(settings, previous_id),
        {t: registry.reference(m.model_version) for t, m in scored.items() if not m.fitted and m.model_version},
    )


def monitor(
    inputs: MonitoringInputs, *, run_id: str, scored: dict[str, EntityScores], scores: pd.DataFrame, hits: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's profile and its monitoring report (a model fitted in this run: its reference is
    this run's own profile)."""
    profile = run_profile(scored, hits)
    references = {
        t: inputs.references.get(t) if not scored[t].fitted else profile["types"][t] for t in profile["types"]
    }
    return profile, compare_run(
        run_id=run_id,
        profile=profile,
        scored=scored,
        scores=scores,
        previous_id=inputs.previous_id,
        previous=inputs.previous,
        previous_grades=inputs.previous_grades,
        references=references,
    )


def compare_run(
    *,
    run_id: str,
    profile: dict[str, Any],
    scored: dict[str, EntityScores],
    scores: pd.DataFrame,
    previous_id: str | None,
    previous: dict[str, Any] | None,
    previous_grades: pd.DataFrame | None,
    references: dict[str, dict[str, Any] | None],
) -> dict[str, Any]:
    """The monitoring report of a run's profile and scores against the previous run's profile and
    grades and each type's training reference profile."""
    previous_scores = previous_grades
    out: dict[str, Any] = {
        "run_id": run_id,
        "previous_run_id": previous_id if previous is not None else None,
        "bands": {"watch": PSI_WATCH, "alert": PSI_ALERT},
        "types": {},
        "alerts": [],
    }
    for t, mine in profile["types"].items():
        m = scored[t]
        score = m.table[SCORE]
        before = (previous or {}).get("types", {}).get(t)
        reference = references.get(t)
        vs_previous = _against(before, score, m.matrix)
        vs_reference = _against(reference, score, m.matrix)
        names = sorted(set(vs_previous["features"]) | set(vs_reference["features"]))
        features = [
            {
                "feature": name,
                "psi_previous": vs_previous["features"].get(name),
                "psi_reference": vs_reference["features"].get(name),
            }
            for name in names
        ]
        for f in features:
            worst = max((v for v in (f["psi_previous"], f["psi_reference"]) if v is not None), default=None)
            f["band"] = band(worst)
        features.sort(key=lambda f: -max(f["psi_previous"] or 0.0, f["psi_reference"] or 0.0))
        out["types"][t] = {
            "model_version": m.model_version,
            "entities": mine["entities"],
            "reference": "this run (model fitted here)" if m.fitted else f"training population of {m.model_version}",
            "score_psi": {"previous": vs_previous["score"], "reference": vs_reference["score"]},
            "score_band": band(
                max((v for v in (vs_previous["score"], vs_reference["score"]) if v is not None), default=None)
            ),
            "features": features,
            "grade_migration": (
                grade_migration(
                    previous_scores[previous_scores["entity_type"] == t], scores[scores["entity_type"] == t]
                )
                if previous_scores is not None
                else None
            ),
        }
        for against, result in (("previous", vs_previous), ("reference", vs_reference)):
            crossed = [("score", result["score"])] + list(result["features"].items())
            out["alerts"] += [
                {"entity_type": t, "column": c, "against": against, "psi": v}
                for c, v in crossed
                if v is not None and v >= PSI_ALERT
            ]
    out["rule_hit_rates"] = rule_changes((previous or {}).get("rules", {}), profile["rules"]) if previous else None
    return out


def save_profile(folder: Path, profile: dict[str, Any], monitoring: dict[str, Any]) -> None:
    """The run's profile and monitoring, beside its feature matrices."""
    (folder / PROFILE_JSON).write_text(json.dumps(profile), encoding="utf-8")
    (folder / MONITORING_JSON).write_text(json.dumps(monitoring, indent=1), encoding="utf-8")


def saved_monitoring(settings: Settings, run_id: str | None) -> dict[str, Any] | None:
    """A retained run's monitoring.json (None: not kept, or the run predates monitoring)."""
    if not run_id:
        return None
    path = run_dir(settings, run_id) / "features" / MONITORING_JSON
    value: dict[str, Any] | None = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    return value


def _saved_profile(settings: Settings, run_id: str | None) -> dict[str, Any] | None:
    if not run_id:
        return None
    path = run_dir(settings, run_id) / "features" / PROFILE_JSON
    value: dict[str, Any] | None = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    return value


def _saved_grades(settings: Settings, run_id: str | None) -> pd.DataFrame | None:
    if not run_id:
        return None
    path = run_dir(settings, run_id) / "features" / SCORES_PARQUET
    return pd.read_parquet(path, columns=["entity_type", "entity_id", "grade"]) if path.exists() else None


def keep_references(registry: ModelRegistry, scored: dict[str, EntityScores], profile: dict[str, Any]) -> None:
    """Each model fitted in this run keeps its type's profile: its training reference."""
    for t, m in scored.items():
        if m.fitted and m.model_version and t in profile["types"]:
            registry.set_reference(m.model_version, profile["types"][t])


def raise_drift_alerts(db: ResultsDB, monitoring: dict[str, Any]) -> None:
    """After the commit: an audit row (`drift_alert`) per entity type with a PSI over the alert band."""
    rows = alert_rows(monitoring)
    if rows:
        at = now_iso()
        db.append_audit(
            [
                {"at": at, "actor": "pipeline", "role": "system", "action": "drift_alert"}
                | {"entity_id": None, "grade": None, "decision_id": None}
                | r
                for r in rows
            ]
        )
        log.warning("drift alert in run %s: %d PSI >= %.2f", monitoring["run_id"], len(monitoring["alerts"]), PSI_ALERT)


def alert_rows(monitoring: dict[str, Any]) -> list[dict[str, Any]]:
    """One audit row per entity type with a PSI at or over the alert band."""
    rows = []
    by_type: dict[str, list[dict[str, Any]]] = {}
    for a in monitoring.get("alerts", []):
        by_type.setdefault(a["entity_type"], []).append(a)
    for t, alerts in by_type.items():
        rows.append(
            {
                "entity_type": t,
                "model_version": monitoring["types"][t]["model_version"],
                "run_id": monitoring["run_id"],
                "detail": json.dumps(
                    {
                        "psi_alert": PSI_ALERT,
                        "crossed": [{k: a[k] for k in ("column", "against", "psi")} for a in alerts],
                    }
                ),
            }
        )
    return rows
