"""The promotion gate between scoring's two phases (composer/pipeline.py `score_types`): the
champion's risk the gate compares is the registry's own re-prediction of the challenger's model
matrix; a refused version leaves exactly the champion's scoring of the run, a promoted one
exactly its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from composer.governance import Challenger
from composer.pipeline import score_types
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from scoring.registry import ModelRegistry

MODEL = {"n_estimators": 30, "folds": 3, "threads": 1, "explain_top": 50}


def _decide(promoted: bool, seen: dict[str, Challenger]) -> Any:
    def gate(fitted: dict[str, Challenger]) -> dict[str, dict[str, Any]]:
        seen.update(fitted)
        return {t: {"challenger": c.version, "promoted": promoted} for t, c in fitted.items()}

    return gate


def _without_version(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns="model_version").reset_index(drop=True)


def test_the_gate_sees_the_champion_s_own_risk_and_only_the_kept_model_is_finished(sample, tmp_path: Path) -> None:
    first = Settings(home=tmp_path, progress=False, model=MODEL)
    registry = ModelRegistry(ResultsDB(first.results_database_url))
    inputs = (sample.dataset, sample.proj, sample.features, sample.rules, sample.rings)
    champions = score_types(*inputs, first, registry)  # no run: each type's first version is promoted
    assert champions["person"].kind == "supervised"
    # the next fit differs from the champion, so the two risks the gate compares differ too
    later = Settings(home=tmp_path, progress=False, model=MODEL | {"num_leaves": 7, "n_estimators": 45})

    seen: dict[str, Challenger] = {}
    refused = score_types(*inputs, later, registry, run_id="refused", gate=_decide(False, seen))
    assert set(seen) == {t for t, m in champions.items() if m.model_version}
    supervised = [t for t, m in champions.items() if m.kind == "supervised"]
    for t, challenger in seen.items():
        champion = registry.champion(t)
        assert champion is not None and champion.version == champions[t].model_version
        if t not in supervised:
            assert challenger.champion_risk is None  # not compared: the gate lets it through unscored
            continue
        model = registry.load(champion.version)
        again = model.calibrated(model.margin(challenger.matrix.reindex(columns=champion.features)))
        assert challenger.champion_risk is not None and challenger.risk is not None
        np.testing.assert_array_equal(challenger.champion_risk, again)
        assert not np.array_equal(challenger.risk, challenger.champion_risk)

    served = score_types(*inputs, later, registry, use_champion=True)
    for t, m in refused.items():
        assert m.promotion == ({"challenger": seen[t].version, "promoted": False} if t in seen else None)
        assert m.model_version == served[t].model_version and not m.fitted
        pd.testing.assert_frame_equal(m.table, served[t].table)
        pd.testing.assert_frame_equal(m.contributions, served[t].contributions)

    promoted = score_types(*inputs, later, registry, run_id="promoted", gate=_decide(True, {}))
    own = score_types(*inputs, later, registry, run_id="own")
    for t, m in promoted.items():
        assert m.fitted and m.model_version != own[t].model_version or not m.model_version
        pd.testing.assert_frame_equal(_without_version(m.table), _without_version(own[t].table))
