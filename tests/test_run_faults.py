"""The fault suite: the pipeline is killed (SIGKILL) at every stage boundary and inside the result
write and the commit, meets a full disk and a read-only output, and runs twice at once. After
each, a freshly started server serves, for every entity, exactly the grades of ONE completed run,
and the store's snapshot, the champions and the output files are that run's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from graph.factory import open_store
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from scoring.registry import ModelRegistry
from synth.generator import generate
from tests.factories import SAMPLE

pytestmark = pytest.mark.slow
KEY = "fault-suite-admin-key-0123456789"
FAST = {
    "RISKGRAPH_PROGRESS": "false",
    "RISKGRAPH_MODEL__N_ESTIMATORS": "40",
    "RISKGRAPH_MODEL__FOLDS": "3",
    "RISKGRAPH_MODEL__EXPLAIN_TOP": "100",
}


def riskgraph(home: Path, *args: str, fault: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **FAST, "RISKGRAPH_HOME": str(home), "RISKGRAPH_FAULT": fault, **env}
    environ.pop("RISKGRAPH_STORE_URL", None)
    environ.pop("RISKGRAPH_RESULTS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=environ, capture_output=True, text=True, timeout=600
    )


def start_pipeline(home: Path, data: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    environ = {**os.environ, **FAST, "RISKGRAPH_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "pipeline", "--data", str(data), "--out", str(out), *extra],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def second_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faults") / "b"
    generate(persons=400, seed=5, out=folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A home and output folder after one complete run on the sample (run A)."""
    root = tmp_path_factory.mktemp("baseline")
    home, out = root / "home", root / "out"
    done = riskgraph(home, "pipeline", "--data", str(SAMPLE), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return home, out, json.loads((out / "manifest.json").read_text())["run_id"]


@pytest.fixture
def copy_of(committed: tuple[Path, Path, str], tmp_path: Path) -> tuple[Path, Path, str]:
    home, out, run_id = committed
    shutil.copytree(home, tmp_path / "home")
    shutil.copytree(out, tmp_path / "out")
    (tmp_path / "home" / "run.lock").unlink(missing_ok=True)
    return tmp_path / "home", tmp_path / "out", run_id


def served_state(home: Path, out: Path) -> str:
    """Checks that a fresh server serves one whole committed run; returns its id."""
    settings = Settings(home=home, progress=False, api_scheduler=False, api_keys={KEY: "admin"})
    app = create_app(settings)  # its start finishes a commit cut short, as `riskgraph serve` does
    db = ResultsDB(settings.results_database_url)
    run_id = db.served_run_id()
    run = db.run(run_id)
    manifest = json.loads(run["manifest"])
    assert run["status"] == "committed" and not run["outputs_pending"]

    # output files: all of them from that run
    assert json.loads((out / "manifest.json").read_text())["run_id"] == run_id
    scores = pd.read_csv(out / "scores.csv", dtype={"entity_id": str}, keep_default_na=False)
    assert not [p for p in out.iterdir() if p.name.startswith(".riskgraph")]

    # every entity's answer is that run's grade, and nothing else is answered
    with TestClient(app) as client:
        h = {"X-API-Key": KEY}
        items = [{"entity_type": t, "entity_id": i} for t, i in zip(scores["entity_type"], scores["entity_id"])]
        answers = []
        for lo in range(0, len(items), 1000):
            r = client.post("/v1/credit/batch", json={"items": items[lo : lo + 1000]}, headers=h)
            assert r.status_code == 200, r.text
            assert r.json()["not_found"] == []
            answers += r.json()["results"]
        assert len(answers) == len(scores)
        assert {a["run_id"] for a in answers} == {run_id}
        got = pd.DataFrame(answers)[["entity_type", "entity_id", "grade", "model_version"]]
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True),
            scores[["entity_type", "entity_id", "grade", "model_version"]].reset_index(drop=True),
        )
        assert client.get("/v1/risk/person", headers=h).json()["total"] == int(
            (scores["entity_type"] == "person").sum()
        )

    # the store's current snapshot and the champions are that run's
    store = open_store(settings.store, settings)
    try:
        snap = store.snapshot()
        assert snap.id == run["snapshot_id"] and snap.content_hash == manifest["input_hash"]
        # its SAME_PERSON links are those of the run that loaded the snapshot (docs/resolution.md)
        resolved = pd.read_csv(out / "resolved_persons.csv", dtype=str, keep_default_na=False)
        merged = resolved[resolved["person_id"] != resolved["golden_id"]]
        assert store.same_person()["person_id"].tolist() == sorted(merged["person_id"])
    finally:
        store.close()
    registry = ModelRegistry(db)
    for t, m in manifest["models"].items():
        if m["version"]:
            assert registry.champion(t).version == m["version"], t
    return run_id


