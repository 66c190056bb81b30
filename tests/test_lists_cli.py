"""`riskgraph lists export|import` on a scored home: the served run's entries and grades out, an
exported file back in (all or nothing, audited), a malformed file refused with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from cli.main import cli
from composer.pipeline import run_pipeline
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from synth.generator import generate


def test_export_then_import(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    generate(persons=300, seed=4, out=tmp_path / "data", progress=False)
    settings = Settings(home=home, progress=False, model={"n_estimators": 30, "folds": 3, "threads": 1})
    run_pipeline(data=tmp_path / "data", out=tmp_path / "out", settings=settings)
    monkeypatch.setenv("RISKGRAPH_HOME", str(home))
    runner = CliRunner()

    out = runner.invoke(cli, ["lists", "export", "--out", str(tmp_path / "lists.json"), "--authority", "R01"])
    assert out.exit_code == 0, out.output
    doc = json.loads((tmp_path / "lists.json").read_text(encoding="utf-8"))
    lists = {e["list"] for e in doc["entries"]}
    assert lists == {"labour_integrity", "wage_arrears"}
    truth = pd.read_csv(tmp_path / "data" / "truth" / "supervision.csv")
    listed = {e["entity_id"] for e in doc["entries"] if e["list"] == "wage_arrears" and e["status"] == "listed"}
    assert set(truth.loc[truth["pattern"] == "arrears_listed", "employer_id"]) <= listed

    ok = runner.invoke(cli, ["lists", "import", str(tmp_path / "lists.json")])
    assert ok.exit_code == 0 and f"imported {len(doc['entries'])} entries" in ok.output
    db = ResultsDB.of(Settings(home=home))
    assert len(db.list_entries()) == len(doc["entries"])

    doc["entries"][1]["listed_date"] = "2025-13-01"
    (tmp_path / "bad.json").write_text(json.dumps(doc), encoding="utf-8")
    bad = runner.invoke(cli, ["lists", "import", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2
    assert "bad.json row 2 column 'listed_date': not a date in YYYY-MM-DD form" in bad.output
    assert len(db.list_entries()) == len(doc["entries"])  # nothing more imported
    actions = [r["action"] for r in db.audit_rows()]
    assert actions.count("list_export") == 1 and actions.count("list_import") == 1
