"""Champion and challenger: shadow-scoring a model version on a run's stored model matrix, the
side-by-side comparison, and promotion and rollback through the gate (scoring/gate.py), each
audited, whoever asks (CLI, API or the pipeline's own promotion).

Both versions score the same entities: the run's kept model matrix (`runs/<run>/features/<type>.parquet`),
with the run's rule caps. The comparison shows their out-of-fold and out-of-time metrics, the
challenger's score PSI against the champion's, the grade migration between them and the entities
whose grade would change, with the challenger's reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from composer.runs import SCORES_PARQUET, run_dir
from explain.catalogue import Catalogue, built_in
from riskgraph.errors import ModelNotFound, RiskGraphError
from riskgraph.results import ResultsDB, now_iso
from riskgraph.results_schema import audit_table
from riskgraph.settings import Settings
from scoring.disclosure import withheld
from scoring.gate import GateVerdict, gate, oot_of
from scoring.grades import apply_caps, credit_points, grades
from scoring.monitoring import column_counts, column_profile, grade_migration, psi
from scoring.registry import ModelRecord, ModelRegistry

CHANGED_SHOWN = 100  # entities whose grade would change, listed (all are counted)
CHANGE_REASONS = 3


class PromotionRefused(RiskGraphError):
    status_code = 409
    code = "promotion_refused"


class NotComparable(RiskGraphError):
    status_code = 422
    code = "not_comparable"


@dataclass
class Shadow:
    """One version's scores of a run's entities."""

    version: str
    risk: pd.Series
    grade: pd.Series
    reason_idx: np.ndarray
    reason_val: np.ndarray
    features: list[str]


def _run_for(settings: Settings, db: ResultsDB, run_id: str | None) -> str:
    run_id = run_id or db.served_run_id()
    if not run_id:
        raise NotComparable("nothing is served yet: run `riskgraph pipeline` first")
    if not (run_dir(settings, run_id) / "features").exists():
        raise NotComparable(f"run {run_id} is no longer retained (retention_runs={settings.retention_runs})")
    return run_id


def shadow_score(
    settings: Settings, registry: ModelRegistry, rec: ModelRecord, matrix: pd.DataFrame, caps: pd.Series
) -> Shadow:
    """`rec`'s risk and grade (after the run's rule caps) for every row of `matrix`."""
    model = registry.load(rec.version)
    if model is None:
        raise NotComparable(
            f"{rec.version} is {rec.kind}: only supervised versions are shadow-scored from a stored matrix"
        )
    margin, idx, val = model.margin_and_reasons(matrix.reindex(columns=rec.features))
    risk = pd.Series(model.calibrated(margin), index=matrix.index)
    score_grade = pd.Series(
        grades(credit_points(risk.to_numpy(), settings.scorecard), settings.bands), index=matrix.index
    )
    final = apply_caps(score_grade, caps.reindex(matrix.index))
    return Shadow(rec.version, risk, final, idx, val, list(model.features_))


def score_psi(champion: pd.Series, challenger: pd.Series) -> float:
    """PSI of the challenger's scores on the champion's score bins (the same entities)."""
    bins = column_profile(champion)
    return psi(np.asarray(bins["counts"]), column_counts(bins, challenger))


def _run_inputs(settings: Settings, run_id: str, entity_type: str) -> tuple[pd.DataFrame, pd.Series]:
    folder = run_dir(settings, run_id) / "features"
    path = folder / f"{entity_type}.parquet"
    if not path.exists():
        raise NotComparable(f"run {run_id} kept no {entity_type} model matrix")
    matrix = pd.read_parquet(path)
    scores = pd.read_parquet(
        folder / SCORES_PARQUET,
        columns=["entity_type", "entity_id", "grade_cap"],
        filters=[("entity_type", "==", entity_type)],
    )
    caps = scores.set_index(scores["entity_id"].astype(str))["grade_cap"].replace("", np.nan)
    return matrix, caps


def _catalogue(settings: Settings, run_id: str) -> Catalogue:
    path = run_dir(settings, run_id) / "features" / "catalogue.json"
    return Catalogue.from_json(path.read_text(encoding="utf-8")) if path.exists() else built_in()


def _metrics_side(rec: ModelRecord) -> dict[str, Any]:
    """A version's out-of-fold and out-of-time headline metrics (withheld under 30 labels a class)."""
    oof = {k: rec.metrics.get(k) for k in ("roc_auc", "ks", "pr_auc", "n", "positives")}
    oot_all = oot_of(rec)
    oot = {k: oot_all.get(k) for k in ("roc_auc", "ks", "pr_auc", "n", "positives", "cut", "undated", "note")}
    return {
        "version": rec.version,
        "kind": rec.kind,
        "champion": rec.champion,
        "created_at": rec.created_at,
        "data_hash": rec.data_hash,
        "out_of_fold": oof,
        "out_of_fold_withheld": withheld({k: v for k, v in oof.items() if v is not None}),
        "out_of_time": oot,
        "out_of_time_withheld": withheld(
            {k: v for k, v in oot.items() if k in ("roc_auc", "ks", "pr_auc", "n", "positives") and v is not None}
        ),
    }


