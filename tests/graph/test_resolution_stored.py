"""The stored person model (graph/resolve/stored.py, composer/resolution.py): a run reuses the
served run's fitted parameters instead of running EM again, with the clusters of the run that
fitted them; an unusable stored model is never used (the stage fits again and says why)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from composer.resolution import MODEL_FILE, model_decision, resolve_stage
from composer.runs import run_dir
from graph.dataset import dataset_from_frames
from graph.resolve.stored import load_model, save_model
from riskgraph.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def persons(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    from synth.generator import generate

    out = tmp_path_factory.mktemp("synth")
    generate(persons=2_000, seed=5, out=out, progress=False)
    return pd.read_csv(out / "persons.csv", dtype=str)


@pytest.fixture(scope="module")
def first(persons: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    """A first run on a fresh home: it fits, and keeps the model in its run folder."""
    settings = Settings(home=tmp_path_factory.mktemp("home"), progress=False)
    resolved = resolve_stage(dataset_from_frames({"persons": persons}), settings, "run-a", stored_model=None)
    return settings, resolved


def _records(resolved) -> pd.DataFrame:
    return resolved.records.sort_values("person_id").reset_index(drop=True)


def test_the_first_run_fits_and_keeps_its_model_in_its_run_folder(first) -> None:
    settings, resolved = first
    assert resolved.summary["model"]["fitted"] is True
    assert resolved.summary["model"]["fitted_in"] == "run-a"
    stored, why = load_model(run_dir(settings, "run-a") / MODEL_FILE)
    assert stored is not None, why
    assert stored.records == resolved.summary["persons"]["records"] and stored.fitted_in == "run-a"
    assert not list((run_dir(settings, "run-a")).glob(".*.tmp"))  # written whole, then renamed in


def test_a_second_run_reuses_the_stored_model_with_identical_results(first, persons) -> None:
    settings, a = first
    b = resolve_stage(
        dataset_from_frames({"persons": persons}),
        settings,
        "run-b",
        stored_model=run_dir(settings, "run-a") / MODEL_FILE,
    )
    assert b.summary["model"]["fitted"] is False and b.summary["model"]["fitted_in"] == "run-a"
    pd.testing.assert_frame_equal(_records(a), _records(b))
    pd.testing.assert_frame_equal(a.review.reset_index(drop=True), b.review.reset_index(drop=True))
    assert b.summary["persons"] == a.summary["persons"]
    # the reusing run keeps the same model (the chain goes on; drift is measured from the fit)
    kept, _ = load_model(run_dir(settings, "run-b") / MODEL_FILE)
    assert kept is not None and kept.fitted_in == "run-a" and kept.model == a.model_json


def test_a_reused_model_still_decides_every_hard_pair_right(first, persons) -> None:
    """Parameters fitted on the population alone, reused on it with the 60 hard pairs added."""
    settings, _ = first
    records = pd.read_csv(FIXTURES / "hard_pairs_records.csv", dtype=str)
    pairs = pd.read_csv(FIXTURES / "hard_pairs.csv", dtype=str)
    both = dataset_from_frames({"persons": pd.concat([persons, records], ignore_index=True)})
    got = resolve_stage(both, settings, "run-h", stored_model=run_dir(settings, "run-a") / MODEL_FILE)
    assert got.summary["model"]["fitted"] is False
    golden = got.records.set_index("person_id")["golden_id"]
    wrong = [
        f"{p.pair} {p.expect} ({p.kind})"
        for p in pairs.itertuples()
        if (golden[p.left] == golden[p.right]) != (p.expect == "match")
    ]
    assert len(pairs) >= 60 and not wrong, wrong


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # a half-written file
        lambda text: text.replace('"m_probability": 0.', '"m_probability": 1.', 1),  # edited: checksum fails
        lambda text: "",
    ],
)
def test_a_damaged_stored_model_is_never_used_and_the_stage_fits_again(first, persons, tmp_path, damage, caplog):
    settings, a = first
    path = tmp_path / MODEL_FILE
    path.write_text(damage((run_dir(settings, "run-a") / MODEL_FILE).read_text()))
    assert load_model(path)[0] is None
    with caplog.at_level(logging.WARNING, logger="composer.resolution"):
        got = resolve_stage(dataset_from_frames({"persons": persons}), settings, "run-c", stored_model=path)
    assert got.summary["model"]["fitted"] is True
    assert any("fitting the person model again" in r.getMessage() for r in caplog.records)
    pd.testing.assert_frame_equal(_records(a), _records(got))  # EM on the same data: the same clusters


def test_the_model_is_fitted_again_on_request_on_drift_and_under_another_definition(first, tmp_path) -> None:
    settings, _ = first
    path = run_dir(settings, "run-a") / MODEL_FILE
    stored, _ = load_model(path)
    assert stored is not None
    n = stored.records
    assert model_decision(path, n, settings)[0] is not None
    assert model_decision(path, int(n * 1.19), settings)[0] is not None
    assert model_decision(path, int(n * 1.25), settings)[0] is None  # moved more than 20%
    assert model_decision(path, int(n * 0.75), settings)[0] is None
    assert model_decision(path, n, settings.model_copy(update={"resolve_refit": True}))[0] is None
    assert model_decision(None, n, settings)[0] is None
    other = tmp_path / MODEL_FILE
    body = json.loads(path.read_text())
    other.write_text(json.dumps(body | {"fingerprint": "0" * 16}))
    assert model_decision(other, n, settings) == (None, f"the stored model {other} is not usable: " + _foreign())
    save_model(other, stored.model, records=n, fitted_in="x")
    assert model_decision(other, n, settings)[0] is not None


def _foreign() -> str:
    return "fitted under another model definition"
