"""Plain functions behind `riskgraph rules list` and `riskgraph rules test --data DIR`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from graph.dataset import Dataset
from rules.engine import evaluate
from rules.pack import DEFAULT_PACK_DIR, RulePack, load_packs


def list_rules(pack_dir: str | Path = DEFAULT_PACK_DIR) -> pd.DataFrame:
    """Every rule of every pack in `pack_dir`, one row each (validating the packs)."""
    rows = [
        {
            "pack": p.name,
            "version": p.version,
            "rule_id": r.id,
            "entity_type": r.entity_type,
            "severity": r.severity,
            "severity_level": r.severity_level,
            "detector": r.detector,
            "params": json.dumps(r.params, ensure_ascii=False, sort_keys=True),
            "grade_cap": r.grade_cap or "",
            "enabled": r.enabled,
            "title_en": r.title_en,
            "title_zh": r.title_zh,
        }
        for p in load_packs(pack_dir)
        for r in p.rules
    ]
    return pd.DataFrame(rows)


def test_rules(
    dataset: Dataset,
    pack: RulePack | Sequence[RulePack],
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    disabled: Iterable[str] = frozenset(),
) -> pd.DataFrame:
    """Hits per rule on a dataset: rule_id, entity_type, status (ran/skipped/disabled), hits, note."""
    result = evaluate(dataset, pack, overrides=overrides, disabled=disabled)
    skipped = dict(result.skipped)
    packs = [pack] if isinstance(pack, RulePack) else list(pack)
    rows = []
    for rule in (r for p in packs for r in p.rules):
        if rule.id in result.counts:
            status, hits, note = "ran", result.counts[rule.id], ""
        elif rule.id in skipped:
            status, hits, note = "skipped", 0, skipped[rule.id]
        else:
            status, hits, note = "disabled", 0, "disabled in the pack or in settings"
        rows.append({"rule_id": rule.id, "entity_type": rule.entity_type, "status": status, "hits": hits, "note": note})
    return pd.DataFrame(rows, columns=["rule_id", "entity_type", "status", "hits", "note"])


test_rules.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name
