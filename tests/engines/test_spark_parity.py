"""Parity: the Spark engine's stages against the pandas engine's on the same data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from composer.engines import UnknownEngine, open_engine
from composer.engines.pandas import PandasEngine
from composer.engines.spark import GRAPH_COUNT_COLUMNS, SparkEngine
from composer.engines.spark_aggregation import Sources
from composer.engines.spark_features import SPARK_GROUPS
from composer.pipeline import PipelineResult, run_pipeline
from features import entity_aggregates
from features.entity_aggregates import GROUPS
from features.rings.grouping import group_nodes
from graph.dataset import Dataset, load_dataset
from graph.projection import Projection
from riskgraph.settings import ModelSettings, RingSettings, Settings
from scoring.model import CrossFittedRiskModel
from scoring.score import assign_folds, labels_of
from tests.engines.conftest import TEST_SPARK
from tests.factories import SAMPLE

pytestmark = pytest.mark.spark
FEATURE_TOLERANCE = 1e-9
SCORE_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def sample() -> tuple[Dataset, Projection]:
    dataset = load_dataset(SAMPLE)
    return dataset, Projection(dataset)


def test_edges_as_a_dataframe_equal_the_projection(spark_engine: SparkEngine, sample) -> None:
    dataset, proj = sample
    got = spark_engine.edge_frame(dataset, proj).toPandas()
    got = got.sort_values(["source", "target", "rel"], kind="mergesort").reset_index(drop=True)
    want = proj.edges
    assert len(got) == len(want) > 0
    for col in ("source", "target", "rel", "count"):
        np.testing.assert_array_equal(got[col].to_numpy(np.int64), want[col].to_numpy(np.int64), err_msg=col)


def test_the_drivers_arrays_reach_spark_as_an_rdd_not_a_local_relation(spark_engine: SparkEngine, sample) -> None:
    """Over a LocalRelation the optimizer evaluates filters and projections on the driver
    (ConvertToLocalRelation) and each plan keeps its own boxed copy of the rows: at 100k persons
    those copies filled the 2g heap and the aggregations failed with AGGREGATE_OUT_OF_MEMORY."""
    dataset, proj = sample
    s = Sources(spark_engine.session, dataset, proj, proj.column_codes.sharing_ids(), {})
    for frame in (s.visits().filter("person >= 0").select("person", "amount"), spark_engine.edge_frame(dataset, proj)):
        plan = frame._jdf.queryExecution().optimizedPlan().toString()
        assert "LocalRelation" not in plan and "LogicalRDD" in plan, plan


@pytest.fixture(scope="module")
def both_features(spark_engine: SparkEngine, sample) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(pandas, Spark) features of the sample; the Spark engine's built with every group it runs on
    Spark made to fail on the driver, so none of them is computed twice."""
    dataset, proj = sample
    want = PandasEngine().features(dataset, proj)
    with pytest.MonkeyPatch.context() as mp:
        groups = {
            t: tuple((name, _not_on_the_driver(t, name) if name in SPARK_GROUPS[t] else fn) for name, fn in g)
            for t, g in GROUPS.items()
        }
        mp.setattr(entity_aggregates, "GROUPS", groups)
        mp.setattr(entity_aggregates, "_shared_identifier_counts", _not_on_the_driver("any", "shared_identifiers"))
        got = spark_engine.features(dataset, proj)
    return want, got


def _not_on_the_driver(entity_type: str, group: str) -> Any:
    def fail(*args: Any) -> Any:
        raise AssertionError(f"{entity_type} {group} computed on the driver by the Spark engine")

    return fail


def test_features_equal_to_1e_9(both_features) -> None:
    """Every feature column of every entity type: same names, order, dtypes and categories,
    values equal to 1e-9 (in practice: to the last bit, or 1 ulp of a sum)."""
    want, got = both_features
    assert set(got) == set(want) == set(GROUPS)
    for t, w in want.items():
        g = got[t]
        assert list(g.columns) == list(w.columns), t
        assert g.index.equals(w.index), t
        assert g.dtypes.equals(w.dtypes), (t, g.dtypes[g.dtypes != w.dtypes])
        for col in w.columns:
            if isinstance(w[col].dtype, pd.CategoricalDtype):
                assert g[col].equals(w[col]), (t, col)
                continue
            np.testing.assert_allclose(
                g[col].to_numpy(np.float64),
                w[col].to_numpy(np.float64),
                rtol=0,
                atol=FEATURE_TOLERANCE,
                err_msg=f"{t}.{col}",
            )