def compare(
    settings: Settings,
    db: ResultsDB,
    *,
    champion: str,
    challenger: str,
    run_id: str | None = None,
    shown: int = CHANGED_SHOWN,
) -> dict[str, Any]:
    """Two versions of one type side by side on one run (default: the served one)."""
    registry = ModelRegistry(db)
    a, b = registry.get(champion), registry.get(challenger)
    if a.entity_type != b.entity_type:
        raise NotComparable(f"{champion} scores {a.entity_type}s and {challenger} {b.entity_type}s")
    run_id = _run_for(settings, db, run_id)
    matrix, caps = _run_inputs(settings, run_id, a.entity_type)
    sa_, sb = shadow_score(settings, registry, a, matrix, caps), shadow_score(settings, registry, b, matrix, caps)
    psi_value = score_psi(sa_.risk, sb.risk)
    ids = matrix.index.astype(str)
    frame = lambda s: pd.DataFrame({"entity_type": a.entity_type, "entity_id": ids, "grade": s.grade.to_numpy()})  # noqa: E731
    changed = np.flatnonzero(sa_.grade.to_numpy() != sb.grade.to_numpy())
    order = changed[np.argsort(-np.abs(sb.risk.to_numpy()[changed] - sa_.risk.to_numpy()[changed]), kind="stable")]
    catalogue = _catalogue(settings, run_id)
    entities = []
    for i in order[:shown]:
        reasons: list[dict[str, Any]] = []
        for slot in range(sb.reason_idx.shape[1]):
            j = int(sb.reason_idx[i, slot])
            if j < 0 or len(reasons) >= CHANGE_REASONS:
                break
            feature = sb.features[j]
            item = catalogue.reason(
                feature, matrix.iloc[i][feature] if feature in matrix else None, float(sb.reason_val[i, slot])
            )
            if item is not None:
                reasons.append({k: item[k] for k in ("code", "direction", "text", "text_zh") if k in item})
        entities.append(
            {
                "entity_id": ids[i],
                "champion_grade": str(sa_.grade.iloc[i]),
                "challenger_grade": str(sb.grade.iloc[i]),
                "champion_risk": round(float(sa_.risk.iloc[i]), 6),
                "challenger_risk": round(float(sb.risk.iloc[i]), 6),
                "reasons": reasons,
            }
        )
    verdict = gate(a, b, psi_value)
    return {
        "entity_type": a.entity_type,
        "run_id": run_id,
        "entities": len(matrix),
        "champion": _metrics_side(a),
        "challenger": _metrics_side(b),
        "score_psi": psi_value,
        "grade_migration": grade_migration(frame(sa_), frame(sb)),
        "changed_total": len(changed),
        "changed": entities,
        "gate": verdict.as_dict(),
        "warnings": snapshot_warnings(db, b, run_id),
    }


