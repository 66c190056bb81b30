"""SAME_PERSON links through the run lifecycle (issue 16, docs/resolution.md): a run writes its
resolution's links into the snapshot it staged, they become visible with its one commit, a run
that fails after its resolution leaves none behind, and they change no feature, rule or score."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from composer.pipeline import ModelSource, PipelineResult, model_excluded_columns, run_pipeline
from composer.runs import try_recover
from features.build import build_features
from features.graph_features import add_graph_features
from graph.factory import open_store
from graph.projection import Projection
from graph.store import SAME_PERSON
from riskgraph.errors import NoSnapshot
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from synth.generator import generate

if TYPE_CHECKING:
    from graph.neo4j_store import Neo4jGraphStore


def _settings(home: Path, **overrides: object) -> Settings:
    base: dict[str, object] = dict(
        home=home,
        store_url=f"memory://{home / 'store'}",
        progress=False,
        model={"explain_top": 60, "n_estimators": 40, "folds": 3, "threads": 1},
    )
    return Settings(**(base | overrides))  # type: ignore[arg-type]


def _resolved(out: Path) -> pd.DataFrame:
    return pd.read_csv(
        out / "resolved_persons.csv",
        dtype={"person_id": str, "golden_id": str, "matched_on": str},
        keep_default_na=False,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("same-person")
    generate(persons=400, seed=5, out=root / "a", progress=False)
    generate(persons=300, seed=6, out=root / "b", progress=False)
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def run(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineResult, Path, Settings]:
    home = tmp_path_factory.mktemp("same-person-home")
    settings = _settings(home)
    out = home / "out"
    return run_pipeline(data=data[0], out=out, settings=settings), out, settings


def test_the_committed_snapshot_holds_the_resolution_s_links(run: tuple[PipelineResult, Path, Settings]) -> None:
    result, out, settings = run
    resolved = _resolved(out)
    merged = resolved[resolved["person_id"] != resolved["golden_id"]].sort_values("person_id")
    assert len(merged) > 0  # the synthetic data plants duplicate records
    store = open_store(settings.store, settings)
    try:
        links = store.same_person()
        snapshot = store.snapshot()
    finally:
        store.close()
    assert snapshot is not None and snapshot.id == ResultsDB.of(settings).run(result.run_id)["snapshot_id"]
    assert links["person_id"].tolist() == merged["person_id"].tolist()
    assert links["golden_id"].tolist() == merged["golden_id"].tolist()
    assert links["matched_on"].tolist() == merged["matched_on"].tolist()
    expected = pd.to_numeric(merged["match_probability"]).to_numpy()
    pd.testing.assert_series_equal(
        links["match_probability"], pd.Series(expected, name="match_probability"), check_exact=False
    )
    assert result.manifest["resolution"]["same_person_links"] == len(merged)
    assert json.loads((out / "manifest.json").read_text())["resolution"]["same_person_links"] == len(merged)


def test_same_person_changes_no_feature_rule_or_score(run: tuple[PipelineResult, Path, Settings]) -> None:
    """The stages work on the golden dataset and its own projection: the run's model matrices are
    exactly those of the golden dataset alone, whatever links the store holds, and every merged
    record carries its golden person's score."""
    result, out, settings = run
    golden = result.golden
    assert golden is not None
    assert SAME_PERSON not in Projection(golden).relationships
    store = open_store(settings.store, settings)
    try:
        links = store.same_person()
    finally:
        store.close()
    assert len(links) > 0
    proj = Projection(golden)
    matrices = add_graph_features(build_features(golden, proj, exclude=model_excluded_columns(golden, {})), proj)
    for t in ("person", "employer"):
        saved = pd.read_parquet(settings.home / "runs" / result.run_id / "features" / f"{t}.parquet")
        common = [c for c in saved.columns if c in matrices[t].columns]  # the features, not the signals
        assert len(common) > len(saved.columns) // 2
        pd.testing.assert_frame_equal(saved[common], matrices[t][common], check_exact=True, obj=t)
    scores = pd.read_csv(out / "scores.csv", dtype={"entity_id": str, "golden_id": str}, keep_default_na=False)
    by_id = scores[scores["entity_type"] == "person"].set_index("entity_id")
    cols = ["risk_score", "credit_points", "grade", "reasons", "rule_hits"]
    pd.testing.assert_frame_equal(
        by_id.loc[links["person_id"], cols].reset_index(drop=True),
        by_id.loc[links["golden_id"], cols].reset_index(drop=True),
    )


def test_a_rescoring_job_keeps_the_snapshot_s_links(run: tuple[PipelineResult, Path, Settings]) -> None:
    """A job re-scores the served snapshot (no --data): it stages no snapshot, so it writes no
    links; the snapshot keeps those of the run that loaded it (docs/resolution.md)."""
    _, _, settings = run
    store = open_store(settings.store, settings)
    try:
        before, snapshot = store.same_person(), store.snapshot()
    finally:
        store.close()
    again = run_pipeline(data=None, out=None, settings=settings, models=ModelSource.CHAMPION, kind="nightly-rescore")
    assert "same_person_links" not in again.manifest["resolution"]
    store = open_store(settings.store, settings)
    try:
        assert store.snapshot() == snapshot
        pd.testing.assert_frame_equal(store.same_person(), before)
    finally:
        store.close()


