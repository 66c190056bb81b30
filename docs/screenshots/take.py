"""Take the screenshots in docs/screenshots/ again: the bundled sample through the pipeline (as
`make run` does) into a temporary home, the app on a free loopback port, headless Chromium.

    .venv/bin/python docs/screenshots/take.py [--home SCORED_HOME]

Needs what the page tests need (tests/pages/setup.sh). Writes risk-list.png, entity.png,
graph-explorer.png and ring-focus.png next to this file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from composer.pipeline import run_pipeline  # noqa: E402
from riskgraph.ports import free_port  # noqa: E402
from riskgraph.settings import Settings  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1000}
GRAPH = "[data-testid=graph-canvas]"


def _settings(home: Path, port: int = 8000) -> Settings:
    return Settings(
        home=home, store_url=f"memory://{home / 'store'}", progress=False, api_scheduler=False, api_keys={}, port=port
    )  # type: ignore[arg-type]


def _serve(home: Path) -> tuple[str, Any]:
    import uvicorn

    from api.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(_settings(home, port)), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def _settle(page: Any) -> None:
    page.wait_for_function(
        f"() => {{ const c = document.querySelector('{GRAPH}'); return c && c.rgGraph && c.rgGraph.counts().nodes > 1; }}"
    )
    page.wait_for_timeout(800)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an already scored home to copy instead of running the pipeline")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="riskgraph-shots-"))
    home = work / "home"
    if args.home:
        shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("api_keys.json"))
    else:
        run_pipeline(data=ROOT / "data_samples", out=work / "out", settings=_settings(home))
    base, server = _serve(home)
    keys = {role: key for key, role in json.loads((home / "api_keys.json").read_text()).items()}

    import httpx
    from playwright.sync_api import sync_playwright

    def get(path: str, **params: Any) -> Any:
        r = httpx.get(base + path, params=params, headers={"X-API-Key": keys["investigator"]}, timeout=60)
        r.raise_for_status()
        return r.json()

    identity = get("/v1/rings", ring_type="identity")["items"]
    ring = get(f"/v1/rings/{(identity or get('/v1/rings')['items'])[0]['ring_id']}")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--disable-dev-shm-usage"])
            page = browser.new_context(viewport=VIEWPORT, base_url=base).new_page()
            page.goto("/")
            page.evaluate("k => localStorage.setItem('riskgraph.apiKey', k)", keys["investigator"])

            page.goto("/#/risk/person")
            page.locator(".risk-table tbody tr").first.wait_for()
            page.wait_for_timeout(500)
            page.screenshot(path=str(OUT / "risk-list.png"))

            listed = get("/v1/risk/person", limit=200)["items"]
            person = next((i for i in listed if i["rule_hits"] and i["rings"]), listed[0])["entity_id"]
            page.goto(f"/#/entity/person/{person}")
            _settle(page)
            page.screenshot(path=str(OUT / "entity.png"))

            top = get("/v1/risk/clinic", limit=1)["items"][0]["entity_id"]
            page.goto(f"/#/entity/clinic/{top}")
            _settle(page)
            page.evaluate(
                f"""() => {{ const g = document.querySelector('{GRAPH}').rgGraph;
                const n = g.cy.nodes().filter(n => n.data('node').type === 'person')[0]; g.select('person', n.data('node').id); }}"""
            )
            page.get_by_test_id("graph-selected").locator("[data-action=expand]").click()
            page.wait_for_function("() => document.querySelector('[data-testid=explorer]').dataset.expanded === '1'")
            page.wait_for_timeout(800)
            page.get_by_test_id("explorer").screenshot(path=str(OUT / "graph-explorer.png"))

            page.goto(f"/#/ring/{ring['ring_id']}")
            page.wait_for_function("() => document.querySelector('[data-testid=explorer]')?.dataset.focus === 'on'")
            page.wait_for_timeout(800)
            page.screenshot(path=str(OUT / "ring-focus.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
    shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
