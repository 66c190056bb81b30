"""A credit load against a real `riskgraph serve` process, killed with SIGKILL mid-load: every
decision a client received is in the audit log (its row was durable before the answer left)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from riskgraph.results import ResultsDB

pytestmark = pytest.mark.slow
KEY = "durability-test-approval-key-0123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_answered_decision_survives_a_sigkill(scored_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(scored_home, home)
    port = _free_port()
    env = {**os.environ, "RISKGRAPH_HOME": str(home), "RISKGRAPH_API_KEYS": json.dumps({KEY: "approval_system"}),
           "RISKGRAPH_API_SCHEDULER": "false", "RISKGRAPH_PROGRESS": "false"}
    server = subprocess.Popen([sys.executable, "-m", "riskgraph.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)

        db = ResultsDB(f"sqlite:///{home / 'results.db'}")
        persons = db.read("scores").query("entity_type == 'person'")["entity_id"].astype(str).tolist()
        answered: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(k: int) -> None:
            with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=10) as client:
                i = k
                while not stop.is_set():
                    i += 7
                    try:
                        if i % 3:
                            r = client.get(f"/v1/credit/person/{persons[i % len(persons)]}")
                            ids = [r.json()["decision_id"]] if r.status_code == 200 else []
                        else:
                            items = [{"entity_type": "person", "entity_id": persons[(i + j) % len(persons)]}
                                     for j in range(5)]
                            r = client.post("/v1/credit/batch", json={"items": items})
                            ids = [x["decision_id"] for x in r.json()["results"]] if r.status_code == 200 else []
                    except (httpx.HTTPError, ValueError):
                        return  # the server is gone
                    with lock:
                        answered.extend(ids)

        threads = [threading.Thread(target=load, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        os.kill(server.pid, signal.SIGKILL)   # mid-load: requests are in flight
        server.wait(10)
        stop.set()
        for t in threads:
            t.join(15)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    assert len(answered) > 50
    audit = ResultsDB(f"sqlite:///{home / 'results.db'}").read("audit")
    missing = set(answered) - set(audit["decision_id"].dropna())
    assert not missing, f"{len(missing)} of {len(answered)} answered decisions are not in the audit log"
