"""Shared fixtures: one small synthetic dataset scored once per session, apps over copies of it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from composer.pipeline import run_pipeline
from synth.generator import generate
from tests.api.support import make_settings


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
def served_home(scored_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The copy the shared apps serve and audit into, so that `scored_home` stays untouched and
    copying it never races a server writing its audit head or database."""
    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(scored_home, home)
    return home


@pytest.fixture(scope="session")
def client(served_home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(served_home))) as c:
        yield c


@pytest.fixture
def private_client(home_copy: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(home_copy))) as c:
        yield c
