"""Any subset of the optional tables, and column variants (optional columns missing or empty,
extra columns of any name and kind), goes through every stage, or is refused as an invalid
dataset: never another error. DESIGN.md "Input contract": only `persons` is required."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from composer.pipeline import evaluate_rules, explain_types, score_types
from features.build import build_features
from features.graph_features import add_graph_features
from features.rings import detect_rings
from graph.contract import ENTITY_TABLE, ENTITY_TYPES, TABLES
from graph.dataset import load_dataset
from graph.projection import Projection
from riskgraph.errors import InvalidDataset
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings
from scoring.model import CrossFittedRiskModel, lightgbm_names
from scoring.registry import ModelRegistry
from scoring.score import EntityScores
from synth.generator import generate

PERSONS = 300
OPTIONAL = tuple(t for t in TABLES if t != "persons")
# Odd column names users do write; the reserved ones are names of derived features.
ODD_NAMES = (
    "income (net, CNY)",
    "收入（元）",
    'a "quoted" name',
    "x:y",
    "[bracket]",
    "{brace}",
    "a,b",
    "it's",
    "tab\tin",
    "two\nlines",
    "é",
    "0",
    "nan",
    "rings",
    "rule_hits",
    "rule_x",
    "pagerank",
    "nb_x",
    "visits",
    "employees",
    "is_dead",
    "birth_date_years_ago",
    "entity_id",
    "input_rings",
)
NAME_CHARS = list(" ()[]{},:;\"'_-.#/\\aZ9") + ["收", "入", "（", "元", "）", "é"]


@pytest.fixture(scope="session")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """A small synthetic dataset with every table, each table as text (as in its CSV)."""
    folder = tmp_path_factory.mktemp("subsets") / "base"
    generate(persons=PERSONS, seed=3, out=folder, progress=False)
    return {t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False) for t in TABLES}


def consistent(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables left valid once entity tables are gone: a table that must reference a missing
    entity table goes, an optional reference column goes, and rows naming a missing type go."""
    present = {et for et in ENTITY_TYPES if ENTITY_TABLE[et] in frames}
    out = {}
    for name, df in frames.items():
        table = TABLES[name]
        refs = [r for r in table.references if r.entity_type not in present and r.column in df.columns]
        if any(table.column(r.column).required for r in refs):
            continue
        df = df.drop(columns=[r.column for r in refs])
        if table.polymorphic_ref:
            df = df[df[table.polymorphic_ref[0]].isin(present)]
        out[name] = df
    return out


