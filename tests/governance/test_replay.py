"""Replay: 1,000 audited decisions reprinted byte-identical (apart from `replayed_at`) after three
reloads and a retrain, through the API and the CLI; a clear refusal once their run has expired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.replay import DecisionExpired, Replayer, ReplayMismatch
from cli.main import cli
from composer.governance import promote
from composer.pipeline import ModelSource, run_pipeline
from composer.runs import run_dir
from riskgraph.results import ResultsDB
from synth.generator import generate
from tests.api.support import headers, make_settings


def _without_replayed_at(body: bytes) -> bytes:
    head, sep, tail = body.rpartition(b',"replayed_at":')
    assert sep and tail.endswith(b'"}'), body[-80:]
    return head + b"}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("replay")
    generate(persons=500, seed=11, out=root / "data", progress=False)
    return root / "data", root / "home"


@pytest.mark.slow
def test_thousand_decisions_replay_after_reloads_and_retrain(world: tuple[Path, Path], tmp_path: Path) -> None:
    data, home = world
    settings = make_settings(home)
    first = run_pipeline(data=data, out=tmp_path / "out", settings=settings)
    sent: dict[str, bytes] = {}
    entities = [(t, str(i)) for t, i in first.scores[["entity_type", "entity_id"]].itertuples(index=False)]
    with TestClient(create_app(settings)) as client:
        for k in range(600):  # single answers: the exact bytes sent
            t, i = entities[k % len(entities)]
            r = client.get(
                f"/v1/credit/{t}/{i}", params={"lang": "zh" if k % 3 == 0 else "en"}, headers=headers("approval_system")
            )
            assert r.status_code == 200
            sent[r.json()["decision_id"]] = r.content
        items = [{"entity_type": t, "entity_id": i} for t, i in entities[:400]]
        r = client.post("/v1/credit/batch", json={"items": items}, headers=headers("approval_system"))
        assert r.status_code == 200
        # each item's exact bytes, cut from the response (items are the answers, joined by commas)
        raw = r.content[len(b'{"results":[') : r.content.index(b'],"not_found":')]
        starts = [k for k in range(len(raw)) if raw.startswith(b'{"decision_id":"', k)]
        for a, b in zip(starts, starts[1:] + [len(raw) + 1]):
            item = raw[a : b - 1]
            sent[json.loads(item)["decision_id"]] = item
    assert len(sent) == 1000

    # three re-scorings (each served and reloaded) and a retrain with new champions
    for _ in range(3):
        run_pipeline(data=None, out=None, settings=settings, models=ModelSource.CHAMPION, kind="nightly-rescore")
    retrain = run_pipeline(data=data, out=tmp_path / "out", settings=settings)
    # too few labels to gate on: the retrained version stays a candidate until promoted (forced)
    gated = retrain.manifest["promotion"]["person"]
    assert not gated["promoted"] and gated["champion"] == first.manifest["models"]["person"]["version"]
    promote(settings, ResultsDB.of(settings), gated["challenger"], actor="test", role="admin", force_reason="test")

    replayer = Replayer(settings, ResultsDB.of(settings))
    for decision_id, body in sent.items():
        assert _without_replayed_at(replayer.replay(decision_id)) == body, decision_id

    with TestClient(create_app(settings)) as client:
        client.app.state.riskgraph.load_results()  # a further reload: replay does not depend on it
        some = list(sent)[::50]
        for decision_id in some:
            r = client.get(f"/v1/decisions/{decision_id}", headers=headers("model_owner"))
            assert r.status_code == 200, r.text
            assert _without_replayed_at(r.content) == sent[decision_id]
            assert r.json()["replayed_at"]
        assert client.get(f"/v1/decisions/{some[0]}", headers=headers("approval_system")).status_code == 403
        assert client.get("/v1/decisions/00ff", headers=headers("model_owner")).status_code == 404
        audit = client.get("/v1/audit", params={"action": "replay", "limit": 500}, headers=headers("model_owner"))
        assert {row["decision_id"] for row in audit.json()["items"]} == set(some)

    # the CLI prints the same bytes (and audits the replay)
    decision_id = next(iter(sent))
    env = {"RISKGRAPH_HOME": str(home), "RISKGRAPH_STORE_URL": f"memory://{home / 'store'}"}
    out = CliRunner().invoke(cli, ["replay", decision_id], env=env)
    assert out.exit_code == 0, out.output
    assert _without_replayed_at(out.output.strip().encode()) == sent[decision_id]

    # a tampered input row is refused, never replayed
    matrix = run_dir(settings, first.run_id) / "features" / "person.parquet"
    saved = matrix.read_bytes()
    import pandas as pd

    frame = pd.read_parquet(matrix)
    frame.iloc[:, 1] = frame.iloc[:, 1] + 1
    frame.to_parquet(matrix)
    person_decision = next(d for d, b in sent.items() if json.loads(b)["entity_type"] == "person")
    with pytest.raises(ReplayMismatch, match="input row"):
        replayer.replay(person_decision)
    matrix.write_bytes(saved)

    # retention_runs (5) keeps the first run until a sixth commits (the new champion serving)
    sixth = run_pipeline(data=None, out=None, settings=settings, models=ModelSource.CHAMPION, kind="nightly-rescore")
    assert sixth.manifest["models"]["person"]["version"] == gated["challenger"]
    with pytest.raises(DecisionExpired, match=f"run {first.run_id}, which is expired.*retention_runs=5"):
        replayer.replay(decision_id)
    out = CliRunner().invoke(cli, ["replay", decision_id], env=env)
    assert out.exit_code == 2 and "retention_runs=5" in out.output