def test_a_later_run_reuses_the_served_run_s_resolution_model(run: tuple[PipelineResult, Path, Settings]) -> None:
    """The first run fits the person model and keeps it in its folder; a later run reuses it (no
    EM) with the same resolution; `resolve_refit` fits again (docs/resolution.md)."""
    result, out, settings = run
    assert result.manifest["resolution"]["model"]["fitted"] is True
    assert (settings.home / "runs" / result.run_id / "person_model.json").exists()
    again = run_pipeline(data=None, out=None, settings=settings, models=ModelSource.CHAMPION, kind="nightly-rescore")
    model = again.manifest["resolution"]["model"]
    assert model["fitted"] is False and model["fitted_in"] == result.run_id, model
    pd.testing.assert_frame_equal(_resolved(settings.home / "runs" / again.run_id / "out"), _resolved(out))
    refit = settings.model_copy(update={"resolve_refit": True})
    third = run_pipeline(data=None, out=None, settings=refit, models=ModelSource.CHAMPION, kind="nightly-rescore")
    assert third.manifest["resolution"]["model"]["fitted"] is True
    assert "resolve_refit" in third.manifest["resolution"]["model"]["why"]
    pd.testing.assert_frame_equal(_resolved(settings.home / "runs" / third.run_id / "out"), _resolved(out))


def test_a_run_failing_after_its_resolution_leaves_no_links_behind(
    run: tuple[PipelineResult, Path, Settings], data: tuple[Path, Path], tmp_path: Path
) -> None:
    result, out, settings = run
    store = open_store(settings.store, settings)
    try:
        before, served = store.same_person(), store.snapshot()
    finally:
        store.close()
    failing = _settings(settings.home, fault="after_resolve:enospc")
    with pytest.raises(OSError, match="after_resolve"):
        run_pipeline(data=data[1], out=tmp_path / "out", settings=failing)
    store = open_store(settings.store, settings)
    try:
        assert store.snapshot() == served  # the served snapshot, its links unchanged
        pd.testing.assert_frame_equal(store.same_person(), before)
        kept = {r["snapshot_id"] for r in ResultsDB.of(settings).runs("committed")}
        assert set(store.snapshot_ids()) == kept  # the failed run's snapshot and its links are gone
        for snap in store.snapshot_ids():
            assert set(store.same_person(snap)["person_id"]) <= set(before["person_id"])
    finally:
        store.close()
    assert not (tmp_path / "out" / "resolved_persons.csv").exists()


def test_a_run_killed_after_its_resolution_shows_no_links_and_recovery_removes_them(
    run: tuple[PipelineResult, Path, Settings], data: tuple[Path, Path], tmp_path: Path
) -> None:
    """SIGKILL right after the links are written into the staged snapshot: readers still see the
    served snapshot and its links only; the next start's recovery deletes the staged snapshot,
    links and all."""
    _, _, settings = run
    home = tmp_path / "home"
    shutil.copytree(settings.home, home)
    (home / "run.lock").unlink(missing_ok=True)
    copied = _settings(home)
    store = open_store(copied.store, copied)
    try:
        before, served = store.same_person(), store.snapshot()
    finally:
        store.close()
    environ = {
        **os.environ,
        "RISKGRAPH_HOME": str(home),
        "RISKGRAPH_STORE_URL": copied.store,
        "RISKGRAPH_PROGRESS": "false",
        "RISKGRAPH_FAULT": "after_resolve:kill",
    }
    environ.pop("RISKGRAPH_RESULTS_URL", None)
    killed = subprocess.run(
        [sys.executable, "-m", "cli.main", "pipeline", "--data", str(data[1]), "--out", str(tmp_path / "out")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = open_store(copied.store, copied)
    try:
        staged = [s for s in store.snapshot_ids() if s != served.id and s not in _committed(copied)]
        assert len(staged) == 1 and len(store.same_person(staged[0])) > 0  # written, then killed
        assert store.snapshot() == served
        pd.testing.assert_frame_equal(store.same_person(), before)  # nothing of it visible
        try_recover(copied, ResultsDB.of(copied), store)
        assert set(store.snapshot_ids()) == _committed(copied)
        with pytest.raises(NoSnapshot):
            store.same_person(staged[0])
        pd.testing.assert_frame_equal(store.same_person(), before)
    finally:
        store.close()


def _committed(settings: Settings) -> set[str]:
    return {r["snapshot_id"] for r in ResultsDB.of(settings).runs("committed") if r["snapshot_id"]}


@pytest.mark.neo4j
def test_on_neo4j_a_failed_run_leaves_no_same_person_relationship(
    data: tuple[Path, Path], tmp_path: Path, neo4j_store: Neo4jGraphStore
) -> None:
    settings = _settings(tmp_path / "home", store_url=neo4j_store.url)
    run_pipeline(data=data[0], out=tmp_path / "out", settings=settings)
    count = "MATCH (:Person)-[r:SAME_PERSON]->(:Person) RETURN count(r) AS n"
    before, served = neo4j_store.same_person(), neo4j_store.snapshot()
    assert len(before) > 0 and neo4j_store._run(count)[0]["n"] == len(before)
    failing = _settings(tmp_path / "home", store_url=neo4j_store.url, fault="after_resolve:enospc")
    with pytest.raises(OSError, match="after_resolve"):
        run_pipeline(data=data[1], out=tmp_path / "out2", settings=failing)
    assert neo4j_store.snapshot() == served
    pd.testing.assert_frame_equal(neo4j_store.same_person(), before)
    assert neo4j_store.snapshot_ids() == [served.id]
    assert neo4j_store._run(count)[0]["n"] == len(before)  # the failed run's links are deleted
