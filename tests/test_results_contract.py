"""One contract suite for the results database, run on SQLite and on a real PostgreSQL: run
tables are invisible until the commit, the commit moves results and champions together, a failed
run leaves nothing, one writer at a time, retention, rollback, durable audit rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from composer.runs import Run, rollback
from graph.dataset import dataset_from_frames
from graph.memory_store import MemoryGraphStore
from riskgraph.errors import RunLocked, RunNotFound
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from scoring.registry import ModelRegistry
from tests.factories import SAMPLE, tiny_frames

APPROVAL_KEY = "results-contract-approval-key-5e8d1c3b"  # passes the key strength rule


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def results_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(results_url: str, tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        results_url=results_url,
        progress=False,
        retention_runs=2,
        model={"n_estimators": 30, "folds": 3, "threads": 1, "explain_top": 50},
    )


@pytest.fixture
def db(settings: Settings) -> ResultsDB:
    return ResultsDB(settings.results_database_url)


@pytest.fixture
def store(settings: Settings) -> Iterator[MemoryGraphStore]:
    s = MemoryGraphStore(settings.home / "store")
    yield s
    s.close()


def _frame(tag: str, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_type": "person",
            "entity_id": [f"p{i}" for i in range(n)],
            "grade": tag,
            "risk_score": [0.1 * i for i in range(n)],
        }
    )


def _commit_run(
    settings: Settings, db: ResultsDB, store: MemoryGraphStore, tag: str, promote: dict[str, str] | None = None
) -> str:
    with Run(settings, db, store, kind="test") as run:
        run.snapshot_id = store.stage(dataset_from_frames(tiny_frames())).id
        tables = [db.write_run_table(run.run_id, "scores", _frame(tag))]
        run.commit(manifest={"tag": tag}, champions=promote or {}, promote=promote or {}, tables=tables)
    return run.run_id


def test_run_tables_are_invisible_until_the_commit(settings: Settings, db: ResultsDB, store: MemoryGraphStore) -> None:
    with Run(settings, db, store, kind="test") as run:
        run.snapshot_id = store.stage(dataset_from_frames(tiny_frames())).id
        db.write_run_table(run.run_id, "scores", _frame("A"))
        assert db.read("scores").empty and db.served() is None and store.snapshot() is None
        run.commit(manifest={}, champions={}, promote={}, tables=[])
    served = db.read("scores")
    assert list(served["grade"]) == ["A"] * 3 and db.served() == (run.run_id, 1)
    assert store.snapshot().id == run.snapshot_id


def test_large_tables_are_written_in_chunks_and_read_back_whole(
    settings: Settings, db: ResultsDB, store: MemoryGraphStore
) -> None:
    with Run(settings, db, store, kind="test") as run:
        db.write_run_table(run.run_id, "scores", _frame("B", 2_500), chunk_rows=1_000)
        run.commit(manifest={}, champions={}, promote={}, tables=[])
    back = db.read("scores")
    assert len(back) == 2_500 and back["entity_id"].is_unique


def test_commit_promotes_staged_models_with_the_results(
    settings: Settings, db: ResultsDB, store: MemoryGraphStore
) -> None:
    registry = ModelRegistry(db)
    old = registry.register(
        entity_type="person", kind="unsupervised", data_hash="h0", features=[], params={}, metrics={}, model=None
    )
    assert registry.champion("person").version == old.version
    with Run(settings, db, store, kind="test") as run:
        new = registry.register(
            entity_type="person",
            kind="unsupervised",
            data_hash="h1",
            features=[],
            params={},
            metrics={},
            model=None,
            run_id=run.run_id,
        )
        assert new.staged and new.version not in {m.version for m in registry.list()}
        assert registry.champion("person").version == old.version
        db.write_run_table(run.run_id, "scores", _frame("C"))
        run.commit(manifest={}, champions={"person": new.version}, promote={"person": new.version}, tables=[])
    assert registry.champion("person").version == new.version
    assert new.version in {m.version for m in registry.list()}


def test_a_failed_run_leaves_nothing_behind(settings: Settings, db: ResultsDB, store: MemoryGraphStore) -> None:
    first = _commit_run(settings, db, store, "A")
    registry = ModelRegistry(db)
    with pytest.raises(RuntimeError, match="boom"), Run(settings, db, store, kind="test") as run:
        snap = store.stage(dataset_from_frames(tiny_frames())).id
        db.write_run_table(run.run_id, "scores", _frame("D"))
        registry.register(
            entity_type="person",
            kind="unsupervised",
            data_hash="h",
            features=[],
            params={},
            metrics={},
            model=None,
            run_id=run.run_id,
        )
        raise RuntimeError("boom")
    assert db.served_run_id() == first and list(db.read("scores")["grade"]) == ["A"] * 3
    assert db.read_run_table(run.run_id, "scores").empty
    assert db.run(run.run_id)["status"] == "failed" and "boom" in db.run(run.run_id)["message"]
    assert db.run(run.run_id)["discarded"]
    assert registry.list() == []
    assert snap not in store.snapshot_ids()


def test_one_writer_at_a_time(settings: Settings, db: ResultsDB, store: MemoryGraphStore) -> None:
    with (
        Run(settings, db, store, kind="first") as run,
        pytest.raises(RunLocked, match=f"run {run.run_id} \\(first"),
        Run(settings, ResultsDB(settings.results_database_url), store, kind="second"),
    ):
        pass
    with Run(settings, db, store, kind="third"):  # free again
        pass


def test_a_waiting_writer_runs_after_the_holder(settings: Settings, db: ResultsDB, store: MemoryGraphStore) -> None:
    order: list[str] = []
    holder_in = threading.Event()

    def second() -> None:
        holder_in.wait()
        with Run(settings, ResultsDB(settings.results_database_url), store, kind="second", wait=True):
            order.append("second")

    t = threading.Thread(target=second)
    t.start()
    with Run(settings, db, store, kind="first"):
        holder_in.set()
        threading.Event().wait(0.5)
        order.append("first")
    t.join(30)
    assert order == ["first", "second"]


def test_retention_keeps_the_newest_runs_whole(settings: Settings, db: ResultsDB, store: MemoryGraphStore) -> None:
    ids = [_commit_run(settings, db, store, tag) for tag in "ABC"]
    assert [r["status"] for r in sorted(db.runs(), key=lambda r: r["run_id"])] == ["expired", "committed", "committed"]
    assert db.read_run_table(ids[0], "scores").empty and not db.read_run_table(ids[1], "scores").empty
    kept = {db.run(i)["snapshot_id"] for i in ids[1:]}
    assert set(store.snapshot_ids()) == kept
    with pytest.raises(RunNotFound, match="not retained"):
        rollback(settings, db, store, ids[0])


def test_rollback_serves_an_earlier_run_again(settings: Settings, db: ResultsDB, store: MemoryGraphStore) -> None:
    registry = ModelRegistry(db)
    versions = {}
    for tag in "AB":
        with Run(settings, db, store, kind="test") as run:
            run.snapshot_id = store.stage(dataset_from_frames(tiny_frames())).id
            versions[tag] = registry.register(
                entity_type="person",
                kind="unsupervised",
                data_hash=tag,
                features=[],
                params={},
                metrics={},
                model=None,
                run_id=run.run_id,
            ).version
            db.write_run_table(run.run_id, "scores", _frame(tag))
            run.commit(manifest={}, champions={"person": versions[tag]}, promote={"person": versions[tag]}, tables=[])
        versions[tag + "_run"] = run.run_id
        versions[tag + "_snap"] = run.snapshot_id
    assert list(db.read("scores")["grade"]) == ["B"] * 3
    rollback(settings, db, store, versions["A_run"])
    assert db.served_run_id() == versions["A_run"] and list(db.read("scores")["grade"]) == ["A"] * 3
    assert registry.champion("person").version == versions["A"]
    assert store.snapshot().id == versions["A_snap"]
    audit = db.read("audit")
    assert list(audit["action"]) == ["rollback"] and audit["run_id"].iloc[0] == versions["A_run"]


def test_audit_rows_from_many_writers_are_all_kept(db: ResultsDB) -> None:
    def write(k: int) -> None:
        for i in range(20):
            db.append_audit(
                [
                    {"at": "t", "actor": f"a{k}", "role": "r", "action": "credit", "decision_id": f"{k}-{i}-{j}"}
                    for j in range(5)
                ]
            )

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    audit = db.read("audit")
    assert len(audit) == 6 * 20 * 5 and audit["decision_id"].is_unique


@pytest.mark.slow
def test_pipeline_and_api_on_this_results_database(settings: Settings, tmp_path: Path) -> None:
    from api.app import create_app
    from composer.pipeline import run_pipeline

    result = run_pipeline(data=SAMPLE, out=tmp_path / "out", settings=settings)
    s = settings.model_copy(update={"api_scheduler": False, "api_keys": {APPROVAL_KEY: "approval_system"}})
    person = result.scores.loc[result.scores["entity_type"] == "person", "entity_id"].iloc[0]
    with TestClient(create_app(s)) as client:
        r = client.get(f"/v1/credit/person/{person}", headers={"X-API-Key": APPROVAL_KEY})
        assert r.status_code == 200
        body = r.json()
    assert body["run_id"] == result.run_id and len(body["decision_id"]) == 32
    audit = ResultsDB(settings.results_database_url).read("audit")
    row = audit[audit["decision_id"] == body["decision_id"]].iloc[0]
    assert (row["entity_id"], row["run_id"], row["grade"]) == (person, result.run_id, body["grade"])


def test_case_changes_are_one_transaction_with_their_audit_row(db: ResultsDB) -> None:
    """Cases (composer/cases.py): each change holds the case row, its history event and its
    chained audit row, or none of them; a stale version and four-eyes breaches change nothing."""
    from composer import cases as workflow

    a, b = workflow.Actor("inspector:a", "inspector"), workflow.Actor("investigator:b", "investigator")
    case = workflow.open_case(db, a, subject_type="person", subject_id="P1", typology="med")
    cid = case["case_id"]
    workflow.change_status(db, a, cid, to="in_progress")
    workflow.change_status(db, a, cid, to="confirmed", note="seen")
    with pytest.raises(workflow.CaseConflict):
        workflow.decide_approval(db, a, cid, approve=True)
    with pytest.raises(workflow.CaseConflict):
        workflow.change_status(db, b, cid, to="dismissed", note="x", version=1)
    done = workflow.decide_approval(db, b, cid, approve=True)
    assert done["status"] == "confirmed" and done["decided_by"] == "investigator:b"
    history = workflow.get_case(db, cid)["history"]
    audit = db.query("SELECT action FROM audit WHERE action LIKE 'case_%' ORDER BY id")
    assert len(history) == len(audit) == 4
    assert db.audit_verify().ok
    labels = workflow.case_labels(db)
    assert labels[["entity_id", "label", "case_id"]].to_dict("records") == [
        {"entity_id": "P1", "label": 1, "case_id": cid}
    ]
