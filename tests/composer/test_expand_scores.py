"""Scores keyed by person record again (composer/resolution.py `expand_scores`)."""

from __future__ import annotations

import pandas as pd

from composer.resolution import expand_scores


def test_every_record_gets_its_golden_persons_row_in_type_then_id_order() -> None:
    scores = pd.DataFrame(
        {
            "entity_type": ["person", "employer", "person", "employer"],
            "entity_id": ["P2", "E9", "P1", "E1"],
            "risk_score": [0.9, 0.5, 0.1, 0.4],
            "priority": [1, 3, 2, 4],
        }
    )
    records = pd.DataFrame(  # P3 is a second record of P2; P4 has no scored golden person
        {"person_id": ["P1", "P2", "P3", "P4"], "golden_id": ["P1", "P2", "P2", "P9"]}
    )
    out = expand_scores(scores, records)
    assert list(out.columns) == ["entity_type", "entity_id", "risk_score", "priority", "golden_id"]
    assert out[["entity_type", "entity_id"]].values.tolist() == [
        ["person", "P1"],
        ["person", "P2"],
        ["person", "P3"],
        ["employer", "E1"],
        ["employer", "E9"],
    ]
    assert out["risk_score"].tolist() == [0.1, 0.9, 0.9, 0.4, 0.5]
    # persons ranked 1..n again, a golden person's records together; other types keep theirs
    assert out["priority"].tolist() == [3, 1, 2, 4, 3]
    assert out["golden_id"].tolist() == ["P1", "P2", "P2", None, None]
    assert out["entity_id"].dtype == scores["entity_id"].dtype
    # types in the scores' order of first appearance, rows within a type whatever their order
    pd.testing.assert_frame_equal(expand_scores(scores.iloc[[2, 3, 0, 1]], records), out)
