"""Shared fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

from riskgraph.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated in a temporary home, no progress bars."""
    return Settings(home=tmp_path / "home", store_url=f"memory://{tmp_path / 'store'}", progress=False)
