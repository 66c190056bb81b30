"""Browser tests of the pages: the sample data scored once, `riskgraph serve`'s app on a free loopback
port (development keys, as a first-time user gets them), headless Chromium driven by Playwright.
Screenshots go to tests/pages/artifacts/ (gitignored). Set-up on a fresh machine: tests/pages/setup.sh."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from composer.pipeline import run_pipeline
from riskgraph.ports import free_port
from riskgraph.settings import Settings
from synth.generator import generate
from tests.pages.support import ARTIFACTS, Shooter

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data_samples"
VIEWPORT = {"width": 1400, "height": 1000}


def _chromium() -> str | None:
    return os.environ.get("RISKGRAPH_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


# The page tests never skip: a missing browser or driver is a failure with the fix in its message.
try:
    from playwright import sync_api
except ImportError as exc:
    raise RuntimeError("python playwright missing: run tests/pages/setup.sh (make test does)") from exc
if _chromium() is None:
    raise RuntimeError("no chromium on PATH: run tests/pages/setup.sh (make test does)")


def page_settings(home: Path) -> Settings:
    """A small, quick model; no keys configured, so the app writes development keys like a first start."""
    return Settings(
        home=home,
        store_url=f"memory://{home / 'store'}",
        progress=False,
        api_scheduler=False,
        api_keys={},
        host="127.0.0.1",
        model={"explain_top": 200, "n_estimators": 60, "folds": 3, "threads": 1},
    )  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pages_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample dataset (generated when data_samples/ is empty) through the pipeline.
    RISKGRAPH_TEST_PAGES_HOME=DIR reuses a copy of an already scored home instead (quicker page work)."""
    root = tmp_path_factory.mktemp("pages")
    scored = os.environ.get("RISKGRAPH_TEST_PAGES_HOME")
    if scored:
        shutil.copytree(scored, root / "home", ignore=shutil.ignore_patterns("api_keys.json"))
        return root / "home"
    data = SAMPLE
    if not (SAMPLE / "persons.csv").exists() and not (SAMPLE / "persons.parquet").exists():
        data = root / "data"
        generate(persons=2000, seed=7, out=data, progress=False)
    home = root / "home"
    run_pipeline(data=data, out=root / "out", settings=page_settings(home))
    return home


@pytest.fixture(scope="session")
def server(pages_home: Path) -> Iterator[str]:
    """The API and pages under uvicorn on 127.0.0.1:<free port>; yields the base URL."""
    import uvicorn

    from api.app import create_app

    port = free_port()
    app = create_app(page_settings(pages_home).model_copy(update={"port": port}))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, name="pages-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=15)


@pytest.fixture(scope="session")
def keys(server: str, pages_home: Path) -> dict[str, str]:
    """Role -> development key, read from the file a first-time user is pointed to."""
    return {role: key for key, role in json.loads((pages_home / "api_keys.json").read_text()).items()}


@pytest.fixture(scope="session")
def api_get(server: str, keys: dict[str, str]) -> Any:
    """GET the API directly (for expected values), as an investigator unless told."""

    def get(path: str, role: str = "investigator", **params: Any) -> Any:
        r = httpx.get(server + path, params=params, headers={"X-API-Key": keys[role]}, timeout=60)
        r.raise_for_status()
        return r.json()

    return get


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    for old in ARTIFACTS.glob("*.png"):  # this run's screenshots only
        old.unlink()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=["--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (empty localStorage), failing the test on any page script error."""
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True, base_url=server)
    pg = ctx.new_page()
    pg.set_default_timeout(45_000)  # CI runs the whole suite on 2 loaded cores
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    try:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            Shooter(pg, request.node.name)("failure")
    finally:
        ctx.close()
    assert not errors, f"page script errors: {errors}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]


@pytest.fixture
def shoot(page: Any, request: pytest.FixtureRequest) -> Shooter:
    """shoot("label"): a full-page screenshot kept as a test artefact."""
    return Shooter(page, request.node.name)


@pytest.fixture
def login(page: Any, keys: dict[str, str]) -> Any:
    """Store `role`'s key in the browser (as the key page does) and open `route`."""

    def go(role: str, route: str = "#/risk/person") -> Any:
        page.goto("/")
        page.evaluate("k => localStorage.setItem('riskgraph.apiKey', k)", keys[role])
        # a fresh document: "/" may have sent the previous role to its landing page, and going to
        # that same URL again would not load the page under the new key
        page.goto("about:blank")
        page.goto("/" + route)
        return page

    return go