@pytest.mark.parametrize(
    "fault,code",
    [
        ("after_ingest:kill", -signal.SIGKILL),
        ("after_resolve:kill", -signal.SIGKILL),  # its SAME_PERSON links written into its staged snapshot
        ("after_scoring:kill", -signal.SIGKILL),
        ("stage_outputs:kill", -signal.SIGKILL),
        ("mid_results:kill", -signal.SIGKILL),
        ("before_commit:kill", -signal.SIGKILL),
        ("mid_results:enospc", 2),
        ("stage_outputs:enospc", 2),
        ("stage_outputs:erofs", 2),
    ],
)
def test_a_run_cut_short_before_its_commit_changes_nothing(
    copy_of, second_dataset: Path, fault: str, code: int
) -> None:
    home, out, run_a = copy_of
    before = (out / "scores.csv").read_bytes()
    done = riskgraph(home, "pipeline", "--data", str(second_dataset), "--out", str(out), fault=fault)
    assert done.returncode == code, done.stderr
    if code == 2:
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and "Traceback" not in done.stderr
    assert served_state(home, out) == run_a
    assert (out / "scores.csv").read_bytes() == before
    runs = ResultsDB(f"sqlite:///{home / 'results.db'}").runs()
    assert [r["status"] for r in runs if r["run_id"] != run_a] == ["failed"]


def test_the_next_run_clears_what_a_killed_one_staged(copy_of, second_dataset: Path) -> None:
    home, out, run_a = copy_of
    killed = riskgraph(home, "pipeline", "--data", str(second_dataset), "--out", str(out), fault="mid_results:kill")
    assert killed.returncode == -signal.SIGKILL
    dead = next(r["run_id"] for r in ResultsDB(f"sqlite:///{home / 'results.db'}").runs() if r["run_id"] != run_a)
    assert (home / "runs" / dead).exists() and (out / f".riskgraph-staging-{dead}").exists()
    again = riskgraph(home, "pipeline", "--data", str(second_dataset), "--out", str(out))
    assert again.returncode == 0, again.stderr
    run_b = served_state(home, out)
    assert run_b not in (run_a, dead)
    assert sorted(p.name for p in (home / "runs").iterdir()) == sorted([run_a, run_b])
    db = ResultsDB(f"sqlite:///{home / 'results.db'}")
    assert db.run(dead)["status"] == "failed" and db.run(dead)["discarded"]  # cleaned once, not at every start
    assert db.read_run_table(dead, "scores").empty
    assert not [m for m in ModelRegistry(db).list() if m.version.endswith(dead)]
    store = open_store(f"memory://{home}/store", Settings(home=home))
    assert set(store.snapshot_ids()) == {db.run(run_a)["snapshot_id"], db.run(run_b)["snapshot_id"]}


@pytest.mark.parametrize("fault", ["mid_commit:kill", "mid_outputs:kill"])
def test_a_run_killed_inside_its_commit_is_finished_by_the_next_start(
    copy_of, second_dataset: Path, fault: str
) -> None:
    home, out, run_a = copy_of
    done = riskgraph(home, "pipeline", "--data", str(second_dataset), "--out", str(out), fault=fault)
    assert done.returncode == -signal.SIGKILL
    run_b = served_state(home, out)  # the results database had committed: run B is served, whole
    assert run_b != run_a


def test_preflight_refuses_a_full_home_in_one_line(copy_of, second_dataset: Path) -> None:
    home, out, run_a = copy_of
    done = riskgraph(
        home, "pipeline", "--data", str(second_dataset), "--out", str(out), RISKGRAPH_MIN_FREE_BYTES=str(10**18)
    )
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "MB free" in done.stderr
    assert served_state(home, out) == run_a


def test_two_pipelines_at_once_one_refused(copy_of, second_dataset: Path) -> None:
    home, out, run_a = copy_of
    first = start_pipeline(home, second_dataset, out)
    second = start_pipeline(home, SAMPLE, out)
    codes = sorted([first.wait(600), second.wait(600)])
    errors = first.stderr.read() + second.stderr.read()  # type: ignore[union-attr]
    assert codes == [0, 2], errors
    assert "is busy: held by run" in errors
    assert served_state(home, out) != run_a


def test_two_pipelines_with_wait_both_commit(copy_of, second_dataset: Path) -> None:
    home, out, run_a = copy_of
    first = start_pipeline(home, second_dataset, out, "--wait")
    second = start_pipeline(home, SAMPLE, out, "--wait")
    assert [first.wait(600), second.wait(600)] == [0, 0]
    served = served_state(home, out)
    committed = [r for r in ResultsDB(f"sqlite:///{home / 'results.db'}").runs("committed")]
    assert len(committed) == 3 and served == max(committed, key=lambda r: r["committed_at"] + r["run_id"])["run_id"]


def test_rollback_serves_the_earlier_run_whole(copy_of, second_dataset: Path) -> None:
    home, out, run_a = copy_of
    before = (out / "scores.csv").read_bytes()
    assert riskgraph(home, "pipeline", "--data", str(second_dataset), "--out", str(out)).returncode == 0
    assert served_state(home, out) != run_a
    listed = riskgraph(home, "runs", "list")
    assert run_a in listed.stdout
    done = riskgraph(home, "runs", "rollback", run_a, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert served_state(home, out) == run_a
    assert (out / "scores.csv").read_bytes() == before
    assert riskgraph(home, "runs", "rollback", "no-such-run").returncode == 2
