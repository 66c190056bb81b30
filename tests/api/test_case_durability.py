"""Case work against a real `riskgraph serve` process, killed with SIGKILL mid-load: every change a
client got an answer for is in the results database, and nothing is half-written (each case's
history matches its version, and each history event has its audit row)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from riskgraph.results import ResultsDB
from tests.api.test_audit_durability import _serve

pytestmark = pytest.mark.slow
KEYS = {"inspector": "durability-test-inspector-key-0123", "investigator": "durability-test-investig-key-0123"}


def test_every_answered_case_change_survives_a_sigkill(scored_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(scored_home, home)
    db = ResultsDB(f"sqlite:///{home / 'results.db'}")
    persons = db.read("scores").query("entity_type == 'person'")["entity_id"].astype(str).tolist()
    server, base = _serve(home, {k: r for r, k in KEYS.items()})
    answered: list[tuple[str, str]] = []  # (case id, comment text) of every answered comment
    lock = threading.Lock()
    stop = threading.Event()

    def work(k: int) -> None:
        role = "inspector" if k % 2 else "investigator"
        with httpx.Client(base_url=base, headers={"X-API-Key": KEYS[role]}, timeout=10) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    person = persons[(k * 97 + i) % len(persons)]
                    r = client.post(
                        "/v1/cases", json={"entity_type": "person", "entity_id": person, "typology": f"t{k}"}
                    )
                    if r.status_code != 201:
                        continue
                    case_id = r.json()["case_id"]
                    text = f"worker {k} note {i}"
                    r = client.post(f"/v1/cases/{case_id}/comments", json={"text": text})
                    if r.status_code == 200:
                        with lock:
                            answered.append((case_id, text))
                    client.post(f"/v1/cases/{case_id}/status", json={"status": "in_progress"})
                except (httpx.HTTPError, ValueError):
                    return  # the server is gone

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    try:
        for t in threads:
            t.start()
        time.sleep(3.0)
        os.kill(server.pid, signal.SIGKILL)  # mid-load: changes are in flight
        server.wait(10)
        stop.set()
        for t in threads:
            t.join(15)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    assert len(answered) > 10
    db = ResultsDB(f"sqlite:///{home / 'results.db'}")
    events = db.query("SELECT case_id, kind, note FROM case_events")
    comments = set(
        zip(events.loc[events["kind"] == "comment", "case_id"], events.loc[events["kind"] == "comment", "note"])
    )
    missing = set(answered) - comments
    assert not missing, f"{len(missing)} of {len(answered)} answered comments are lost"
    cases = db.query("SELECT case_id, version FROM cases").set_index("case_id")["version"]
    per_case = events.groupby("case_id").size()
    assert (per_case.reindex(cases.index).fillna(0) == cases).all()  # one event per change, none half-written
    audit = db.query("SELECT count(*) AS n FROM audit WHERE action LIKE 'case_%'")["n"].iloc[0]
    assert audit == len(events)
    assert db.audit_verify().ok  # the chain is intact (a head behind the table after a kill is accepted)
