"""The fairness table's four-fifths flag, and the triage order with money at stake."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explain.fairness import fairness_table
from graph.dataset import dataset_from_frames
from rules.engine import money_records
from rules.pack import Rule
from scoring.triage import amount_at_stake, priority


def test_fairness_flags_groups_below_four_fifths() -> None:
    n = 200
    persons = pd.DataFrame(
        {
            "person_id": [f"P{i:03d}" for i in range(n)],
            "gender": ["F"] * 100 + ["M"] * 100,
            "birth_date": ["1980-01-01"] * n,
        }
    )
    dataset = dataset_from_frames({"persons": persons})
    grades = ["A"] * 90 + ["D"] * 10 + ["A"] * 50 + ["D"] * 50  # F: 90% favourable, M: 50%
    scores = pd.DataFrame({"entity_type": "person", "entity_id": persons["person_id"], "grade": grades})
    table = fairness_table(dataset, scores, pd.Timestamp("2025-12-31")).set_index(["attribute", "group"])
    assert table.loc[("gender", "M"), "disparate impact"] == np.float64(0.5 / 0.9)
    assert table.loc[("gender", "M"), "flag"] == "below 0.8" and table.loc[("gender", "F"), "flag"] == ""
    assert table.loc[("age band", "45-59"), "persons"] == n


def _table(rows: list[tuple[str, float, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_type": "person",
            "entity_id": [r[0] for r in rows],
            "risk_score": [r[1] for r in rows],
            "grade": [r[2] for r in rows],
            "score_grade": [r[3] for r in rows],
            "grade_cap": ["D" if r[2] != r[3] else "" for r in rows],
        }
    )


def test_priority_puts_serious_caps_then_caps_then_expected_loss() -> None:
    table = _table(
        [
            ("P1", 0.95, "C", "C"),  # very risky, no amount known
            ("P2", 0.10, "D", "A"),  # capped by a serious rule
            ("P3", 0.50, "D", "B"),  # capped by an ordinary rule
            ("P4", 0.60, "C", "C"),  # risky with a large amount at stake
            ("P5", 0.30, "C", "C"),  # same risk band, small amount
        ]
    )
    hits = pd.DataFrame(
        {"rule_id": ["serious_rule", "capping_rule"], "entity_type": "person", "entity_id": ["P2", "P3"]}
    )
    amount = pd.Series({"P4": 50_000.0, "P5": 100.0})
    rank = priority(table, hits, {"serious_rule"}, amount)
    order = table["entity_id"].to_numpy()[np.argsort(rank)].tolist()
    assert order[:2] == ["P2", "P3"]
    # the median known amount (25,050) stands in for P1: 0.95 x 25,050 < 0.60 x 50,000
    assert order[2:] == ["P4", "P1", "P5"]


def test_money_counts_each_event_once_and_credits_the_facility() -> None:
    rule = Rule(
        id="rule_x", title_en="t", title_zh="t", entity_type="person", severity="low", detector="over_prescribing"
    )
    records = pd.DataFrame(
        {
            "entity_id": ["P1", "P1", "P1"],
            "purchase_id": ["U1", "U1", "U2"],
            "pharmacy_id": ["H1", "H1", "H2"],
            "amount": [100.0, 100.0, 50.0],
        }
    )
    money = money_records(rule, records).drop_duplicates(["entity_type", "entity_id", "record"])
    dataset = dataset_from_frames({"persons": pd.DataFrame({"person_id": ["P1"]})})
    assert amount_at_stake(dataset, money, "person", pd.Index(["P1"])).tolist() == [150.0]
    assert amount_at_stake(dataset, money, "pharmacy", pd.Index(["H1", "H2", "H3"])).fillna(-1).tolist() == [
        100.0,
        50.0,
        -1,
    ]