def test_the_spark_groups_and_graph_counts_are_among_the_features(both_features, sample) -> None:
    """What the parity above covers: every group the Spark engine runs gave columns on the
    sample, and so did the graph counts."""
    dataset, proj = sample
    want, _ = both_features
    for t, names in SPARK_GROUPS.items():
        for name in names:
            if name == "shared_identifiers":
                continue
            group = dict(GROUPS[t])[name]
            x = entity_aggregates.Inputs(dataset, proj, proj.column_codes.sharing_ids(), None, len(proj.ids[t]))
            cols = group(x, want[t])
            assert cols and set(cols) <= set(want[t].columns), (t, name)
    for w in want.values():
        assert {"degree", "two_hop_paths"} <= set(w.columns)
    for t in ("person", "employer"):
        assert set(GRAPH_COUNT_COLUMNS) <= set(want[t].columns)


def test_ring_grouping_equals_components_and_leiden(spark_engine: SparkEngine) -> None:
    rng = np.random.default_rng(3)
    s = RingSettings(max_ring_size=12, min_ring_size=3)
    # small rings, a chain, and one component above the cap that Leiden must split
    blocks, src, dst, base = [], [], [], 0
    for size in (4, 5, 3, 2, 40):
        nodes = np.arange(base, base + size)
        k = size * 2
        src.append(rng.choice(nodes, k))
        dst.append(rng.choice(nodes, k))
        src.append(nodes[:-1])  # a path through the block keeps it one component
        dst.append(nodes[1:])
        blocks.append(nodes)
        base += size
    n = base + 5  # five isolated nodes
    a, b = np.concatenate(src), np.concatenate(dst)
    w = rng.random(len(a)) + 0.5
    want = group_nodes(n, a, b, w, s)
    got = spark_engine.group_nodes(n, a, b, w, s)
    np.testing.assert_array_equal(got, want)
    assert len(set(want[want >= 0])) >= 4  # the big block was split into several rings


def test_engine_is_chosen_by_name(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert open_engine(settings).name == "pandas"
    with pytest.raises(UnknownEngine, match="use one of pandas, spark"):
        open_engine(settings, "dask")


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory: pytest.TempPathFactory, spark_engine: SparkEngine) -> dict[str, PipelineResult]:
    out = {}
    calls: Counter[str] = Counter()
    with pytest.MonkeyPatch.context() as mp:  # count what the pipeline hands to the Spark engine
        for name in ("graph_counts", "group_nodes", "margin_and_reasons", "contributions"):
            mp.setattr(SparkEngine, name, _counted(getattr(SparkEngine, name), name, calls))
        for engine in ("pandas", "spark"):
            tmp = tmp_path_factory.mktemp(engine)
            settings = Settings(home=tmp / "home", progress=False, spark=TEST_SPARK)
            out[engine] = run_pipeline(data=SAMPLE, out=tmp / "out", settings=settings, engine=engine)
            out[engine].manifest["out"] = tmp / "out"
    out["spark"].manifest["spark_calls"] = dict(calls)
    return out


