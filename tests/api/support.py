"""Keys, headers and settings shared by the API tests and their fixtures."""

from __future__ import annotations

import hashlib
from pathlib import Path

from api.security import ROLES
from riskgraph.settings import Settings

# long and random-looking enough for the key strength rule (riskgraph/api_keys.py), yet fixed
KEYS = {role: f"test-key-{role}-" + hashlib.sha256(role.encode()).hexdigest()[:32] for role in ROLES}


def headers(role: str | None) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]} if role else {}


def make_settings(home: Path, **overrides: object) -> Settings:
    base = dict(
        home=home,
        store_url=f"memory://{home / 'store'}",
        progress=False,
        api_scheduler=False,
        api_keys={k: r for r, k in KEYS.items()},
        model={"explain_top": 60, "n_estimators": 60, "folds": 3, "threads": 1},
    )
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]
