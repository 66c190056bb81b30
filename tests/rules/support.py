"""Running one rule of the default pack on a hand-made dataset (tests.factories.make_dataset)."""

from __future__ import annotations

import json
from typing import Any

from graph.dataset import Dataset
from rules import RuleResult, default_pack, evaluate


def run(rule_id: str, dataset: Dataset, **kwargs: Any) -> RuleResult:
    """Evaluate only one rule of the default pack."""
    pack = default_pack()
    others = {r.id for r in pack.rules} - {rule_id}
    return evaluate(dataset, pack, disabled=others, **kwargs)


def hits_of(rule_id: str, dataset: Dataset, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """entity_id -> parsed evidence for one rule."""
    result = run(rule_id, dataset, **kwargs)
    assert not result.skipped, result.skipped
    return {row.entity_id: json.loads(row.evidence) for row in result.hits.itertuples()}
