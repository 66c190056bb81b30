"""A credit load against a real `riskgraph serve` process, killed with SIGKILL mid-load: every
decision a client received is in the audit log (its row was durable before the answer left)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from riskgraph.ports import free_port
from riskgraph.results import ResultsDB

pytestmark = pytest.mark.slow
KEY = "durability-test-approval-key-0123"


def _env(home: Path, keys: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "RISKGRAPH_HOME": str(home),
        "RISKGRAPH_API_KEYS": json.dumps(keys or {KEY: "approval_system"}),
        "RISKGRAPH_API_SCHEDULER": "false",
        "RISKGRAPH_PROGRESS": "false",
        "RISKGRAPH_API_RESULTS_POLL_S": "1",
        "RISKGRAPH_MODEL__N_ESTIMATORS": "60",
        "RISKGRAPH_MODEL__FOLDS": "3",
        "RISKGRAPH_MODEL__EXPLAIN_TOP": "60",
    }


def _serve(home: Path, keys: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`riskgraph serve` on `home` with these keys (key -> role; default: one approval-system key)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        env=_env(home, keys),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError("server did not start")
        time.sleep(0.2)


def test_every_answered_decision_survives_a_sigkill(scored_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(scored_home, home)
    server, base = _serve(home)
    try:
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
                            items = [
                                {"entity_type": "person", "entity_id": persons[(i + j) % len(persons)]}
                                for j in range(5)
                            ]
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
        os.kill(server.pid, signal.SIGKILL)  # mid-load: requests are in flight
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


def test_a_rescore_under_credit_traffic_commits_and_no_call_fails(scored_home: Path, tmp_path: Path) -> None:
    """The nightly re-score writes the results database while credit answers are audited in it."""
    home = tmp_path / "home"
    shutil.copytree(scored_home, home)
    db = ResultsDB(f"sqlite:///{home / 'results.db'}")
    before = db.served_run_id()
    persons = db.read("scores").query("entity_type == 'person'")["entity_id"].astype(str).tolist()
    server, base = _serve(home)
    statuses: list[int] = []
    runs_seen: set[str] = set()
    stop = threading.Event()

    def load(k: int) -> None:
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=30) as client:
            i = k
            while not stop.is_set():
                i += 5
                r = client.get(f"/v1/credit/person/{persons[i % len(persons)]}")
                statuses.append(r.status_code)
                if r.status_code == 200:
                    runs_seen.add(r.json()["run_id"])

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    try:
        for t in threads:
            t.start()
        job = subprocess.run(
            [sys.executable, "-m", "cli.main", "jobs", "run", "nightly-rescore"],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert job.returncode == 0, job.stderr
        after = ResultsDB(f"sqlite:///{home / 'results.db'}").served_run_id()
        assert after != before
        deadline = time.monotonic() + 30
        while after not in runs_seen and time.monotonic() < deadline:  # the server picks the new run up
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        server.kill()
        server.wait()
    assert statuses and set(statuses) == {200}
    assert runs_seen == {before, after}