def _counted(method: Any, name: str, calls: Counter[str]) -> Any:
    def counting(self: SparkEngine, *args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return method(self, *args, **kwargs)

    return counting


def test_the_pipeline_runs_its_stages_on_spark(both_runs: dict[str, PipelineResult]) -> None:
    """Features, ring grouping and scoring went through the Spark engine, not around it."""
    calls = both_runs["spark"].manifest["spark_calls"]
    assert calls["graph_counts"] == 1
    assert calls["group_nodes"] >= 1  # identity, collusion, enrolment rings of the main process
    assert calls["margin_and_reasons"] >= 1 and calls["contributions"] >= 1
    assert (both_runs["spark"].manifest["out"] / "scores.parquet").exists()
    assert not (both_runs["pandas"].manifest["out"] / "scores.parquet").exists()


def test_end_to_end_each_engine_training_its_own_model(both_runs: dict[str, PipelineResult]) -> None:
    p, s = both_runs["pandas"], both_runs["spark"]
    key = ["entity_type", "entity_id"]
    ps = p.scores.sort_values(key).reset_index(drop=True)
    ss = s.scores.sort_values(key).reset_index(drop=True)
    assert ps[key].equals(ss[key])
    np.testing.assert_allclose(ss["risk_score"], ps["risk_score"], rtol=0, atol=SCORE_TOLERANCE)
    assert (ps["grade"] == ss["grade"]).all()
    hit_key = ["rule_id", "entity_type", "entity_id"]
    assert (
        p.rule_hits[hit_key]
        .sort_values(hit_key)
        .reset_index(drop=True)
        .equals(s.rule_hits[hit_key].sort_values(hit_key).reset_index(drop=True))
    )
    # evidence included (as computed, before encryption at rest)
    want, got = (r.rule_hits.sort_values(hit_key).reset_index(drop=True) for r in (p, s))
    pd.testing.assert_frame_equal(got, want)
    ring_key = ["ring_id", "ring_type", "entity_type", "entity_id"]
    assert (
        p.rings[ring_key]
        .sort_values(ring_key)
        .reset_index(drop=True)
        .equals(s.rings[ring_key].sort_values(ring_key).reset_index(drop=True))
    )


def test_the_manifest_says_what_ran_where(both_runs: dict[str, PipelineResult]) -> None:
    assert both_runs["pandas"].manifest["engine"] == {"name": "pandas"}
    engine = both_runs["spark"].manifest["engine"]
    assert engine["name"] == "spark" and engine["master"] == "local[2]"
    assert "projection (edge DataFrames)" in engine["in_spark"]
    assert any(stage.startswith("rings: grouping") for stage in engine["in_spark"])
    assert any(stage.startswith("scoring:") for stage in engine["in_spark"])
    assert {"rules", "training"} <= set(engine["on_driver"])
    assert engine["components"]


def test_scores_with_the_same_model_equal_to_1e_6(spark_engine: SparkEngine, sample) -> None:
    dataset, proj = sample
    X = PandasEngine().features(dataset, proj)["person"]
    y = labels_of(dataset, "person", X.index)
    ms = ModelSettings(n_estimators=40, threads=1)
    model = CrossFittedRiskModel(ms).fit(X.loc[y.index], y.to_numpy(), assign_folds(y, ms).to_numpy())
    risk, contributions = spark_engine.score(model, X)
    np.testing.assert_allclose(risk, model.predict_proba(X), rtol=0, atol=SCORE_TOLERANCE)
    want = model.contributions(X)
    assert contributions.index.equals(want.index) and list(contributions.columns) == list(want.columns)
    np.testing.assert_allclose(contributions.to_numpy(), want.to_numpy(), rtol=0, atol=SCORE_TOLERANCE)
    # what the pipeline's scoring stage asks of the engine: margins and path reasons, every row
    margin, idx, val = spark_engine.margin_and_reasons(model, X)
    want_margin, want_idx, want_val = model.margin_and_reasons(X)
    np.testing.assert_allclose(margin, want_margin, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(val, want_val)
    top = spark_engine.contributions(model, X.iloc[:50])
    assert top.index.equals(X.index[:50])
    np.testing.assert_allclose(top.to_numpy(), want.iloc[:50].to_numpy(), rtol=0, atol=SCORE_TOLERANCE)


def test_the_output_files_match(both_runs: dict[str, PipelineResult]) -> None:
    """`riskgraph pipeline --engine spark` against the default: the same --out contract files."""
    folders = {name: r.manifest["out"] for name, r in both_runs.items()}
    assert (folders["spark"] / "rings.csv").read_bytes() == (folders["pandas"] / "rings.csv").read_bytes()
    # evidence holds values encrypted under each home's own key: compared without it
    hits = [
        pd.read_csv(folders[e] / "rule_hits.csv", dtype=str).drop(columns=["evidence"]) for e in ("pandas", "spark")
    ]
    assert hits[0].equals(hits[1]) and len(hits[0]) > 0
    key = ["entity_type", "entity_id"]
    p, s = (
        pd.read_csv(folders[e] / "scores.csv", dtype={"entity_id": str}).sort_values(key) for e in ("pandas", "spark")
    )
    np.testing.assert_allclose(s["risk_score"], p["risk_score"], rtol=0, atol=SCORE_TOLERANCE)
    same = [c for c in p.columns if c not in ("risk_score", "model_version")]
    assert p[same].reset_index(drop=True).equals(s[same].reset_index(drop=True))


def test_the_spark_run_also_writes_parquet(both_runs: dict[str, PipelineResult]) -> None:
    out = both_runs["spark"].manifest["out"]
    for name in ("scores", "rule_hits", "rings"):
        csv = pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
        parquet = pd.read_parquet(out / f"{name}.parquet")
        assert list(parquet.columns) == list(csv.columns) and len(parquet) == len(csv), name


def test_an_unknown_engine_stops_the_run_before_any_stage(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", progress=False, engine="dask")
    with pytest.raises(UnknownEngine):
        run_pipeline(data=SAMPLE, out=tmp_path / "out", settings=settings)
    assert not (tmp_path / "out" / "scores.csv").exists()
