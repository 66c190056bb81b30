"""Keys, headers and settings shared by the API tests and their fixtures."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import anyio

from api.security import ROLES
from riskgraph.settings import Settings

# long and random-looking enough for the key strength rule (riskgraph/api_keys.py), yet fixed
KEYS = {role: f"test-key-{role}-" + hashlib.sha256(role.encode()).hexdigest()[:32] for role in ROLES}


T = TypeVar("T")


def run_async(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`anyio.run(func, *args)` in a thread of its own: the test's thread may already hold an event
    loop (pytest-playwright's sync API keeps one for the session in the page tests' process)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-async") as pool:
        return pool.submit(anyio.run, func, *args).result()


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
