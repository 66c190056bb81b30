"""The drift target: 20 features of a real run's person matrix shifted by 0.5 standard deviations
on 10,000 rows all reach PSI >= 0.25 against the other 10,000 rows; untouched ones stay < 0.1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from composer.pipeline import run_pipeline
from composer.runs import run_dir
from scoring.monitoring import frame_profile, frame_psi
from synth.generator import generate
from tests.api.support import make_settings


@pytest.mark.slow
def test_twenty_drifted_features_alert_and_the_rest_stay_stable(tmp_path: Path) -> None:
    generate(persons=20_000, seed=5, out=tmp_path / "data", progress=False)
    settings = make_settings(tmp_path / "home")
    result = run_pipeline(data=tmp_path / "data", out=tmp_path / "out", settings=settings)
    matrix = pd.read_parquet(run_dir(settings, result.run_id) / "features" / "person.parquet")
    rng = np.random.default_rng(0)
    half = rng.permutation(len(matrix)) < len(matrix) // 2
    reference, current = matrix[half], matrix[~half].copy()
    assert len(current) >= 10_000
    numeric = current.select_dtypes("number")
    # the 20 features with the most distinct values (a shift moves a continuous feature's rows
    # across bins; one of a few values moves only when it passes the next value)
    drifted = list(numeric.nunique().sort_values(ascending=False, kind="mergesort").index[:20])
    for c in drifted:
        current[c] = current[c] + 0.5 * current[c].std()
    psi = pd.Series(frame_psi(frame_profile(reference), current))
    assert (psi[drifted] >= 0.25).all(), psi[drifted].sort_values().head()
    untouched = psi.drop(drifted)
    assert len(untouched) >= 70 and (untouched < 0.1).all(), untouched.sort_values().tail()
