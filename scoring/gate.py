"""The promotion gate: when a challenger may replace its type's champion.

Refused when
- the challenger's out-of-time ROC-AUC is more than `OOT_AUC_TOLERANCE` below the champion's;
- the challenger's scores, on the same run's entities, have a PSI over `GATE_PSI` against the
  champion's (a shift that large changes too many answers at once to slip through unseen);
- fewer than 30 labels per class (scoring/disclosure.py) support either out-of-time measurement.

A refusal can be overridden only with a stated reason (the caller audits it). A type without a
champion takes its first model without a gate; unsupervised scorers (rules, rings, anomaly
rank: nothing trained on labels) are not gated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoring.disclosure import METRICS_MIN_LABELS_PER_CLASS, label_counts
from scoring.monitoring import PSI_ALERT
from scoring.registry import ModelRecord

OOT_AUC_TOLERANCE = 0.01
GATE_PSI = PSI_ALERT


@dataclass(frozen=True)
class GateVerdict:
    allowed: bool
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "problems": list(self.problems), "figures": dict(self.figures)}


def oot_of(rec: ModelRecord) -> dict[str, Any]:
    """A version's out-of-time metrics (scoring/oot.py), empty when it has none."""
    oot = rec.metrics.get("oot")
    return oot if isinstance(oot, dict) else {}


def gate(champion: ModelRecord | None, challenger: ModelRecord, score_psi: float | None) -> GateVerdict:
    """Whether `challenger` may become the champion, with the figures the decision used."""
    if champion is None:
        return GateVerdict(True, [], {"note": f"no {challenger.entity_type} champion yet: the first model is taken"})
    if champion.kind != "supervised" or challenger.kind != "supervised":
        note = "an unsupervised scorer is not gated: there is no trained model to compare on labels"
        return GateVerdict(True, [], {"note": note})
    problems: list[str] = []
    figures: dict[str, Any] = {"score_psi": score_psi}
    aucs = {}
    need = METRICS_MIN_LABELS_PER_CLASS
    unvalidated: dict[str, str] = {}  # who -> why there is no out-of-time validation
    for who, rec in (("champion", champion), ("challenger", challenger)):
        oot = oot_of(rec)
        counts = label_counts(oot)
        aucs[who] = oot.get("roc_auc")
        figures[f"{who}_oot_auc"] = aucs[who]
        figures[f"{who}_oot_labels"] = counts
        if counts is None:
            unvalidated[who] = str(oot.get("note") or "not run")
        elif min(counts.values()) < need:
            problems.append(
                f"only {counts['fraud']} fraud / {counts['not_fraud']} clean out-of-time labels support the "
                f"{who}'s AUC; at least {need} per class are needed"
            )
    if len(unvalidated) == 2 and len(set(unvalidated.values())) == 1:  # one reason, said once
        problems.insert(
            0,
            f"neither the champion {champion.version} nor the challenger {challenger.version} has "
            f"out-of-time validation ({unvalidated['champion']})",
        )
    else:
        versions = {"champion": champion.version, "challenger": challenger.version}
        for i, (who, why) in enumerate(unvalidated.items()):
            problems.insert(i, f"the {who} {versions[who]} has no out-of-time validation ({why})")
    champ_auc, chall_auc = aucs["champion"], aucs["challenger"]
    if isinstance(champ_auc, float) and isinstance(chall_auc, float) and chall_auc < champ_auc - OOT_AUC_TOLERANCE:
        problems.append(
            f"the challenger's out-of-time ROC-AUC {chall_auc:.4f} is more than {OOT_AUC_TOLERANCE} below "
            f"the champion's {champ_auc:.4f}"
        )
    if score_psi is None:
        problems.append("the challenger's score PSI against the champion could not be measured on a served run")
    elif score_psi > GATE_PSI:
        problems.append(f"the challenger's score PSI against the champion is {score_psi:.3f}, over {GATE_PSI}")
    return GateVerdict(not problems, problems, figures)
