"""Loading and validating rule packs: every problem names the file, the rule and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from riskgraph.errors import InvalidRulePack
from rules import DEFAULT_PACK_DIR, RulePackError, default_pack, load_pack, load_packs

GOOD_RULE = dict(
    id="med_x",
    title_zh="测试",
    title_en="Test",
    entity_type="person",
    severity="low",
    detector="over_prescribing",
    params={"max_days_supply": 7},
)


def write(tmp_path: Path, rules: list, name: str = "p.yaml", **header) -> Path:
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump(
            {"name": "p" + name.split(".")[0], "version": "1", **header, "rules": rules}, allow_unicode=True
        ),
        encoding="utf-8",
    )
    return path


def problem(exc: pytest.ExceptionInfo) -> tuple:
    p = exc.value.problems[0]
    return p.file, p.rule_id, p.field


def test_default_pack_is_valid_and_versioned():
    pack = default_pack()
    assert pack.name == "default" and pack.version
    assert len(pack.rules) >= 16
    assert load_packs(DEFAULT_PACK_DIR)[0].rules == pack.rules


def test_good_pack_loads(tmp_path):
    pack = load_pack(write(tmp_path, [GOOD_RULE]))
    assert pack.rule("med_x").severity_level == 1


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"severity": "huge"}, "severity", "low"),
        ({"entity_type": "hospital"}, "entity_type", "person"),
        ({"detector": "os.system"}, "detector", "unknown detector"),
        ({"params": {"max_days_supply": -1}}, "params.max_days_supply", "greater than 0"),
        ({"params": {"max_days": 7}}, "params.max_days", "Extra inputs"),
        ({"params": {"max_days_supply": "__import__('os')"}}, "params.max_days_supply", "number"),
        ({"evidence": ["purchase_id", "secret"]}, "evidence", "secret"),
        ({"grade_cap": "E"}, "grade_cap", "D"),
        ({"entity_type": "clinic"}, "entity_type", "finds person"),
        ({"id": "Bad Id!"}, "id", "pattern"),
    ],
)
def test_invalid_rule_names_file_rule_and_field(tmp_path, change, field, words):
    path = write(tmp_path, [GOOD_RULE, {**GOOD_RULE, "id": "med_y", **change}])
    with pytest.raises(InvalidRulePack) as exc:
        load_pack(path)
    rule_id = change.get("id", "med_y")
    assert problem(exc) == (str(path), rule_id, field)
    assert words in str(exc.value) and str(path) in str(exc.value) and f"rule '{rule_id}'" in str(exc.value)


def test_missing_field_and_duplicate_id(tmp_path):
    bad = {k: v for k, v in GOOD_RULE.items() if k != "title_zh"}
    path = write(tmp_path, [GOOD_RULE, GOOD_RULE, {**bad, "id": "med_z"}])
    with pytest.raises(RulePackError) as exc:
        load_pack(path)
    found = {(p.rule_id, p.field) for p in exc.value.problems}
    assert found == {("med_x", "id"), ("med_z", "title_zh")}


def test_bad_header_and_bad_yaml(tmp_path):
    with pytest.raises(RulePackError) as exc:
        load_pack(write(tmp_path, [GOOD_RULE], owner="me"))
    assert exc.value.problems[0].field == "owner"
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nrules: [\n", encoding="utf-8")
    with pytest.raises(RulePackError, match="not valid YAML"):
        load_pack(path)
    path.write_text("!!python/object/apply:os.system ['echo hi']\n", encoding="utf-8")
    with pytest.raises(RulePackError, match="not valid YAML"):
        load_pack(path)


def test_load_packs_rejects_a_rule_id_in_two_files(tmp_path):
    write(tmp_path, [GOOD_RULE], "a.yaml")
    second = write(tmp_path, [GOOD_RULE], "b.yaml")
    with pytest.raises(RulePackError) as exc:
        load_packs(tmp_path)
    assert problem(exc) == (str(second), "med_x", "id")


def test_load_packs_reports_every_bad_file_and_returns_nothing(tmp_path):
    write(tmp_path, [{**GOOD_RULE, "severity": "x"}], "a.yaml")
    write(tmp_path, [{**GOOD_RULE, "id": "med_q", "detector": "nope"}], "b.yaml")
    with pytest.raises(RulePackError) as exc:
        load_packs(tmp_path)
    assert [(Path(p.file).name, p.rule_id, p.field) for p in exc.value.problems] == [
        ("a.yaml", "med_x", "severity"),
        ("b.yaml", "med_q", "detector"),
    ]
