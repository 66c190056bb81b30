"""`riskgraph pipeline --engine spark` against the default on a synthetic world of 2,000 persons:
each engine reads, trains and scores on its own; the --out files must agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from composer.engines.spark import SparkEngine
from composer.pipeline import PipelineResult, run_pipeline
from riskgraph.settings import Settings
from synth.generator import generate
from tests.engines.conftest import TEST_SPARK

pytestmark = pytest.mark.spark
PERSONS = 2_000
SCORE_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, spark_engine: SparkEngine) -> dict[str, tuple[PipelineResult, Path]]:
    data = tmp_path_factory.mktemp("synth") / "world"
    generate(persons=PERSONS, seed=7, out=data, progress=False)
    got = {}
    for engine in ("pandas", "spark"):
        tmp = tmp_path_factory.mktemp(f"e2e-{engine}")
        settings = Settings(home=tmp / "home", progress=False, spark=TEST_SPARK)
        got[engine] = (run_pipeline(data=data, out=tmp / "out", settings=settings, engine=engine), tmp / "out")
    return got


def _scores(folder: Path) -> pd.DataFrame:
    key = ["entity_type", "entity_id"]
    return pd.read_csv(folder / "scores.csv", dtype={"entity_id": str}).sort_values(key).reset_index(drop=True)


def test_scores_equal_to_1e_6(runs: dict[str, tuple[PipelineResult, Path]]) -> None:
    p, s = _scores(runs["pandas"][1]), _scores(runs["spark"][1])
    assert len(p) > PERSONS
    np.testing.assert_allclose(s["risk_score"], p["risk_score"], rtol=0, atol=SCORE_TOLERANCE)
    same = [c for c in p.columns if c not in ("risk_score", "model_version")]
    pd.testing.assert_frame_equal(s[same], p[same])


def test_identical_rule_hits_and_rings(runs: dict[str, tuple[PipelineResult, Path]]) -> None:
    (p, p_out), (s, s_out) = runs["pandas"], runs["spark"]
    key = ["rule_id", "entity_type", "entity_id"]
    want, got = (r.rule_hits.sort_values(key).reset_index(drop=True) for r in (p, s))
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want)  # evidence included (before encryption at rest)
    assert (s_out / "rings.csv").read_bytes() == (p_out / "rings.csv").read_bytes()
    assert len(p.rings) > 0


def test_the_spark_run_also_writes_parquet(runs: dict[str, tuple[PipelineResult, Path]]) -> None:
    out = runs["spark"][1]
    for name in ("scores", "rule_hits", "rings"):
        csv = pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
        parquet = pd.read_parquet(out / f"{name}.parquet")
        assert list(parquet.columns) == list(csv.columns) and len(parquet) == len(csv), name
    assert runs["spark"][0].manifest["engine"]["name"] == "spark"
