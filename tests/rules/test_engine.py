"""Evaluation: overrides, disabling, skipped rules, output shape, hit features and grade caps."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rules import (
    HIT_COLUMNS,
    RulePackError,
    default_pack,
    evaluate,
    grade_caps,
    hit_features,
    list_rules,
    test_rules,
)
from tests.factories import make_dataset
from tests.rules.support import run


def visit(vid, person, clinic, date):
    return dict(visit_id=vid, person_id=person, clinic_id=clinic, date=date, kind="outpatient", amount=10.0)


@pytest.fixture
def ds():
    return make_dataset(
        persons=[dict(person_id="P1", death_date="2024-01-01")],
        visits=[
            visit("V1", "P1", "C1", "2024-03-01"),
            visit("V2", "P1", "C2", "2024-03-01"),
            visit("V3", "P2", "C1", "2024-03-01"),
            visit("V4", "P2", "C2", "2024-03-01"),
            visit("V5", "P2", "C3", "2024-03-01"),
        ],
        purchases=[
            dict(
                purchase_id=f"R{i}",
                person_id="P1",
                pharmacy_id="H1",
                date="2024-02-01",
                days_supply=30.0,
                drug_code=f"D{i}",
            )
            for i in range(25)
        ],
    )


def test_hits_are_sorted_typed_and_carry_evidence(ds):
    result = evaluate(ds, default_pack())
    hits = result.hits
    assert tuple(hits.columns) == HIT_COLUMNS
    assert hits.equals(hits.sort_values(["rule_id", "entity_type", "entity_id"]).reset_index(drop=True))
    assert hits["severity"].dtype == "int64"
    row = hits[hits["rule_id"] == "med_over_prescribing"].iloc[0]
    ev = json.loads(row["evidence"])
    assert ev["n_records"] == 25 and len(ev["records"]) == 20  # capped, count kept
    assert result.counts["med_same_day_multi_clinic"] == 2
    assert evaluate(ds, default_pack()).hits.equals(hits)  # deterministic


def test_rules_without_their_data_are_skipped_with_a_reason(ds):
    result = evaluate(ds, default_pack())
    skipped = dict(result.skipped)
    assert "discharge_date" in skipped["med_activity_during_stay"]
    assert "contributions" in skipped["emp_contribution_arrears"]
    no_dates = make_dataset(visits=[dict(visit_id="V1", person_id="P1", clinic_id="C1")])
    skipped = dict(evaluate(no_dates, default_pack()).skipped)
    assert skipped["med_same_day_multi_clinic"] == "needs visits.date, absent or empty in this dataset"


def test_overrides_change_thresholds_without_touching_the_pack(ds):
    assert set(run("med_same_day_multi_clinic", ds).hits["entity_id"]) == {"P1", "P2"}
    result = run("med_same_day_multi_clinic", ds, overrides={"med_same_day_multi_clinic": {"min_clinics": 3}})
    assert result.hits["entity_id"].tolist() == ["P2"]
    assert default_pack().rule("med_same_day_multi_clinic").params["min_clinics"] == 2


def test_invalid_overrides_are_rejected_naming_the_rule_and_field(ds):
    with pytest.raises(RulePackError) as exc:
        evaluate(ds, default_pack(), overrides={"med_same_day_multi_clinic": {"min_clinics": 1}})
    p = exc.value.problems[0]
    assert (p.rule_id, p.field) == ("med_same_day_multi_clinic", "params.min_clinics")
    with pytest.raises(RulePackError, match="unknown rule"):
        evaluate(ds, default_pack(), overrides={"no_such_rule": {}})
    with pytest.raises(RulePackError, match="unknown rule"):
        evaluate(ds, default_pack(), disabled={"no_such_rule"})


def test_disabled_rules_do_not_run(ds):
    result = evaluate(ds, default_pack(), disabled={"med_over_prescribing"})
    assert "med_over_prescribing" not in set(result.hits["rule_id"])
    assert "med_over_prescribing" in result.disabled


def test_hit_features_per_entity(ds):
    hits = evaluate(ds, default_pack()).hits
    rules = [r.id for r in default_pack().rules if r.entity_type == "person"]
    f = hit_features(hits, "person", ["P0", "P1", "P2"], rule_ids=rules)
    assert f.loc["P0"].sum() == 0
    assert f.loc["P1", "rule_med_same_day_multi_clinic"] == 1 and f.loc["P1", "rule_med_split_admission"] == 0
    assert f.loc["P1", "rule_hit_count"] == 3  # same day, after death, over-prescribing
    assert f.loc["P1", "rule_severity_max"] == 3
    assert f.loc["P2", "rule_hit_count"] == 2 and f.loc["P2", "rule_severity_sum"] == 4
    assert list(f.index) == ["P0", "P1", "P2"]


def test_grade_caps_take_the_worst():
    hits = pd.DataFrame(
        {
            "rule_id": ["a", "b", "c"],
            "entity_type": "person",
            "entity_id": ["P1", "P1", "P2"],
            "severity": 4,
            "evidence": "{}",
            "grade_cap": ["C", "D", ""],
        }
    )
    caps = grade_caps(hits)
    assert caps.values.tolist() == [["person", "P1", "D", "b"]]


def test_list_and_test_rules(ds):
    listed = list_rules()
    assert "med_split_admission" in set(listed["rule_id"]) and listed["title_zh"].str.len().min() > 0
    table = test_rules(ds, default_pack(), disabled={"med_over_prescribing"})
    status = dict(zip(table["rule_id"], table["status"]))
    assert status["med_over_prescribing"] == "disabled"
    assert status["emp_contribution_arrears"] == "skipped"
    assert table.set_index("rule_id").loc["med_same_day_multi_clinic", "hits"] == 2
