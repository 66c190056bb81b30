"""Reasons in the catalogue's words: codes, units, plurals, both directions, no raw names, no
protected attributes; the collusion link named for collusion members."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from composer.pipeline import explain_types, run_catalogue, score_types
from explain.catalogue import LOWERS, RAISES, built_in, format_value
from explain.improve import improvement
from explain.reasons import MAX_REASONS, reasons_from_contributions
from features.build import build_features
from features.graph_features import add_graph_features
from graph.dictionary import ColumnLabel, load_dictionary
from riskgraph.errors import InvalidDataset
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from scoring.registry import ModelRegistry
from scoring.score import EntityScores

SCHEMA = {"code", "direction", "value", "contribution", "text", "text_zh"}
CODE = re.compile(r"^RG-[A-Z]{1,3}-[A-Za-z0-9_]+$")
SCIENTIFIC = re.compile(r"(?<![\w-])\d+(\.\d+)?[eE][+-]?\d+\b")
# English plural slips: "1 visits", "2 visit in", ...
ONE_PLURAL = re.compile(
    r"(?<![\d.,])1 (visits|days|months|rules|clinics|pharmacies|persons|employees|stays|times|years)\b"
)
MANY_SINGULAR = re.compile(r"\b([02-9]|\d{2,}) (visit|day|month|rule|person|employee|stay|time|year)\b")


def _score(sample, entity_type: str, tmp_path: Path, features=None) -> EntityScores:
    settings = Settings(home=tmp_path, progress=False)
    scored = score_types(
        sample.dataset,
        sample.proj,
        features or sample.features,
        sample.rules,
        sample.rings,
        settings,
        ModelRegistry(ResultsDB(settings.results_database_url)),
        types=[entity_type],
    )
    catalogue = run_catalogue(sample.rules, load_dictionary(sample.folder))
    explain_types(scored, sample.dataset, sample.proj, sample.rules, sample.rings, settings, catalogue)
    return scored[entity_type]


def test_units_plurals_and_context() -> None:
    c = built_in()
    assert c.describe("max_clinics_one_day", 3.0)[1:] == (
        "Visited 3 clinics on a single day",
        "单日在 3 家医疗机构就诊",
    )
    assert c.describe("inpatient_stays", 1.0)[1] == "1 inpatient stay"
    assert c.describe("arrears_months", 0.0)[1] == "No months of contributions in arrears"
    assert c.describe("benefits_after_death", 14410.0)[1:] == (
        "14,410 yuan of benefits paid after the recorded death date",
        "死亡后领取待遇 14,410 元",
    )
    assert c.describe("paid_share", 0.4167)[1] == "Paid 42% of contributions due"
    assert format_value("share", 0.001, "en") == "under 1%"
    ctx = {"top_pharmacy": ("pharmacy H9", "药店 H9")}
    code, en, zh = c.describe("top_pharmacy_patient_share", 0.82, ctx)
    assert code == "RG-M-028" and "pharmacy H9" in en and "药店 H9" in zh
    assert "a single pharmacy" in c.describe("top_pharmacy_patient_share", 0.82)[1]
    run = c.for_run(rules={"x": ("RG-R-077", "Visits after death", "死亡后就诊")})
    assert run.describe("rule_x", 1.0) == (
        "RG-R-077",
        "Flagged by the rule: Visits after death",
        "触发规则：死亡后就诊",
    )
    assert c.describe("nb_visited_clinic_top_pharmacy_share", 0.4)[0] == "RG-NV-M027"


def test_words_kept_for_a_context_are_the_words_of_that_context() -> None:
    """The catalogue keeps words per (feature, value, the context fields its templates name):
    every built-in feature, worded in turn under contexts that differ in one field, reads as
    it does when worded afresh."""
    c = built_in()
    contexts = [
        {},
        {"top_pharmacy": ("pharmacy H9", "药店 H9"), "ring": ("ring 7", "团伙 7"), "ring_type": "collusion"},
        {"top_pharmacy": ("pharmacy K2", "药店 K2"), "ring": ("ring 7", "团伙 7"), "ring_type": "collusion"},
        {"ring": ("ring 8", "团伙 8"), "ring_type": "identity", "pair_clinic": "clinic C1"},
        {"pair_clinic": "clinic C1", "pair_pharmacy": "pharmacy P1", "pair_days": 3, "other": "x"},
        {"pair_clinic": "clinic C2", "pair_pharmacy": "pharmacy P1", "pair_days": 3, "other": "y"},
    ]
    features = [*c.features, *(f"ring_{t}" for t in c.ring_types)]
    for _ in range(2):  # the second pass reads the kept words
        for f in features:
            for ctx in contexts:
                for v in (0.0, 1.0, 3.0):
                    assert c.describe(f, v, ctx) == c._describe(f, v, ctx), (f, v, ctx)
    assert c.describe("ring_collusion", 1.0, contexts[1]) != c.describe("ring_collusion", 1.0, contexts[3])


def test_user_columns_take_labels_from_the_data_dictionary(tmp_path: Path) -> None:
    c = built_in().for_run(rules={}, columns={"arrears_fines": ColumnLabel("arrears_fines", "Fines", "罚款", "yuan")})
    assert c.describe("arrears_fines", 2500.0)[1:] == ("Fines: 2,500 yuan", "罚款：2,500 元")
    assert c.describe("input_arrears_fines", 2500.0)[0] == "RG-U-arrears_fines"
    assert c.describe("no_label", 3.0)[1] == "no_label: 3"  # no dictionary entry: the raw name
    (tmp_path / "columns.csv").write_text("column,label_en,label_zh,unit,protected\nx,X,叉,count,maybe\n")
    with pytest.raises(InvalidDataset) as err:
        load_dictionary(tmp_path)
    assert "columns.csv" in str(err.value) and "protected" in str(err.value)


def test_reasons_take_both_directions_merge_rings_and_stop_at_four() -> None:
    cols = ["rings", "ring_collusion", "visits", "paid_share", "rule_hits", "gender", "distinct_clinics"]
    contrib = pd.DataFrame([[2.0, 1.0, 0.5, -0.9, -0.1, 3.0, 0.05]], columns=cols, index=["P1"])
    X = pd.DataFrame([[1.0, 1.0, 12.0, 1.0, 0.0, "F", 2.0]], columns=cols, index=["P1"])
    ctx = pd.DataFrame({"ring": [("a collusion ring R1", "团伙 R1")], "ring_type": ["collusion"]}, index=["P1"])
    items = json.loads(reasons_from_contributions(contrib, X, built_in(), context=ctx).iloc[0])
    assert len(items) == MAX_REASONS
    assert all(set(i) == SCHEMA for i in items)
    assert items[0]["text"] == "Member of a collusion ring R1" and items[0]["contribution"] == 3.0  # merged
    assert [i["direction"] for i in items] == [RAISES, LOWERS, RAISES, LOWERS]
    assert "Gender" not in json.dumps(items)  # protected: passed over despite the largest push


def test_improvement_names_the_next_band_and_what_holds_it_back() -> None:
    reasons = [
        {
            "code": "RG-M-006",
            "direction": RAISES,
            "contribution": 1.2,
            "text": "Visited 3 clinics on a single day",
            "text_zh": "单日在 3 家医疗机构就诊",
        },
        {"code": "RG-B-001", "direction": LOWERS, "contribution": -0.4, "text": "x", "text_zh": "x"},
    ]
    bands = {"A": 650, "B": 550, "C": 450}
    line = improvement(points=512.3, grade="C", score_grade="C", bands=bands, reasons=reasons, catalogue=built_in())
    assert line["next_grade"] == "B" and line["points_needed"] == 38 and line["held_back_by"] == ["RG-M-006"]
    assert line["text"].startswith("To reach grade B (550 points) it needs 38 more points")
    capped = improvement(points=700, grade="D", score_grade="A", bands=bands, reasons=reasons, catalogue=built_in())
    assert capped["next_grade"] is None and "rule finding" in capped["text"]


@pytest.mark.parametrize("entity_type", ["person", "employer", "clinic", "pharmacy", "agency"])
def test_every_reason_written_reads_as_plain_language(sample, tmp_path: Path, entity_type: str) -> None:
    """Scan every reason of a synthetic run: schema, codes, no raw feature name, no scientific
    notation, no broken plural, no template leftovers, and never a protected attribute."""
    scored = _score(sample, entity_type, tmp_path)
    names = {c for c in scored.matrix.columns if "_" in c}  # type: ignore[union-attr]
    written = [r for cell in scored.table["reasons"] for r in json.loads(cell)]
    assert written
    for r in written:
        assert set(r) == SCHEMA and CODE.match(r["code"]), r
        for text in (r["text"], r["text_zh"]):
            assert not SCIENTIFIC.search(text), text
            assert not any(n in text for n in names), text
            assert not re.search(r"[{}\[\]]", text.split(" (ring ")[0]), text
            assert not re.search(r"(?i)gender|\baged? |chronic|性别|年龄|慢性", text), text
        assert not ONE_PLURAL.search(r["text"]) and not MANY_SINGULAR.search(r["text"]), r["text"]
    per_row = scored.table["reasons"].map(lambda s: len(json.loads(s)))
    assert per_row.max() <= MAX_REASONS


def test_protected_attributes_stay_out_of_models_unless_opted_in(sample, tmp_path: Path) -> None:
    default = _score(sample, "person", tmp_path / "default")
    assert not {"gender", "birth_date_years_ago"} & set(default.matrix.columns)  # type: ignore[union-attr]
    everything = add_graph_features(build_features(sample.dataset, sample.proj), sample.proj)  # as when opted in
    opted = _score(sample, "person", tmp_path / "opted", everything)
    assert {"gender", "birth_date_years_ago", "chronic"} <= set(opted.matrix.columns)  # type: ignore[union-attr]
    texts = " ".join(opted.table["reasons"])
    assert "Gender" not in texts and "Aged" not in texts and "Chronic" not in texts


def _told(reasons: str) -> bool:
    texts = " | ".join(r["text"] for r in json.loads(reasons))
    return ("collusion ring" in texts or "the same day" in texts) and ("pharmacy H" in texts or "clinic C" in texts)


def test_collusion_members_are_told_the_collusion_link(sample, tmp_path: Path) -> None:
    """Planted collusion persons, and clinics/pharmacies of detected collusion rings, get a reason
    naming the link: the ring with its clinic and pharmacy, or the same-day clinic-pharmacy pair."""
    truth = sample.truth[sample.truth["pattern"] == "collusion"]
    persons = truth.loc[truth["entity_type"] == "person", "entity_id"]
    assert len(persons), "the generator plants at least one collusion ring"
    scores = _score(sample, "person", tmp_path / "person").table.set_index("entity_id")
    told = scores.loc[persons, "reasons"].map(_told)
    assert told.mean() >= 0.8, scores.loc[persons, "reasons"].tolist()
    rings = sample.rings.members
    for entity_type in ("clinic", "pharmacy"):
        ids = rings.loc[(rings["ring_type"] == "collusion") & (rings["entity_type"] == entity_type), "entity_id"]
        scores = _score(sample, entity_type, tmp_path / entity_type).table.set_index("entity_id")
        assert scores.loc[ids, "reasons"].map(_told).all()


def test_every_built_in_feature_has_a_catalogue_entry(sample) -> None:
    """Only the dataset's own extra columns may fall back to RG-U codes."""
    catalogue = run_catalogue(sample.rules, load_dictionary(sample.folder))
    extras = set(load_dictionary(sample.folder))
    for entity_type, frame in sample.features.items():
        for column in frame.columns:
            words = catalogue.describe(column, 1.0)
            if words is None:
                continue  # protected
            code = words[0]
            base = column.split("_", 3)[-1] if column.startswith("nb_") else column
            assert "-U" not in code or any(base.endswith(e) for e in extras), (entity_type, column, code)


def test_reason_docs_are_current() -> None:
    from explain.reason_docs import DOC, render

    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m explain.reason_docs"
