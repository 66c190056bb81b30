"""Neo4jGraphStore against the real server (`riskgraph neo4j start`): what only this backend does
(its layout, cache, clean-up of failed loads, lease). What every store does, on these edge cases
too, is in test_store_contract.py."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from graph.dataset import Dataset, dataset_from_frames
from graph.neo4j_store import Neo4jGraphStore
from graph.store import EntityRef
from riskgraph.errors import NoSnapshot, StoreBusy, StoreLoadFailed, StoreUnavailable
from tests.factories import small_frames

pytestmark = pytest.mark.neo4j


def _counts(store: Neo4jGraphStore) -> tuple[int, int]:
    rows = store._run("MATCH (n) WHERE n._snapshot IS NOT NULL RETURN count(n) AS n")
    rels = store._run("MATCH ()-[r]->() WHERE r._snapshot IS NOT NULL RETURN count(r) AS n")
    return rows[0]["n"], rels[0]["n"]


def _assert_same(a: Dataset, b: Dataset) -> None:
    assert sorted(a.tables) == sorted(b.tables)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True)


def test_reload_same_dataset_is_idempotent(neo4j_store: Neo4jGraphStore) -> None:
    ds = dataset_from_frames(small_frames())
    neo4j_store.load(ds)
    before = _counts(neo4j_store)
    neo4j_store.load(ds)
    assert _counts(neo4j_store) == before
    _assert_same(ds, neo4j_store.dataset())


def test_failed_load_keeps_previous_snapshot(neo4j_store: Neo4jGraphStore) -> None:
    good = dataset_from_frames(small_frames())
    neo4j_store.load(good)
    before = _counts(neo4j_store)
    bad_tables = dict(good.tables)
    employers = good.tables["employers"]
    # Duplicate employer ids break the uniqueness constraint after the persons are written.
    bad_tables["employers"] = pd.concat([employers, employers], ignore_index=True)
    with pytest.raises(StoreLoadFailed, match="previous snapshot stays current"):
        neo4j_store.load(Dataset(bad_tables, content_hash="broken"))
    assert neo4j_store.snapshot().content_hash == good.content_hash
    assert _counts(neo4j_store) == before  # the partial snapshot was removed
    fresh = Neo4jGraphStore(neo4j_store.url)
    try:
        _assert_same(good, fresh.dataset())
    finally:
        fresh.close()


def test_event_rows_name_their_ends_by_the_end_nodes_only(neo4j_store: Neo4jGraphStore) -> None:
    ds = dataset_from_frames(small_frames())
    neo4j_store.load(ds)
    snap = neo4j_store._run("MATCH (m:RiskGraphMeta) RETURN m.current AS id")[0]["id"]
    assert isinstance(snap, int)  # stored inline, not as a text property record
    visits = neo4j_store._run(
        "MATCH (p)-[v:VISITED]->(c) WHERE v._snapshot = $s "
        "RETURN p._id AS person, c._id AS clinic, keys(v) AS keys ORDER BY v._row",
        s=snap,
    )
    assert [(v["person"], v["clinic"]) for v in visits] == list(
        zip(ds.tables["visits"]["person_id"], ds.tables["visits"]["clinic_id"])
    )
    assert all(
        "person_id" not in v["keys"] and "clinic_id" not in v["keys"] and "visit_id" in v["keys"] for v in visits
    )
    links = neo4j_store._run("MATCH ()-[x:LINKED]->() WHERE x._snapshot = $s RETURN keys(x) AS keys", s=snap)
    assert links and all({"agency_id", "entity_id"}.isdisjoint(x["keys"]) for x in links)


def test_reads_back_across_many_pages_and_has_no_relationship_index(
    neo4j_store: Neo4jGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graph.neo4j_read as module

    ds = dataset_from_frames(small_frames())
    neo4j_store.load(ds)
    monkeypatch.setattr(module, "READ_BATCH_SIZE", 1)  # one node (or row) a page
    fresh = Neo4jGraphStore(neo4j_store.url)
    try:
        _assert_same(ds, fresh.dataset())
    finally:
        fresh.close()
    rel_indexes = neo4j_store._run(
        "SHOW INDEXES YIELD name, entityType WHERE entityType = 'RELATIONSHIP' AND name STARTS WITH 'rg_' RETURN name"
    )
    assert rel_indexes == []


def test_delete_batches_bound_relationships_per_transaction() -> None:
    from graph.neo4j_store import DELETE_BATCH_SIZE, _delete_batches

    counts = {
        "persons": 100_000,
        "employers": 3_000,
        "clinics": 200,
        "pharmacies": 250,
        "agencies": 20,
        "visits": 340_000,
        "purchases": 200_000,
        "employment": 70_000,
        "contributions": 350_000,
        "agency_links": 5_000,
    }
    per_tx = _delete_batches(counts)
    # a person has at most: visits, purchases, employment (and its agency), contributions, agency
    # links, 3 identifier links: 1,335,000 relationships over 100,000 persons
    assert per_tx["Person"] == DELETE_BATCH_SIZE * 100_000 // 1_335_000 == 1_498
    assert per_tx["Clinic"] == DELETE_BATCH_SIZE * 200 // (340_000 + 200_000) == 7  # visits, prescriptions
    assert _delete_batches({})["Person"] == 1 and set(per_tx) == {"Person", "Employer", "Clinic", "Pharmacy", "Agency"}


def test_dangling_reference_fails_the_load_cleanly(neo4j_store: Neo4jGraphStore) -> None:
    good = dataset_from_frames(small_frames())
    neo4j_store.load(good)
    before = _counts(neo4j_store)
    tables = dict(good.tables)
    visits = good.tables["visits"].copy()
    visits.loc[1, "person_id"] = "ghost"  # load_dataset rejects this; a Dataset built in code may not
    tables["visits"] = visits
    with pytest.raises(StoreLoadFailed, match="visits: person_id 'ghost' names no loaded entity.*previous snapshot"):
        neo4j_store.load(Dataset(tables, content_hash="dangling"))
    assert neo4j_store.snapshot().content_hash == good.content_hash
    assert _counts(neo4j_store) == before


def test_server_down_gives_clear_error() -> None:
    store = Neo4jGraphStore("bolt://127.0.0.1:1")  # nothing listens on port 1
    try:
        assert store.ping() is False
        with pytest.raises(StoreUnavailable, match="(?s)not reachable.*riskgraph neo4j start"):
            store.dataset()
        with pytest.raises(StoreUnavailable):
            store.load(dataset_from_frames(small_frames()))
    finally:
        store.close()


def test_empty_store_raises_no_snapshot(neo4j_store: Neo4jGraphStore) -> None:
    assert neo4j_store.ping()
    # Community has a single user database, shared by the tests: point the meta node nowhere.
    neo4j_store.load(dataset_from_frames(small_frames()))
    neo4j_store._write("MATCH (m:RiskGraphMeta) SET m.current = 'none'")
    try:
        with pytest.raises(NoSnapshot):
            Neo4jGraphStore(neo4j_store.url).dataset()
        assert neo4j_store.snapshot() is None
    finally:
        neo4j_store.load(dataset_from_frames(small_frames()))


def _snapshot_nodes(store: Neo4jGraphStore) -> list[tuple[int, str]]:
    rows = store._run("MATCH (s:RiskGraphSnapshot) RETURN s.id AS id, s.status AS status ORDER BY id")
    return [(r["id"], r["status"]) for r in rows]


def _crashed_stage(store: Neo4jGraphStore, ds: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage that dies after writing its rows, before it could clean up (status stays 'loading')."""
    ingest = store._ingest

    def ingest_then_die(snap: int, dataset: Dataset) -> None:
        ingest(snap, dataset)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(store, "_ingest", ingest_then_die)
        m.setattr(store, "_cleanup_quietly", lambda snap: None)
        with pytest.raises(KeyboardInterrupt):
            store.stage(ds)


