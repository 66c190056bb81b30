"""Institution keys: strength rule, `riskgraph keys create|list|revoke`, expiry, revocation,
rate limits (429 with Retry-After) and region scope."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from cli.main import cli
from riskgraph.api_keys import KeyConfigError, KeyStore, Pepper, WeakKey, key_weakness, new_key
from riskgraph.results import ResultsDB
from tests.api.support import KEYS, headers, make_settings


def _store(home: Path) -> KeyStore:
    settings = make_settings(home)
    return KeyStore(ResultsDB(settings.results_database_url).engine, Pepper.of(home))


@pytest.fixture
def keyed(home_copy: Path) -> Iterator[tuple[TestClient, KeyStore]]:
    with TestClient(create_app(make_settings(home_copy, api_keys_refresh_s=0.05))) as c:
        yield c, _store(home_copy)


def _wait_for(predicate, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "not within the refresh interval"
        time.sleep(0.05)


# -- strength -------------------------------------------------------------------------------------


def test_short_and_low_entropy_keys_refused() -> None:
    assert key_weakness("a") is not None
    assert key_weakness("a" * 64) is not None
    assert key_weakness("ab" * 32) is not None
    assert key_weakness("abcd" * 16) is not None
    assert key_weakness("0123456789" * 2) is not None  # too short
    assert key_weakness(new_key()) is None
    assert all(key_weakness(k) is None for k in KEYS.values())


def test_weak_settings_key_refused_at_startup(home_copy: Path) -> None:
    with pytest.raises(WeakKey, match="api_keys: the key of role 'admin' is too weak: 1 characters"):
        create_app(make_settings(home_copy, api_keys={"x": "admin"}))
    with pytest.raises(KeyConfigError, match="too weak"):
        create_app(make_settings(home_copy, api_keys={"a" * 40: "approval_system"}))


def test_weak_settings_key_refused_by_serve(home_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKGRAPH_HOME", str(home_copy))
    monkeypatch.setenv("RISKGRAPH_API_KEYS", '{"x": "admin"}')
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "too weak" in result.output and "role 'admin'" in result.output


def test_generated_dev_keys_pass(home_copy: Path) -> None:
    app = create_app(make_settings(home_copy, api_keys={}))
    keys = app.state.riskgraph.keyring.configured
    assert len(keys) == 5


# -- the command line -----------------------------------------------------------------------------


def test_keys_cli_create_list_revoke(home_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKGRAPH_HOME", str(home_copy))
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["keys", "create", "--role", "inspector", "--institution", "City HR", "--region", "R03"]
        + ["--expires", "2027-01-01", "--rate", "50"],
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    key_id = made.stdout.split()[2].rstrip(":")
    assert key_weakness(key) is None
    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0 and key_id in listed.output
    assert key not in listed.output
    for shown in ("inspector", "City HR", "R03", "2027-01-01T00:00:00+00:00", "50/s"):
        assert shown in listed.output
    stored = {k.key_id: k for k in _store(home_copy).list()}[key_id]
    assert stored.digest != key and key not in stored.digest and len(stored.digest) == 64
    raw = (home_copy / "results.db").read_bytes()
    assert key.encode() not in raw
    revoked = runner.invoke(cli, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    line = next(x for x in runner.invoke(cli, ["keys", "list"]).output.splitlines() if x.startswith(key_id))
    assert line.split()[-1] != "-"  # the revocation time
    assert runner.invoke(cli, ["keys", "revoke", "k-nope"]).exit_code == 2
    bad = runner.invoke(cli, ["keys", "create", "--role", "root", "--institution", "x"])
    assert bad.exit_code != 0


# -- expiry, revocation, actor --------------------------------------------------------------------


def test_institution_key_works_and_audit_names_its_id(keyed: tuple[TestClient, KeyStore]) -> None:
    client, store = keyed
    key, rec = store.create(role="approval_system", institution="Bank A")
    _wait_for(lambda: client.get("/v1/credit/person/P0000001", headers={"X-API-Key": key}).status_code == 200)
    audit = client.get("/v1/audit", params={"limit": 1}, headers=headers("admin")).json()
    row = audit["items"][0]
    assert row["actor"] == f"approval_system:{rec.key_id}"
    cfg = client.get("/v1/credit/person/P0000001", headers=headers("approval_system"))
    assert cfg.status_code == 200
    row = client.get("/v1/audit", params={"limit": 1}, headers=headers("admin")).json()["items"][0]
    assert row["actor"].startswith("approval_system:cfg-")
    unkeyed = hashlib.sha256(KEYS["approval_system"].encode()).hexdigest()
    assert unkeyed[:10] not in row["actor"]


def test_expired_and_revoked_keys_get_401(keyed: tuple[TestClient, KeyStore]) -> None:
    client, store = keyed
    old, _ = store.create(role="inspector", institution="Old", expires_at="2001-01-01")
    live, rec = store.create(role="inspector", institution="Live", expires_at="2999-01-01")
    _wait_for(lambda: client.get("/v1/rules", headers={"X-API-Key": live}).status_code == 200)
    r = client.get("/v1/rules", headers={"X-API-Key": old})
    assert r.status_code == 401 and r.json()["error"]["message"] == "API key expired"
    r = client.get("/v1/credit/person/P0000001", headers={"X-API-Key": old})
    assert r.status_code == 401
    store.revoke(rec.key_id)
    _wait_for(lambda: client.get("/v1/rules", headers={"X-API-Key": live}).status_code == 401)
    r = client.get("/v1/credit/person/P0000001", headers={"X-API-Key": live})
    assert r.status_code == 401 and r.json()["error"]["message"] == "API key revoked"


def test_burst_beyond_the_rate_gets_429_with_retry_after(keyed: tuple[TestClient, KeyStore]) -> None:
    client, store = keyed
    key, _ = store.create(role="approval_system", institution="Burst", rate=0.5, burst=3)
    _wait_for(
        lambda: client.app.state.riskgraph.keyring.refresh() or len(client.app.state.riskgraph.keyring.entries) > 5
    )
    codes = [client.get("/v1/credit/person/P0000001", headers={"X-API-Key": key}) for _ in range(5)]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200]
    limited = codes[3]
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert codes[4].status_code == 429
    # other keys are not limited by it
    assert client.get("/v1/credit/person/P0000001", headers=headers("approval_system")).status_code == 200


# -- region scope ---------------------------------------------------------------------------------


def test_region_scoped_inspector(keyed: tuple[TestClient, KeyStore]) -> None:
    client, store = keyed
    state = client.app.state.riskgraph
    frame = state.book.risk["person"]
    regions = frame["region"].dropna()
    mine = regions.value_counts().index[0]
    other_row = frame[frame["region"].notna() & (frame["region"] != mine)].iloc[0]
    other = str(other_row["entity_id"])
    own = str(frame[frame["region"] == mine].iloc[0]["entity_id"])
    nowhere_pos = frame.index[frame["region"] == mine][-1]
    nowhere = str(frame.at[nowhere_pos, "entity_id"])
    frame.at[nowhere_pos, "region"] = None  # an entity without a region: out of every scope
    key, _ = store.create(role="inspector", institution="Inspectorate", region=mine)
    h = {"X-API-Key": key}
    _wait_for(lambda: client.get(f"/v1/credit/person/{own}", headers=h).status_code == 200)

    for gone in (other, nowhere):
        for url in (
            f"/v1/credit/person/{gone}",
            f"/v1/entities/person/{gone}",
            f"/v1/entities/person/{gone}/neighbours",
        ):
            r = client.get(url, headers=h)
            assert r.status_code == 404, (url, r.text)
        assert client.get(f"/v1/entities/person/{gone}", headers=headers("inspector")).status_code == 200
        batch = client.post(
            "/v1/credit/batch", json={"items": [{"entity_type": "person", "entity_id": gone}]}, headers=h
        ).json()
        assert batch["results"] == [] and batch["not_found"][0]["entity_id"] == gone
        path = client.get(
            "/v1/paths",
            params={"source_type": "person", "source_id": own, "target_type": "person", "target_id": gone},
            headers=h,
        )
        assert path.status_code == 404
    assert client.get(f"/v1/entities/person/{own}", headers=h).status_code == 200

    listed, cursor = [], None
    while True:
        page = client.get("/v1/risk/person", params={"limit": 500, **({"cursor": cursor} if cursor else {})}, headers=h)
        assert page.status_code == 200
        listed += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    ids = {i["entity_id"] for i in listed}
    assert own in ids and other not in ids and nowhere not in ids
    assert {i["region"] for i in listed} == {mine}
    assert client.get("/v1/risk/person", params={"region": other_row["region"]}, headers=h).json()["total"] == 0
    assert client.get("/v1/risk/person/regions", headers=h).json()["regions"] == [mine]

    export = client.get("/v1/risk/person", params={"format": "csv"}, headers=h)
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows and {r["region"] for r in rows} == {mine}
    exported = {r["entity_id"] for r in rows}
    assert own in exported and other not in exported and nowhere not in exported
    assert len(rows) == len(ids)


def test_ring_spanning_regions_shows_out_of_scope_members_as_tokens(keyed: tuple[TestClient, KeyStore]) -> None:
    client, store = keyed
    state = client.app.state.riskgraph
    members = state.book.ring_members
    sizes = members.groupby("ring_id").size()
    ring_id = str(sizes[sizes >= 2].index[0])
    part = members[members["ring_id"] == ring_id]
    refs = [(str(t), str(i)) for t, i in zip(part["entity_type"], part["entity_id"])]
    inside, outside = refs[0], refs[1:]
    for t, frame in state.book.risk.items():  # put the first member in R-IN, the others elsewhere
        for pos, eid in zip(frame.index, frame["entity_id"].astype(str)):
            if (t, eid) == inside:
                frame.at[pos, "region"] = "R-IN"
            elif (t, eid) in outside:
                frame.at[pos, "region"] = "R-OUT"
    key, _ = store.create(role="inspector", institution="Inspectorate", region="R-IN")
    h = {"X-API-Key": key}
    _wait_for(lambda: client.get(f"/v1/rings/{ring_id}", headers=h).status_code == 200)
    ring = client.get(f"/v1/rings/{ring_id}", headers=h).json()
    shown = {(m["type"], m["id"]) for m in ring["members"]}
    assert inside in shown
    tokens = state.tokens
    for t, i in outside:
        assert (t, i) not in shown
        assert (t, tokens(f"{t}:{i}")) in shown
    all_ids = {n["id"] for n in ring["subgraph"]["nodes"]} | {e["source_id"] for e in ring["subgraph"]["edges"]}
    assert not {i for _, i in outside} & all_ids
    listed = client.get("/v1/rings", params={"limit": 500}, headers=h).json()["items"]
    assert ring_id in {r["ring_id"] for r in listed}
