"""Shared fixtures: one small synthetic dataset scored once per session, apps over copies of it."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import ROLES
from composer.pipeline import run_pipeline
from riskgraph.settings import Settings
from synth.generator import generate

KEYS = {role: f"test-key-{role}" for role in ROLES}


def headers(role: str | None) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]} if role else {}


def make_settings(home: Path, **overrides: object) -> Settings:
    base = dict(home=home, store_url=f"memory://{home / 'store'}", progress=False, api_scheduler=False,
                api_keys={k: r for r, k in KEYS.items()},
                model={"explain_top": 60, "n_estimators": 60, "folds": 3, "threads": 1})
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def scored_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home folder (results DB, store, feature matrices) after one pipeline run."""
    root = tmp_path_factory.mktemp("api")
    generate(persons=500, seed=11, out=root / "data", progress=False)
    home = root / "home"
    run_pipeline(data=root / "data", out=root / "out", settings=make_settings(home))
    return home


@pytest.fixture
def home_copy(scored_home: Path, tmp_path: Path) -> Path:
    """A private copy of the scored home, for tests that change results."""
    home = tmp_path / "home"
    shutil.copytree(scored_home, home)
    return home


@pytest.fixture(scope="session")
def client(scored_home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(scored_home))) as c:
        yield c


@pytest.fixture
def private_client(home_copy: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(home_copy))) as c:
        yield c