def test_crashed_stage_is_invisible_and_removed_by_retain_or_the_next_stage(
    neo4j_store: Neo4jGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = dataset_from_frames(small_frames())
    neo4j_store.load(ds)
    before = _counts(neo4j_store)
    current = neo4j_store.snapshot().id
    _crashed_stage(neo4j_store, ds, monkeypatch)
    assert [s for _, s in _snapshot_nodes(neo4j_store)] == ["complete", "loading"]
    assert neo4j_store.snapshot_ids() == [current]
    leftover = str(_snapshot_nodes(neo4j_store)[-1][0])
    assert neo4j_store.snapshot(leftover) is None
    with pytest.raises(NoSnapshot):
        neo4j_store.commit(leftover)
    neo4j_store.retain([])
    assert _counts(neo4j_store) == before and neo4j_store.snapshot_ids() == [current]

    _crashed_stage(neo4j_store, ds, monkeypatch)
    staged = neo4j_store.stage(ds)  # removes the crashed one, keeps the current one
    assert _snapshot_nodes(neo4j_store) == [(int(current), "complete"), (int(staged.id), "complete")]
    neo4j_store.retain([])
    assert _counts(neo4j_store) == before


def test_staged_and_older_snapshots_read_back_exactly(neo4j_store: Neo4jGraphStore) -> None:
    ds = dataset_from_frames(small_frames())
    old = neo4j_store.load(ds)
    frames = small_frames()
    frames["persons"] = frames["persons"].iloc[:-1]
    del frames["purchases"]
    frames["agency_links"] = frames["agency_links"].iloc[:1]
    smaller = dataset_from_frames(frames)
    staged = neo4j_store.stage(smaller)
    assert neo4j_store.dataset(staged.id) is smaller  # just written: no read back
    neo4j_store.commit(staged.id)
    assert neo4j_store.dataset() is smaller
    fresh = Neo4jGraphStore(neo4j_store.url)
    try:
        _assert_same(ds, fresh.dataset(old.id))
        _assert_same(smaller, fresh.dataset())
        assert fresh.dataset(old.id) is fresh.dataset(old.id)
        assert fresh.snapshot(old.id).row_counts == ds.row_counts()
        assert fresh.entity(EntityRef("person", "p4")) is None  # graph queries read the current one
    finally:
        fresh.close()
    neo4j_store.retain([])
    with pytest.raises(NoSnapshot):
        neo4j_store.dataset(old.id)


def test_retain_takes_a_collection_of_ids(neo4j_store: Neo4jGraphStore) -> None:
    with pytest.raises(TypeError):
        neo4j_store.retain("12")


def test_lost_lease_cannot_be_renewed_nor_release_the_new_holder(neo4j_store: Neo4jGraphStore, no_lease: None) -> None:
    short = Neo4jGraphStore(neo4j_store.url, lease_ttl_s=0.5)
    try:
        first = short.lease("run-1")
        time.sleep(1.0)
        second = neo4j_store.lease("run-2")
        with pytest.raises(StoreBusy, match="run-1 lost the write lease.*run-2 holds it since"):
            first.renew()
        first.release()
        with pytest.raises(StoreBusy, match="being written by run-2"):
            short.lease("run-3")
        second.release()
        with pytest.raises(StoreBusy, match="run-2 lost the write lease.*was removed\\)$"):
            second.renew()
    finally:
        short.close()


def test_renewed_lease_outlives_its_ttl(neo4j_store: Neo4jGraphStore, no_lease: None) -> None:
    short = Neo4jGraphStore(neo4j_store.url, lease_ttl_s=1.0)
    try:
        held = short.lease("run-1")
        for _ in range(4):
            time.sleep(0.5)
            held.renew()
        with pytest.raises(StoreBusy, match="run-1"):
            neo4j_store.lease("run-2")
        held.release()
        neo4j_store.lease("run-2").release()
    finally:
        short.close()


@pytest.mark.parametrize("expired", [False, True], ids=["free", "expired"])
def test_concurrent_lease_takers_get_one_lease(neo4j_store: Neo4jGraphStore, no_lease: None, expired: bool) -> None:
    stores = [Neo4jGraphStore(neo4j_store.url) for _ in range(8)]
    for s in stores:
        s.ensure_schema()
    if expired:
        dead = Neo4jGraphStore(neo4j_store.url, lease_ttl_s=0.2)
        dead.lease("run-dead")
        dead.close()
        time.sleep(0.5)
    start = threading.Barrier(len(stores))
    won: list[str] = []
    busy: list[str] = []

    def take(i: int) -> None:
        start.wait()
        try:
            stores[i].lease(f"run-{i}")
            won.append(f"run-{i}")
        except StoreBusy as exc:
            busy.append(str(exc))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(won) == 1 and len(busy) == len(stores) - 1
        assert all(f"being written by {won[0]} since" in msg for msg in busy)
    finally:
        neo4j_store._write("MATCH (l:RiskGraphLease) DELETE l")
        for s in stores:
            s.close()
