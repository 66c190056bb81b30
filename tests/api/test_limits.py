"""Limits: request heads over 16 KB get 431 from a real `riskgraph serve` (uvicorn) before any
parsing; graph queries time out (504) and one key's heavy queries do not hold up another key's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from riskgraph.api_keys import KeyStore, Pepper
from riskgraph.ports import free_port
from riskgraph.results import ResultsDB
from tests.api.support import KEYS, headers, make_settings, run_async

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(home_copy: Path) -> Iterator[int]:
    """`riskgraph serve` on a free port, over a copy of the scored home."""
    port = free_port()
    env = {
        **os.environ,
        "RISKGRAPH_HOME": str(home_copy),
        "RISKGRAPH_STORE_URL": f"memory://{home_copy / 'store'}",
        "RISKGRAPH_API_KEYS": json.dumps({k: r for r, k in KEYS.items()}),
        "RISKGRAPH_API_SCHEDULER": "false",
        "RISKGRAPH_PROGRESS": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "riskgraph serve exited"
            assert time.monotonic() < end, "riskgraph serve did not start"
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def _raw(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_100kb_header_gets_431_from_the_real_server(served: int) -> None:
    port = served
    key = KEYS["approval_system"].encode()
    ok = _raw(port, b"GET /v1/credit/person/P0000001 HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + b"\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]
    # just under the limit still passes
    fine = b"X-Pad: " + b"a" * 12_000 + b"\r\n"
    ok = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fine + b"\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]
    for size in (100_000, 17_000):
        big = b"X-Big: " + b"b" * size + b"\r\n"
        answer = _raw(
            port, b"GET /v1/credit/person/P0000001 HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + b"\r\n" + big + b"\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"c" * 100) for i in range(1000))  # many small headers, 100 KB
    answer = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    # and the server still answers promptly afterwards
    t0 = time.monotonic()
    r = httpx.get(f"http://127.0.0.1:{port}/v1/credit/person/P0000001", headers=headers("approval_system"))
    assert r.status_code == 200 and time.monotonic() - t0 < 2


def test_header_limit_inside_the_app_too(client: TestClient) -> None:
    """Behind any other ASGI server, the middleware still refuses heads over the limit."""
    r = client.get("/healthz", headers={"X-Big": "b" * 20_000})
    assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"


def test_graph_query_timeout(home_copy: Path) -> None:
    with TestClient(create_app(make_settings(home_copy, api_graph_timeout_s=0.3))) as c:
        store = c.app.state.riskgraph.store
        real = store.neighbours

        def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
            time.sleep(1.5)
            return real(*args, **kwargs)

        store.neighbours = slow
        t0 = time.monotonic()
        r = c.get("/v1/entities/person/P0000001/neighbours", headers=headers("investigator"))
        assert r.status_code == 504 and r.json()["error"]["code"] == "graph_timeout"
        assert "0.3 s" in r.json()["error"]["message"]
        assert time.monotonic() - t0 < 1.2
        store.neighbours = real
        time.sleep(1.5)  # the abandoned call ends and gives its slot back
        assert c.get("/v1/entities/person/P0000001/neighbours", headers=headers("investigator")).status_code == 200


def test_heavy_queries_of_one_key_do_not_block_another_key(home_copy: Path) -> None:
    settings = make_settings(home_copy)
    app = create_app(settings)
    state = app.state.riskgraph
    heavy_key, _ = KeyStore(ResultsDB(settings.results_database_url).engine, Pepper.of(home_copy)).create(
        role="investigator", institution="Heavy"
    )
    state.keyring.refresh()
    real = state.store.neighbours
    running = threading.Semaphore(0)

    def neighbours(ref, *, hops=1, limit=200, rel_types=None):  # type: ignore[no-untyped-def]
        if hops == 3:
            running.release()
            time.sleep(1.5)  # a hops=3&limit=1000 call on a large graph
        return real(ref, hops=hops, limit=limit, rel_types=rel_types)

    state.store.neighbours = neighbours
    took: dict[str, float] = {}

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as c:

            async def heavy() -> int:
                r = await c.get(
                    "/v1/entities/person/P0000001/neighbours",
                    params={"hops": 3, "limit": 1000},
                    headers={"X-API-Key": heavy_key},
                )
                return r.status_code

            async def light() -> None:
                await anyio.to_thread.run_sync(running.acquire)  # once the heavy calls run
                t0 = time.monotonic()
                r = await c.get("/v1/entities/person/P0000002/neighbours", headers=headers("investigator"))
                took["light"] = time.monotonic() - t0
                assert r.status_code == 200

            codes: list[int] = []

            async def collect() -> None:
                codes.append(await heavy())

            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(collect)
                tg.start_soon(light)
            return codes

    async def lifespan_main() -> list[int]:
        async with app.router.lifespan_context(app):
            return await main()

    codes = run_async(lifespan_main)
    assert codes == [200] * 6  # the heavy key's calls wait their turn (2 at once), within the timeout
    assert took["light"] < 1.0, took
