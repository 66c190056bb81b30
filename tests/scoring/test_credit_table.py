"""A classic credit table (persons with extra attributes + labels, nothing else) trains, grades
and explains like any dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from composer.pipeline import run_pipeline
from riskgraph.settings import Settings

N = 1_500


def _credit_table(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    debt_ratio = rng.uniform(0, 1.5, N)
    income = rng.lognormal(8.5, 0.5, N)
    contract = rng.choice(["permanent", "temporary", "self_employed"], N, p=[0.6, 0.3, 0.1])
    logit = -4 + 3.5 * debt_ratio - 0.5 * np.log(income / 5000) + 1.0 * (contract == "temporary")
    bad = rng.random(N) < 1 / (1 + np.exp(-logit))
    ids = [f"P{i:05d}" for i in range(N)]
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "person_id": ids,
            "gender": rng.choice(["F", "M"], N),
            "region": rng.choice(["N", "S"], N),
            "birth_date": pd.to_datetime("1960-01-01") + pd.to_timedelta(rng.integers(0, 15000, N), "D"),
            "debt_ratio": debt_ratio.round(3),
            "income": income.round(0),
            "contract": contract,
        }
    ).to_csv(folder / "persons.csv", index=False, date_format="%Y-%m-%d")
    known = rng.random(N) < 0.7
    pd.DataFrame(
        {
            "entity_type": "person",
            "entity_id": np.array(ids)[known],
            "label": bad[known].astype(int),
            "as_of": "2025-12-31",
        }
    ).to_csv(folder / "labels.csv", index=False)
    truth = pd.Series(bad, index=ids)
    truth.to_csv(folder.parent / "truth.csv")
    return folder


def test_persons_only_credit_table(tmp_path: Path) -> None:
    data = _credit_table(tmp_path / "data")
    settings = Settings(home=tmp_path / "home", store_url=f"memory://{tmp_path / 'store'}", progress=False)
    result = run_pipeline(data=data, out=tmp_path / "out", settings=settings)
    person = result.models["person"]
    assert person.kind == "supervised"
    assert {"debt_ratio", "income", "contract"} <= set(person.matrix.columns)
    assert person.matrix["contract"].dtype == "category"
    assert person.metrics["roc_auc"] > 0.75  # out-of-fold, against a noisy logistic truth
    scores = result.scores[result.scores["entity_type"] == "person"].set_index("entity_id")
    assert len(scores) == N and scores["grade"].isin(list("ABCD")).all()
    assert scores["credit_points"].between(300, 900).all()
    # Riskier grades go with higher debt ratios.
    debt = person.matrix["debt_ratio"].reindex(scores.index)
    assert debt[scores["grade"] == "D"].mean() > debt[scores["grade"] == "A"].mean()
    top = scores.sort_values("risk_score", ascending=False).head(50)
    codes = [r["code"] for cell in top["reasons"] for r in json.loads(cell)]
    assert codes and codes.count("RG-U-debt_ratio") >= 25  # a user column without a data dictionary
    assert all(r["text"] for cell in top["reasons"] for r in json.loads(cell))
