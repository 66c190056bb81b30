"""A generated sample scored once per module: data, projection, features, rules and rings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from composer.pipeline import evaluate_rules, protected_columns
from features.build import build_features
from features.graph_features import add_graph_features
from features.rings import RingResult, detect_rings
from graph.dataset import Dataset, load_dataset
from graph.dictionary import load_dictionary
from graph.projection import Projection
from riskgraph.settings import Settings
from rules.engine import RuleResult
from synth.generator import generate

PERSONS = 2_000
SEED = 7


@dataclass
class Scored:
    folder: Path
    dataset: Dataset
    proj: Projection
    features: dict[str, pd.DataFrame]
    rules: RuleResult
    rings: RingResult
    truth: pd.DataFrame


@pytest.fixture(scope="package")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Scored:
    folder = tmp_path_factory.mktemp("scoring-sample") / "data"
    generate(persons=PERSONS, seed=SEED, out=folder, progress=False)
    dataset = load_dataset(folder)
    proj = Projection(dataset)
    settings = Settings(home=folder.parent / "home", progress=False)
    rules = evaluate_rules(dataset, settings)  # facility rings read the rule hits
    return Scored(
        folder,
        dataset,
        proj,
        add_graph_features(build_features(dataset, proj, exclude=protected_columns(load_dictionary(folder))), proj),
        rules,
        detect_rings(dataset, rules.hits, settings.rings),
        pd.read_csv(folder / "truth" / "truth.csv", dtype=str, keep_default_na=False),
    )