def write(frames: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return folder


def run_stages(folder: Path, tmp_path: Path) -> dict[str, EntityScores]:
    """Every stage of composer/pipeline.py in process, from load to scores (no outputs)."""
    dataset = load_dataset(folder)
    proj = Projection(dataset)
    features = add_graph_features(build_features(dataset, proj), proj)
    settings = Settings(home=tmp_path / "home", progress=False)
    rule_result = evaluate_rules(dataset, settings)
    rings = detect_rings(dataset, rule_result.hits, settings.rings)
    registry = ModelRegistry(ResultsDB(f"sqlite:///{(tmp_path / 'results.db').as_posix()}"))
    scored = score_types(dataset, proj, features, rule_result, rings, settings, registry)
    explain_types(scored, dataset, proj, rule_result, rings, settings)
    return scored


def assert_every_person_scored(scores: dict[str, EntityScores], persons: pd.DataFrame) -> None:
    table = scores["person"].table
    assert sorted(table["entity_id"]) == sorted(persons["person_id"])
    assert np.isfinite(table["risk_score"].to_numpy(dtype=float)).all()
    assert table["grade"].isin(["A", "B", "C", "D"]).all()
    for s in scores.values():
        assert s.matrix is None or s.matrix.columns.is_unique


@pytest.mark.parametrize("dropped", OPTIONAL)
def test_each_optional_table_can_be_missing(frames: dict[str, pd.DataFrame], dropped: str, tmp_path: Path) -> None:
    kept = consistent({t: df for t, df in frames.items() if t != dropped})
    scores = run_stages(write(kept, tmp_path / "data"), tmp_path)
    assert_every_person_scored(scores, frames["persons"])
    if dropped in ENTITY_TABLE.values():
        assert scores[next(t for t, n in ENTITY_TABLE.items() if n == dropped)].kind == "empty"


def test_persons_alone(frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    scores = run_stages(write({"persons": frames["persons"]}, tmp_path / "data"), tmp_path)
    assert_every_person_scored(scores, frames["persons"])


OPTIONAL_COLUMNS = tuple((t, c.name) for t in TABLES for c in TABLES[t].columns if not c.required)
EXTRA_KINDS = ("numeric", "categorical", "missing", "constant", "id-like")
column_names = st.one_of(st.sampled_from(ODD_NAMES), st.text(NAME_CHARS, min_size=1, max_size=12)).map(str.strip)


@st.composite
def plans(draw: st.DrawFn) -> dict:
    """A random variant of the dataset, as a plain description (see `build`)."""
    tables = sorted(draw(st.sets(st.sampled_from(OPTIONAL))))
    return {
        "tables": tables,
        "drop_columns": sorted(draw(st.sets(st.sampled_from(OPTIONAL_COLUMNS), max_size=8))),
        "empty_columns": sorted(draw(st.sets(st.sampled_from(OPTIONAL_COLUMNS), max_size=8))),
        "extras": draw(
            st.lists(
                st.tuples(
                    st.sampled_from([t for t in ("persons", *tables) if TABLES[t].extras_allowed]),
                    column_names.filter(bool),
                    st.sampled_from(EXTRA_KINDS),
                    st.integers(0, 2**16),
                ),
                max_size=2,
            )
        ),
        # a quarter of the examples make one table header-only, which the loader must refuse
        "header_only": draw(st.sampled_from(tables)) if tables and draw(st.integers(0, 3)) == 0 else None,
    }


def build(frames: dict[str, pd.DataFrame], plan: dict) -> dict[str, pd.DataFrame]:
    out = consistent({t: df for t, df in frames.items() if t == "persons" or t in plan["tables"]})
    for t, c in plan["drop_columns"]:
        if t in out and c in out[t]:
            out[t] = out[t].drop(columns=[c])
    for t, c in plan["empty_columns"]:
        if t in out and c in out[t]:
            out[t] = out[t].assign(**{c: ""})
    for t, name, kind, seed in plan["extras"]:
        if t not in out or name in out[t] or TABLES[t].column(name):  # dropped table, or not an extra
            continue
        n, rng = len(out[t]), np.random.default_rng(seed)
        values = {
            "numeric": lambda: rng.normal(1000, 300, n).round(2).astype(str),
            "categorical": lambda: rng.choice(["low", "mid", "high", ""], n),  # some missing
            "missing": lambda: np.full(n, ""),
            "constant": lambda: np.full(n, "7"),
            "id-like": lambda: np.array([f"k{i}" for i in range(n)]),
        }[kind]()
        out[t] = out[t].assign(**{name: values})
    if plan["header_only"] in out:
        out[plan["header_only"]] = out[plan["header_only"]].iloc[:0]
    return out


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans())
def test_random_subsets_and_column_variants(frames: dict[str, pd.DataFrame], plan: dict) -> None:
    tables = build(frames, plan)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write(tables, Path(tmp) / "data")
        if plan["header_only"] in tables:
            with pytest.raises(InvalidDataset, match="header but no rows"):
                run_stages(folder, Path(tmp))
            return
        scores = run_stages(folder, Path(tmp))
    assert_every_person_scored(scores, frames["persons"])


def test_extra_column_with_an_odd_name_in_a_trained_model(frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    persons = frames["persons"]
    income = np.random.default_rng(1).normal(5000, 1500, len(persons)).round(0)
    tables = {
        **frames,
        "persons": persons.assign(
            **{"income (net, CNY)": income.astype(str), "收入（元）": (income * 0.9).astype(str)}
        ),
    }
    scores = run_stages(write(tables, tmp_path / "data"), tmp_path)
    assert_every_person_scored(scores, persons)
    person = scores["person"]
    assert person.kind == "supervised"
    assert {"income (net, CNY)", "收入（元）"} <= set(person.importance.index)
    assert {"income (net, CNY)", "收入（元）"} <= set(person.contributions.columns)
    assert list(person.model.importance().index.sort_values()) == sorted(person.matrix.columns)


def test_extra_columns_named_like_derived_features_are_kept_apart(
    frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    persons = frames["persons"].assign(visits="999", rings="7", input_rings="8", rule_x="1", pagerank="2")
    X = run_stages(write({**frames, "persons": persons}, tmp_path / "data"), tmp_path)["person"].matrix
    assert (X["input_visits"] == 999).all() and not (X["visits"] == 999).all()
    assert (X["input_input_rings"] == 7).all() and (X["input_rings"] == 8).all()
    assert (X["input_rule_x"] == 1).all() and (X["input_pagerank"] == 2).all()
    assert "rule_x" not in X and X.columns.is_unique


def test_names_that_sanitise_alike_stay_distinct_features() -> None:
    rng = np.random.default_rng(0)
    names = ["a b", "a_b", "a,b", "a:b", '"a b"', "收入（元）", "收入(元)"]
    X = pd.DataFrame(rng.normal(size=(200, len(names))), columns=names)
    y = (X["a,b"] + 0.1 * rng.normal(size=200) > 0).astype(int).to_numpy()
    assert len(set(lightgbm_names(names))) == len(names)
    model = CrossFittedRiskModel().fit(X, y)
    assert model.importance().index[0] == "a,b"
    contrib = model.contributions(X.iloc[:5])
    assert list(contrib.columns) == names
    assert np.allclose(
        contrib.sum(axis=1) + model.final_.predict(X.iloc[:5].to_numpy(), pred_contrib=True)[:, -1],
        model.margin(X.iloc[:5]),
    )
