"""The promotion gate on real runs: a better challenger is accepted, a planted worse one is
refused (by the CLI, the API and the pipeline's own promotion), forcing needs a reason, every
promotion is audited, and `models rollback` goes through the same gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from cli.main import cli
from composer.governance import PromotionRefused, compare, promote
from composer.pipeline import ModelSource, run_pipeline
from riskgraph.results import ResultsDB
from scoring.registry import ModelRegistry
from synth.generator import generate
from tests.api.support import headers, make_settings

BASE = {"explain_top": 60, "folds": 3, "threads": 1, "oot_share": 0.5}


def _dated(folder: Path, seed: int) -> None:
    """Labels spread over 2025 (as_of), ten of them undated."""
    labels = pd.read_csv(folder / "labels.csv")
    rng = np.random.default_rng(seed)
    days = pd.to_timedelta(rng.integers(0, 365, len(labels)), unit="D")
    labels["as_of"] = (pd.Timestamp("2025-01-01") + days).strftime("%Y-%m-%d")
    labels.loc[labels.index[:10], "as_of"] = None
    labels.to_csv(folder / "labels.csv", index=False)


@pytest.mark.slow
def test_gate_accepts_a_better_challenger_and_refuses_a_worse_one(tmp_path: Path) -> None:
    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    generate(persons=9000, seed=3, out=clean, label_share=0.9, progress=False)
    _dated(clean, 0)
    shutil.copytree(clean, noisy)  # the planted worse one: a tenth of the person labels flipped
    labels = pd.read_csv(noisy / "labels.csv")
    flip = (labels["entity_type"] == "person") & (np.random.default_rng(1).random(len(labels)) < 0.1)
    labels.loc[flip, "label"] = 1 - labels.loc[flip, "label"]
    labels.to_csv(noisy / "labels.csv", index=False)

    home = tmp_path / "home"
    weak = make_settings(home, model=BASE | {"n_estimators": 4, "num_leaves": 2})
    settings = make_settings(home, model=BASE | {"n_estimators": 60})
    db = ResultsDB.of(settings)
    registry = ModelRegistry(db)
    first = run_pipeline(data=clean, out=tmp_path / "out", settings=weak)
    champion = first.manifest["models"]["person"]["version"]
    report = (tmp_path / "out" / "report.html").read_text()
    assert "out of time (labels after" in report and "attribute-only baseline (out-of-fold)" in report
    assert "10 of them without an as_of date" in report
    better = run_pipeline(data=clean, out=None, settings=settings, models=ModelSource.CANDIDATE, kind="weekly-retrain")
    better_v = better.manifest["models"]["person"]["version"]
    shadow = better.manifest["shadow"]["person"]  # the retraining run shadow-scored its candidate
    assert shadow["challenger"] == better_v and shadow["champion"] == champion and shadow["promoted"]
    worse = run_pipeline(data=noisy, out=None, settings=settings, models=ModelSource.CANDIDATE, kind="weekly-retrain")
    worse_v = worse.manifest["models"]["person"]["version"]

    side = compare(settings, db, champion=champion, challenger=better_v)
    figures = side["gate"]["figures"]
    assert side["gate"]["allowed"], side["gate"]
    assert figures["challenger_oot_auc"] > figures["champion_oot_auc"]
    assert min(figures["challenger_oot_labels"].values()) >= 30
    assert side["champion"]["out_of_time"]["undated"] == 10 and side["entities"] == 9000
    assert side["changed_total"] == len(side["changed"]) or len(side["changed"]) == 100
    assert all(e["champion_grade"] != e["challenger_grade"] for e in side["changed"])

    env = {"RISKGRAPH_HOME": str(home), "RISKGRAPH_STORE_URL": f"memory://{home / 'store'}"}
    done = CliRunner().invoke(cli, ["models", "promote", better_v], env=env)
    assert done.exit_code == 0, done.output
    assert registry.champion("person").version == better_v

    # the worse one: refused by the CLI, the API and a forcing without a reason
    refused = CliRunner().invoke(cli, ["models", "promote", worse_v], env=env)
    assert (
        refused.exit_code == 2 and "out-of-time ROC-AUC" in refused.output and "more than 0.01 below" in refused.output
    )
    with pytest.raises(PromotionRefused, match="needs a reason"):
        promote(settings, db, worse_v, actor="t", role="admin", force_reason="  ")
    with TestClient(create_app(settings)) as client:
        r = client.get(
            "/v1/models/compare", params={"champion": better_v, "challenger": worse_v}, headers=headers("model_owner")
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert not body["gate"]["allowed"] and body["challenger"]["out_of_time"]["roc_auc"] is not None
        assert body["changed"] and body["changed"][0]["reasons"]
        r = client.post(f"/v1/models/{worse_v}/promote", headers=headers("model_owner"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "promotion_refused"
        assert (
            client.get(
                "/v1/models/compare", params={"champion": better_v, "challenger": worse_v}, headers=headers("inspector")
            ).status_code
            == 403
        )
    assert registry.champion("person").version == better_v

    # forced with a reason, then rolled back through the gate
    forced = CliRunner().invoke(cli, ["models", "promote", worse_v, "--force-reason", "regulator asked"], env=env)
    assert forced.exit_code == 0 and "forced past the gate" in forced.output
    # the rollback's scores shift as much the other way: the same gate asks for a reason
    back = CliRunner().invoke(cli, ["models", "rollback", "person"], env=env)
    assert back.exit_code == 2 and "PSI against the champion" in back.output
    back = CliRunner().invoke(cli, ["models", "rollback", "person", "--force-reason", "undo the forced one"], env=env)
    assert back.exit_code == 0, back.output
    assert registry.champion("person").version == better_v
    rows = db.query("SELECT action, actor, model_version, detail FROM audit WHERE entity_type = 'person' ORDER BY id")
    rows = rows[rows["action"].isin(["promote", "rollback"])]
    first_row = rows.iloc[0]  # the pipeline's own promotion of the first model, audited too
    assert first_row["actor"] == "pipeline" and first_row["model_version"] == champion
    rows = rows.iloc[1:]
    assert list(rows["action"]) == ["promote", "promote", "rollback"] and set(rows["actor"]) == {"cli"}
    assert json.loads(rows.iloc[1]["detail"])["forced"] == "regulator asked"
    assert json.loads(rows.iloc[2]["detail"])["from"] == worse_v

    # the pipeline's own promotion goes through the same gate: a fit on the noisy labels is refused
    refit = run_pipeline(data=noisy, out=tmp_path / "out", settings=settings)
    gated = refit.manifest["promotion"]["person"]
    assert not gated["promoted"] and gated["champion"] == better_v
    assert refit.manifest["models"]["person"]["version"] == better_v == registry.champion("person").version
    refusals = db.query("SELECT * FROM audit WHERE action = 'promotion_refused' AND entity_type = 'person'")
    assert list(refusals["model_version"]) == [gated["challenger"]]