def snapshot_warnings(db: ResultsDB, rec: ModelRecord, run_id: str | None) -> list[str]:
    """A warning when `rec` was trained on another snapshot than the run it would serve."""
    run = db.run(run_id) if run_id else None
    served_hash = json.loads((run or {}).get("manifest") or "{}").get("input_hash")
    if served_hash and rec.data_hash != served_hash:
        return [
            f"{rec.version} was trained on another snapshot (data {rec.data_hash[:12]}) than the served run "
            f"{run_id} (data {served_hash[:12]})"
        ]
    return []


def gate_verdict(
    settings: Settings, db: ResultsDB, registry: ModelRegistry, version: str
) -> tuple[GateVerdict, ModelRecord | None, ModelRecord, str | None]:
    """The gate's verdict on making `version` its type's champion, measured on the served run."""
    rec = registry.get(version)
    champion = registry.champion(rec.entity_type)
    if champion is None or champion.version == version:
        return gate(None, rec, None), champion, rec, db.served_run_id()
    run_id = db.served_run_id()
    psi_value = None
    if run_id and (run_dir(settings, run_id) / "features").exists():
        try:
            matrix, caps = _run_inputs(settings, run_id, rec.entity_type)
            psi_value = score_psi(
                shadow_score(settings, registry, champion, matrix, caps).risk,
                shadow_score(settings, registry, rec, matrix, caps).risk,
            )
        except NotComparable:
            psi_value = None
    return gate(champion, rec, psi_value), champion, rec, run_id


def promote(
    settings: Settings,
    db: ResultsDB,
    version: str,
    *,
    actor: str,
    role: str,
    force_reason: str | None = None,
    action: str = "promote",
) -> dict[str, Any]:
    """Make `version` its type's champion through the gate; a refusal is overridden only with a
    reason. Audited either way it succeeds (action `promote` or `rollback`)."""
    registry = ModelRegistry(db)
    verdict, champion, rec, run_id = gate_verdict(settings, db, registry, version)
    if champion is not None and champion.version == version:
        raise PromotionRefused(f"{version} is already the {rec.entity_type} champion")
    if rec.staged:
        raise ModelNotFound(f"model version {version!r} belongs to a run that has not committed")
    forced = bool(force_reason and force_reason.strip())
    if force_reason is not None and not forced:
        raise PromotionRefused("forcing a promotion needs a reason")
    if not verdict.allowed and not forced:
        raise PromotionRefused(
            f"the gate refuses {version} as {rec.entity_type} champion: "
            + "; ".join(verdict.problems)
            + " (force it with a stated reason)"
        )
    warnings = snapshot_warnings(db, rec, run_id)
    registry.promote(version)
    detail = {
        "from": champion.version if champion else None,
        "gate": verdict.as_dict(),
        "forced": force_reason.strip() if forced and force_reason else None,
        "warnings": warnings,
    }
    audit(
        db,
        actor=actor,
        role=role,
        action=action,
        entity_type=rec.entity_type,
        model_version=version,
        run_id=run_id,
        detail=detail,
    )
    return {"version": version, "entity_type": rec.entity_type, "previous": detail["from"], **detail}


