"""Alerts across runs: new, unchanged, changed, re-opened on material change, gone and back."""

from __future__ import annotations

import json

import pandas as pd

from composer.alerts import ITEM_COLUMNS, build_alerts
from riskgraph.settings import AlertSettings

S = AlertSettings()


def subjects(scores: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "alert_id": list(scores),
            "subject_type": "ring",
            "subject_id": list(scores),
            "typology": "collusion",
            "score": list(scores.values()),
        }
    )


def items(rows: list[tuple[str, str, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def run(prev: tuple[pd.DataFrame, pd.DataFrame] | None, subj: pd.DataFrame, its: pd.DataFrame, n: int):
    return build_alerts(
        subj, its, prev[0] if prev else None, prev[1] if prev else None, S, run_id=f"run{n}", now=f"2026-01-0{n}"
    )


def by_id(alerts: pd.DataFrame) -> dict[str, dict]:
    return {r["alert_id"]: r for r in alerts.to_dict("records")}


def test_alert_events_across_runs() -> None:
    base = items(
        [
            ("A", "member", "person:1", False),
            ("A", "member", "person:2", False),
            ("B", "member", "person:3", False),
            ("C", "rule", "med_x", False),
            ("D", "member", "person:9", False),
        ]
    )
    first = run(None, subjects({"A": 0.5, "B": 0.5, "C": 0.5, "D": 0.2}), base, 1)
    assert set(first[0]["event"]) == {"new"} and first[0]["raised"].all()

    changed = items(
        [
            ("A", "member", "person:1", False),
            ("A", "member", "person:2", False),
            ("A", "member", "person:4", False),  # new member: material
            ("B", "member", "person:3", False),
            ("B", "rule", "med_y", False),  # a new rule, not serious: changed only
            ("C", "rule", "med_x", False),
            ("C", "rule", "ben_z", True),  # a new serious rule: material
            ("E", "rule", "emp_q", False),
        ]
    )
    second = run(first, subjects({"A": 0.5, "B": 0.55, "C": 0.5, "E": 0.3}), changed, 2)
    a = by_id(second[0])
    assert a["A"]["event"] == "reopened" and json.loads(a["A"]["new_members"]) == ["person:4"]
    assert a["B"]["event"] == "changed" and not a["B"]["raised"]
    assert a["C"]["event"] == "reopened" and json.loads(a["C"]["new_serious_rules"]) == ["ben_z"]
    assert a["D"]["event"] == "gone" and not a["D"]["raised"]
    assert a["E"]["event"] == "new"
    assert a["A"]["first_seen"] == "2026-01-01" and a["A"]["last_seen"] == "2026-01-02"

    same = second[1][second[1]["alert_id"] != "D"]
    third = run(
        second,
        subjects({"A": 0.5, "B": 0.7, "C": 0.5, "E": 0.3, "D": 0.2}),
        pd.concat([same, base[base["alert_id"] == "D"]]),
        3,
    )
    a = by_id(third[0])
    assert a["A"]["event"] == "unchanged" and a["A"]["raised_at"] == "2026-01-02"
    assert a["B"]["event"] == "reopened"  # score rose by 0.15 > 0.1
    assert a["D"]["event"] == "reopened" and a["D"]["first_seen"] == "2026-01-01"  # back after being gone
