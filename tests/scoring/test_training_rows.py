"""A label's point-in-time training row (composer/labels.py) replaces today's row in the fit only:
the same row changes nothing, another row changes what the model learnt from that entity."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from composer.pipeline import score_types
from features.signals import with_signals
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from scoring.registry import ModelRegistry


def _oof(sample, tmp_path: Path, training: dict[str, pd.DataFrame] | None) -> pd.DataFrame:
    settings = Settings(home=tmp_path, progress=False, model={"n_estimators": 40, "folds": 3, "threads": 1})
    scored = score_types(
        sample.dataset,
        sample.proj,
        sample.features,
        sample.rules,
        sample.rings,
        settings,
        ModelRegistry(ResultsDB(settings.results_database_url)),
        types=["person"],
        training=training,
    )["person"]
    assert scored.kind == "supervised" and scored.oof is not None
    return scored.oof


def test_training_rows_replace_today_s_rows_in_the_fit_only(sample, tmp_path: Path) -> None:
    X = with_signals(sample.features["person"], sample.rules.hits, sample.rings.members, "person")
    plain = _oof(sample, tmp_path / "a", None)
    positives = plain.index[plain["label"] == 1]
    same = _oof(sample, tmp_path / "b", {"person": X.loc[positives]})
    pd.testing.assert_frame_equal(plain, same)
    blank = X.loc[positives].copy()
    numbers = blank.select_dtypes("number").columns
    blank[numbers] = 0.0  # as if these persons had done nothing yet at their label's as_of
    then = _oof(sample, tmp_path / "c", {"person": blank})
    assert (then.loc[positives, "oof"] - plain.loc[positives, "oof"]).abs().max() > 1e-3
