"""Reasons name what made a score high, in plain language, with the ring and partners involved."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from composer.pipeline import explain_types, score_types
from explain.reasons import describe, reasons_from_contributions
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from scoring.registry import ModelRegistry
from scoring.score import EntityScores


def _score(sample, entity_type: str, tmp_path: Path) -> EntityScores:
    settings = Settings(home=tmp_path, progress=False)
    scored = score_types(
        sample.dataset,
        sample.proj,
        sample.features,
        sample.rules,
        sample.rings,
        settings,
        ModelRegistry(ResultsDB(settings.results_database_url)),
        types=[entity_type],
    )
    explain_types(scored, sample.dataset, sample.proj, sample.rules, sample.rings, settings)
    return scored[entity_type]


def test_templates_use_context_and_fall_back_to_generic_words() -> None:
    ctx = {"top_pharmacy": ("pharmacy H9", "药店 H9")}
    en, zh = describe("top_pharmacy_patient_share", 0.82, ctx)
    assert en == "82% of this clinic's patients bought at pharmacy H9 the same day as a visit"
    assert "药店 H9" in zh
    en, _ = describe("top_pharmacy_patient_share", 0.82)
    assert "a single pharmacy" in en
    en, _ = describe("rule_x", 1.0, rule_titles={"x": ("Visits after death", "死亡后就诊")})
    assert en == "rule fired: Visits after death"


def test_reasons_naming_the_same_ring_are_merged() -> None:
    contrib = pd.DataFrame({"rings": [2.0], "ring_collusion": [1.0], "visits": [0.5]}, index=["P1"])
    X = pd.DataFrame({"rings": [1.0], "ring_collusion": [1.0], "visits": [12.0]}, index=["P1"])
    ctx = pd.DataFrame({"ring": [("a collusion ring R1", "团伙 R1")], "ring_type": ["collusion"]}, index=["P1"])
    items = json.loads(reasons_from_contributions(contrib, X, 5, context=ctx).iloc[0])
    assert [i["feature"] for i in items] == ["rings", "visits"]
    assert items[0]["contribution"] == 3.0
    assert items[0]["text"] == "member of a collusion ring R1"


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