def previous_champion(db: ResultsDB, entity_type: str, current: str) -> str:
    """The champion before `current`: from the audited promotions, else the runs' champions."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            audit_table.select()
            .where(
                (audit_table.c.entity_type == entity_type)
                & audit_table.c.action.in_(("promote", "rollback"))
                & (audit_table.c.model_version == current)
            )
            .order_by(audit_table.c.id.desc())
        ).all()
    for row in rows:
        before = json.loads(row.detail or "{}").get("from")
        if before and before != current:
            return str(before)
    for run in db.runs():
        champions = json.loads(run.get("champions") or "{}")
        version = champions.get(entity_type)
        if run["status"] in ("committed", "expired") and version and version != current:
            return str(version)
    raise ModelNotFound(f"no earlier {entity_type} champion to roll back to")


def rollback(
    settings: Settings, db: ResultsDB, entity_type: str, *, actor: str, role: str, force_reason: str | None = None
) -> dict[str, Any]:
    """Make the previous champion the champion again, through the same gate and audit."""
    current = ModelRegistry(db).champion(entity_type)
    if current is None:
        raise ModelNotFound(f"no {entity_type} champion")
    target = previous_champion(db, entity_type, current.version)
    return promote(settings, db, target, actor=actor, role=role, force_reason=force_reason, action="rollback")


def audit(
    db: ResultsDB,
    *,
    actor: str,
    role: str,
    action: str,
    entity_type: str,
    model_version: str,
    run_id: str | None,
    detail: dict[str, Any],
) -> None:
    """One chained audit row (riskgraph/audit_chain.py) for a governance action."""
    db.append_audit(
        [
            {
                "at": now_iso(),
                "actor": actor,
                "role": role,
                "action": action,
                "entity_type": entity_type,
                "entity_id": None,
                "model_version": model_version,
                "grade": None,
                "detail": json.dumps(detail, default=str),
                "decision_id": None,
                "run_id": run_id,
            }
        ]
    )


# -- the pipeline's own promotion --------------------------------------------------------------------


def _risk_of(
    registry: ModelRegistry, rec: ModelRecord, matrix: pd.DataFrame, known: np.ndarray | None = None
) -> pd.Series:
    """A version's calibrated risk of every row of `matrix`: `known` when the run already has
    it, else the registry's model predicts it."""
    if known is not None:
        return pd.Series(known, index=matrix.index)
    model = registry.load(rec.version)
    return pd.Series(model.calibrated(model.margin(matrix.reindex(columns=rec.features))), index=matrix.index)


@dataclass(frozen=True)
class Challenger:
    """A version a `fit` run trained: its model matrix, and its calibrated risk of every row of it
    (labelled rows in-sample, as the gate compares) and the champion's when the run's scoring
    already has them (None: the gate scores the matrix)."""

    version: str
    matrix: pd.DataFrame
    risk: np.ndarray | None = None
    champion_risk: np.ndarray | None = None  # the champion's of the same matrix, when the run has it


def pipeline_gate(registry: ModelRegistry, fitted: dict[str, Challenger]) -> dict[str, dict[str, Any]]:
    """The gate on each version a `fit` run trained: the challenger and the current champion
    shadow-score the run's matrix. Returns per type the champion it would replace, the verdict
    and whether it is promoted (for a `candidate` run: whether the gate would let it be)."""
    out = {}
    for t, challenger in fitted.items():
        champion = registry.champion(t)
        if champion is None:
            continue
        rec = registry.get(challenger.version)
        matrix = challenger.matrix
        psi_value = None
        if champion.kind == rec.kind == "supervised":
            ours = _risk_of(registry, champion, matrix, challenger.champion_risk)
            psi_value = score_psi(ours, _risk_of(registry, rec, matrix, challenger.risk))
        verdict = gate(champion, rec, psi_value)
        out[t] = {"challenger": challenger.version, "champion": champion.version, "promoted": verdict.allowed} | {
            "gate": verdict.as_dict()
        }
    return out


def audit_pipeline_promotions(
    db: ResultsDB, run_id: str, decisions: dict[str, dict[str, Any]], kind: str, promoted: dict[str, str]
) -> None:
    """After a run's commit: each promotion it made (`promote`: through the gate, or a type's first
    model, or an ungated unsupervised scorer) and each refusal (`promotion_refused`)."""
    for t in sorted(set(decisions) | set(promoted)):
        d = decisions.get(t)
        if d is None:  # no champion before: the first model is taken without a gate
            first = {"allowed": True, "problems": [], "figures": {"note": "the first model of its type"}}
            d = {"challenger": promoted[t], "champion": None, "promoted": True, "gate": first}
        elif d["promoted"] and t not in promoted:
            continue  # passed the gate but this run does not promote (a candidate run's shadow)
        audit(
            db,
            actor=kind,
            role="system",
            action="promote" if d["promoted"] else "promotion_refused",
            entity_type=t,
            model_version=d["challenger"],
            run_id=run_id,
            detail={"from": d["champion"], "gate": d["gate"], "forced": None, "warnings": []},
        )
