"""Every disclosure route writes one audit row (role, unmasked or not, the ids shown), and the log
the API writes is a hash chain that `verify` accepts clean and rejects once tampered with."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from riskgraph.results import ResultsDB
from tests.api.support import headers
from tests.api.test_audit_durability import KEY, _serve

INVESTIGATOR, INSPECTOR = headers("investigator"), headers("inspector")


def _db(home: Path) -> ResultsDB:
    return ResultsDB(f"sqlite:///{home / 'results.db'}", home=home)


def _rows(home: Path) -> list[dict[str, Any]]:
    return list(_db(home).audit_rows())


def _one_new_row(client: TestClient, home: Path, url: str, hdrs: dict[str, str], **params: Any) -> dict[str, Any]:
    before = len(_rows(home))
    r = client.get(url, params=params, headers=hdrs)
    assert r.status_code == 200, r.text
    rows = _rows(home)
    assert len(rows) == before + 1, f"{url} wrote {len(rows) - before} audit rows"
    row = rows[-1]
    row["detail"] = json.loads(row["detail"])
    row["body"] = r.json()
    return row


def test_each_disclosure_route_writes_one_audit_row(private_client: TestClient, home_copy: Path) -> None:
    c, home = private_client, home_copy
    row = _one_new_row(c, home, "/v1/entities/person/P0000001", INVESTIGATOR)
    assert (row["action"], row["role"], row["entity_type"], row["entity_id"]) == (
        "entity_detail",
        "investigator",
        "person",
        "P0000001",
    )
    assert row["detail"]["unmasked"] is True and row["grade"] == row["body"]["credit"]["grade"]
    assert row["detail"]["rings"] == [x["ring_id"] for x in row["body"]["rings"]]
    assert row["decision_id"] and row["run_id"] == row["body"]["credit"]["run_id"]

    row = _one_new_row(c, home, "/v1/entities/person/P0000001", INSPECTOR)
    assert row["role"] == "inspector" and row["detail"]["unmasked"] is False

    row = _one_new_row(c, home, "/v1/entities/person/P0000001/neighbours", INSPECTOR, hops=2, limit=20)
    assert (row["action"], row["entity_id"], row["detail"]["unmasked"]) == ("neighbours", "P0000001", False)
    shown = sorted((t, i) for t, ids in row["detail"]["ids"].items() for i in ids)
    assert shown == sorted((n["type"], n["id"]) for n in row["body"]["nodes"])  # masked tokens as shown
    assert row["detail"]["hops"] == 2 and row["detail"]["limit"] == 20

    other = next(n["id"] for n in row["body"]["nodes"] if n["type"] == "person" and n["id"] != "P0000001")
    row = _one_new_row(
        c,
        home,
        "/v1/paths",
        INVESTIGATOR,
        source_type="person",
        source_id="P0000001",
        target_type="person",
        target_id=other,
    )
    assert row["action"] == "path" and row["detail"]["target"] == ["person", other] and row["detail"]["found"]
    assert sorted(i for ids in row["detail"]["ids"].values() for i in ids) == sorted(
        n["id"] for n in row["body"]["nodes"]
    )

    row = _one_new_row(c, home, "/v1/rings", INVESTIGATOR, limit=3)
    assert row["action"] == "rings_list" and row["detail"]["ids"] == [x["ring_id"] for x in row["body"]["items"]]
    assert row["detail"]["ids"] and row["detail"]["total"] == row["body"]["total"]
    ring_id = row["detail"]["ids"][0]

    row = _one_new_row(c, home, f"/v1/rings/{ring_id}", INSPECTOR)
    assert (row["action"], row["entity_type"], row["entity_id"]) == ("ring_detail", "ring", ring_id)
    members = sorted((t, i) for t, ids in row["detail"]["members"].items() for i in ids)
    assert members == sorted((m["type"], m["id"]) for m in row["body"]["members"])
    assert row["detail"]["unmasked"] is False

    # refused calls disclose nothing and write nothing
    before = len(_rows(home))
    assert c.get("/v1/entities/person/NOPE", headers=INVESTIGATOR).status_code == 404
    assert c.get("/v1/rings/NOPE", headers=INVESTIGATOR).status_code == 404
    assert c.get("/v1/entities/person/P0000001", headers=headers("approval_system")).status_code == 403
    assert len(_rows(home)) == before

    # the API's rows form one sealed chain with its head file
    verdict = _db(home).audit_verify()
    assert verdict.ok, verdict.summary()
    assert verdict.sealed >= 6
    deadline = time.monotonic() + 10  # the head file follows the commits (api/audit.py)
    while not (home / "audit.head").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (home / "audit.head").exists()


def test_the_api_log_fails_verify_once_a_row_is_altered(private_client: TestClient, home_copy: Path) -> None:
    for _ in range(3):
        assert private_client.get("/v1/rings", headers=INVESTIGATOR).status_code == 200
        assert private_client.get("/v1/credit/person/P0000001", headers=headers("approval_system")).status_code == 200
    assert _db(home_copy).audit_verify().ok
    victim = _rows(home_copy)[-3]["id"]
    with sqlite3.connect(home_copy / "results.db") as con:
        con.execute("UPDATE audit SET role = 'admin' WHERE id = ?", (victim,))
    verdict = _db(home_copy).audit_verify()
    assert not verdict.ok and verdict.broken_id == victim and "altered" in verdict.reason


@pytest.mark.slow
def test_the_chain_verifies_after_a_sigkill_under_load(scored_home: Path, tmp_path: Path) -> None:
    """A real server killed mid-load (audit rows committing, the head file following): the chain
    still verifies, with at most the rows of the last batches after the head, and every answered
    decision is in it."""
    home = tmp_path / "home"
    shutil.copytree(scored_home, home)
    persons = _db(home).read("scores").query("entity_type == 'person'")["entity_id"].astype(str).tolist()
    server, base = _serve(home)
    answered: list[str] = []
    stop = threading.Event()

    def load(k: int) -> None:
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=10) as client:
            i = k
            while not stop.is_set():
                i += 7
                try:
                    r = client.get(f"/v1/credit/person/{persons[i % len(persons)]}")
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200:
                    answered.append(r.json()["decision_id"])

    threads = [threading.Thread(target=load, args=(k,)) for k in range(8)]
    try:
        for t in threads:
            t.start()
        time.sleep(2.0)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        if server.poll() is None:
            server.kill()
            server.wait()
    assert len(answered) > 50
    verdict = _db(home).audit_verify()
    assert verdict.ok, verdict.summary()
    rows = {r["decision_id"] for r in _rows(home)}
    assert not set(answered) - rows
