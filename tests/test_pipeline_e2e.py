"""End to end: the pipeline on the bundled sample produces the whole output contract."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from composer.pipeline import PipelineResult, run_pipeline
from explain.report import model_plots
from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN
from riskgraph.errors import InvalidDataset
from riskgraph.settings import Settings
from tests.factories import SAMPLE
from tests.processes import child_pids

# Documented floor (docs/benchmarks.md): person ROC-AUC of risk_score against the sample's
# whole truth (labelled and unlabelled persons alike).
PERSON_AUC_FLOOR = 0.85
SERIOUS_DEFAULT = {  # rules/packs/default.yaml: serious: true
    "any_activity_after_death",
    "ben_pension_after_death",
    "ben_fraud_over_10000",
    "ben_claim_after_ineligible_6m",
    "emp_fake_enrolment_serious",
}
SCORE_COLUMNS = [
    "entity_type",
    "entity_id",
    "risk_score",
    "credit_points",
    "grade",
    "model_version",
    "reasons",
    "rule_hits",
    "priority",
    "amount_at_stake",
    "golden_id",  # appended by person resolution (docs/resolution.md)
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineResult, Path, Settings]:
    tmp = tmp_path_factory.mktemp("e2e")
    settings = Settings(home=tmp / "home", store_url=f"memory://{tmp / 'store'}", progress=False)
    out = tmp / "out"
    return run_pipeline(data=SAMPLE, out=out, settings=settings), out, settings


def test_output_files_follow_the_contract(run) -> None:
    _, out, _ = run
    for name in ("scores.csv", "rule_hits.csv", "rings.csv", "report.html", "manifest.json"):
        assert (out / name).stat().st_size > 0, name
    scores = pd.read_csv(out / "scores.csv", dtype={"entity_id": str})
    assert list(scores.columns) == SCORE_COLUMNS
    assert scores["risk_score"].between(0, 1).all()
    assert scores["credit_points"].between(300, 900).all()
    assert set(scores["grade"]) <= {"A", "B", "C", "D"}
    assert scores["model_version"].notna().all()
    for cell in scores["reasons"].head(200):
        for reason in json.loads(cell):
            assert set(reason) == {"code", "direction", "value", "contribution", "text", "text_zh"}
    assert all(isinstance(json.loads(c), list) for c in scores["rule_hits"])
    hits = pd.read_csv(out / "rule_hits.csv")
    assert list(hits.columns) == ["rule_id", "entity_type", "entity_id", "severity", "evidence"]
    assert all(json.loads(e) for e in hits["evidence"].head(100))
    rings = pd.read_csv(out / "rings.csv")
    assert list(rings.columns) == ["ring_id", "ring_type", "ring_score", "entity_type", "entity_id"]
    report = (out / "report.html").read_text()
    for section in ("ROC-AUC", "Grade distribution", "Fairness", "disparate impact", "Rings", "data:image/png;base64"):
        assert section in report
    # the sample has 14 confirmed-fraud persons: metrics on fewer than 30 per class are withheld, saying why
    assert "Calibration" in report or "Metrics withheld: only" in report
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"input_hash", "models", "timings_s", "row_counts"} <= set(manifest)


def test_the_reports_figures_are_those_of_the_runs_models(run) -> None:
    """The figures are drawn in a worker as soon as the models are scored, while the reasons are
    worded; they are the figures of the models the run served, in the same order."""
    result, out, _ = run
    written = re.findall(r"<img[^>]*>", (out / "report.html").read_text())
    drawn = re.findall(r"<img[^>]*>", "".join(model_plots(result.models).values()))
    assert written and written == drawn


def test_every_entity_gets_a_score(run) -> None:
    result, out, _ = run
    scores = pd.read_csv(out / "scores.csv", dtype={"entity_id": str})
    for t in ENTITY_TYPES:
        ids = set(result.dataset.table(ENTITY_TABLE[t])[ID_COLUMN[t]])
        assert set(scores.loc[scores["entity_type"] == t, "entity_id"]) == ids, t


def test_planted_fraudsters_rank_high(run) -> None:
    _, out, _ = run
    scores = pd.read_csv(out / "scores.csv", dtype={"entity_id": str})
    truth = pd.read_csv(SAMPLE / "truth" / "truth.csv", dtype=str)
    persons = scores[scores["entity_type"] == "person"]
    bad = set(truth.loc[truth["entity_type"] == "person", "entity_id"])
    auc = roc_auc_score(persons["entity_id"].isin(bad), persons["risk_score"])
    assert auc >= PERSON_AUC_FLOOR, auc


def test_metrics_are_out_of_fold(run) -> None:
    result, _, _ = run
    person = result.models["person"]
    assert person.kind == "supervised"
    labels = result.dataset.tables["labels"]
    labelled = labels[labels["entity_type"] == "person"].set_index("entity_id")["label"]
    scores = result.scores[result.scores["entity_type"] == "person"].set_index("entity_id")["risk_score"]
    # a labelled entity's published score is its out-of-fold prediction
    oof = person.oof["oof"].round(6)
    assert (scores.reindex(oof.index) - oof).abs().max() < 1e-9
    assert person.metrics["roc_auc"] == pytest.approx(roc_auc_score(labelled.reindex(oof.index), person.oof["oof"]))


def test_bad_dataset_changes_nothing(run, tmp_path: Path) -> None:
    result, out, settings = run
    before = (out / "scores.csv").read_bytes()
    bad = tmp_path / "bad"
    shutil.copytree(SAMPLE, bad)
    visits = pd.read_csv(bad / "visits.csv", dtype=str)
    visits.loc[5, "date"] = "2025-02-31"
    visits.to_csv(bad / "visits.csv", index=False)
    with pytest.raises(InvalidDataset, match=r"visits.csv row 6 column 'date'"):
        run_pipeline(data=bad, out=out, settings=settings)
    assert (out / "scores.csv").read_bytes() == before
    from graph.factory import open_store

    assert open_store(settings.store, settings).snapshot().content_hash == result.manifest["input_hash"]


def test_default_order_puts_every_serious_d_cap_first(run) -> None:
    """Triage (docs/triage.md): per type, entities capped to D by a serious rule first, then
    the other capped ones, then by expected loss; priority is 1..n without gaps."""
    result, out, _ = run
    scores = pd.read_csv(out / "scores.csv", dtype={"entity_id": str})
    hits = result.rule_hits
    serious = {r for r in hits["rule_id"].unique() if r in SERIOUS_DEFAULT}
    assert serious, "the sample has serious-discredit hits"
    for t, part in scores.groupby("entity_type"):
        part = part.sort_values("priority")
        assert part["priority"].tolist() == list(range(1, len(part) + 1))
        flagged = set(hits.loc[(hits["entity_type"] == t) & hits["rule_id"].isin(serious), "entity_id"].astype(str))
        top = part.head(len(flagged))
        assert set(top["entity_id"]) == flagged, t
        assert (top["grade"] == "D").all()
    person = scores[scores["entity_type"] == "person"]
    known = person["amount_at_stake"].dropna()
    assert len(known) and (known > 0).all()


def test_a_run_failing_while_its_figures_are_drawn_leaves_no_worker(tmp_path: Path) -> None:
    """A run that fails after scoring (here: the disk full) stops the worker drawing its figures."""
    settings = Settings(
        home=tmp_path / "home", store_url=f"memory://{tmp_path / 'store'}", progress=False, fault="after_scoring:enospc"
    )
    before = child_pids()
    with pytest.raises(OSError, match="fault point after_scoring"):
        run_pipeline(data=SAMPLE, out=tmp_path / "out", settings=settings)
    assert child_pids() <= before
