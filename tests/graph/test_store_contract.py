"""One contract suite, run against every GraphStore backend (memory and a real Neo4j) through the
`store` fixture (tests/conftest.py), on the tiny dataset and on the edge cases of small_frames()."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from graph.dataset import Dataset, dataset_from_frames
from graph.store import EntityRef, GraphStore
from riskgraph.errors import NoSnapshot, StoreBusy
from tests.factories import FRAMES, small_frames, tiny_frames

if TYPE_CHECKING:
    from graph.neo4j_store import Neo4jGraphStore


@pytest.fixture
def tiny() -> Dataset:
    return dataset_from_frames(tiny_frames())


def _persons(n: int) -> Dataset:
    """The tiny persons table alone, cut to its first n rows (a distinct snapshot per n)."""
    return dataset_from_frames({"persons": tiny_frames()["persons"].iloc[:n]})


def test_empty_store_has_no_snapshot(store: GraphStore) -> None:
    assert store.snapshot() is None
    with pytest.raises(NoSnapshot):
        store.dataset()


@pytest.mark.parametrize("frames", FRAMES.values(), ids=FRAMES.keys())
def test_round_trip_is_exact(
    store: GraphStore, reopen: Callable[..., GraphStore], frames: Callable[[], dict[str, pd.DataFrame]]
) -> None:
    ds = dataset_from_frames(frames())
    info = store.load(ds)
    assert info.content_hash == ds.content_hash and info.row_counts == ds.row_counts()
    assert store.snapshot().content_hash == ds.content_hash
    fresh = reopen(store)  # nothing cached: really read back from where the store keeps it
    for back in (store.dataset(), fresh.dataset()):
        assert set(back.tables) == set(ds.tables)
        for name, df in ds.tables.items():
            pd.testing.assert_frame_equal(back.tables[name], df, check_exact=True, obj=name)
    snap = fresh.snapshot()
    assert snap is not None and snap.content_hash == ds.content_hash and snap.row_counts == ds.row_counts()


def test_edge_case_entities(store: GraphStore, reopen: Callable[..., GraphStore]) -> None:
    store.load(dataset_from_frames(small_frames()))
    fresh = reopen(store)
    assert fresh.entity(EntityRef("person", "p3")) == {
        "person_id": "p3",
        "name": "A",
        "birth_date": "1990-01-02",
        "phone": "111",
        "bank_account": "b1",
        "score": 1.5,
        "segment": "x",
    }
    assert list(fresh.entity(EntityRef("person", "p1"))) == ["person_id", "name", "bank_account", "score"]
    assert fresh.entity(EntityRef("phone", "111")) == {"id": "111"}
    assert fresh.entity(EntityRef("person", "nobody")) is None


def test_edge_case_graph_reads(store: GraphStore) -> None:
    store.load(dataset_from_frames(small_frames()))
    p1 = EntityRef("person", "p1")
    one = store.neighbours(p1, hops=1)
    assert set(one.nodes) == {
        p1,
        EntityRef("employer", "e1"),
        EntityRef("agency", "a1"),
        EntityRef("clinic", "c1"),
        EntityRef("bank_account", "b1"),
    }
    folded = {(e.source, e.target, e.type): e.count for e in one.edges}
    assert folded[(p1, EntityRef("employer", "e1"), "EMPLOYED_BY")] == 2  # two employment rows
    assert folded[(EntityRef("employer", "e1"), p1, "CONTRIBUTED")] == 2
    limited = store.neighbours(p1, hops=2, limit=3)
    assert limited.truncated and len(limited.nodes) == 3
    path = store.shortest_path(EntityRef("person", "p3"), EntityRef("employer", "e2"), max_hops=6)
    assert path is not None
    assert len(path.edges) == len(path.nodes) - 1
    assert store.shortest_path(EntityRef("person", "p3"), EntityRef("employer", "e2"), max_hops=1) is None
    sub = store.subgraph([p1, EntityRef("employer", "e1"), EntityRef("person", "ghost")])
    assert set(sub.nodes) == {p1, EntityRef("employer", "e1")}
    assert {e.type for e in sub.edges} == {"EMPLOYED_BY", "CONTRIBUTED"}


def test_reload_is_idempotent(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    first = store.dataset().row_counts()
    store.load(tiny)
    assert store.dataset().row_counts() == first
    assert (
        store.neighbours(EntityRef("person", "P1"), hops=1).nodes.keys()
        == store.neighbours(EntityRef("person", "P1"), hops=1).nodes.keys()
    )


def test_new_snapshot_replaces_old(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    smaller = dataset_from_frames({"persons": tiny_frames()["persons"].iloc[:2]})
    store.load(smaller)
    assert store.dataset().row_counts() == {"persons": 2}
    assert store.entity(EntityRef("person", "P3")) is None
    assert store.entity(EntityRef("clinic", "C1")) is None


def test_entity_lookup(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    p1 = store.entity(EntityRef("person", "P1"))
    assert p1 is not None and p1["region"] == "north" and p1["birth_date"] == "1950-01-01"
    assert store.entity(EntityRef("person", "nobody")) is None
    assert store.entity(EntityRef("phone", "13800000001")) is not None


def test_neighbours_one_hop(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    sub = store.neighbours(EntityRef("person", "P1"), hops=1)
    nodes = set(sub.nodes)
    assert {
        EntityRef("employer", "E1"),
        EntityRef("clinic", "C1"),
        EntityRef("clinic", "C2"),
        EntityRef("pharmacy", "H1"),
        EntityRef("phone", "13800000001"),
        EntityRef("address", "1 Main St"),
        EntityRef("bank_account", "6222001"),
    } <= nodes
    assert EntityRef("person", "P2") not in nodes
    employed = [e for e in sub.edges if e.type == "EMPLOYED_BY"]
    assert employed and employed[0].source == EntityRef("person", "P1")


def test_neighbours_two_hops_limit_and_filter(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    two = store.neighbours(EntityRef("person", "P1"), hops=2)
    assert EntityRef("person", "P2") in two.nodes
    small = store.neighbours(EntityRef("person", "P1"), hops=2, limit=3)
    assert len(small.nodes) == 3 and small.truncated
    assert EntityRef("person", "P1") in small.nodes
    visits = store.neighbours(EntityRef("person", "P1"), hops=1, rel_types=("VISITED",))
    assert set(visits.nodes) == {EntityRef("person", "P1"), EntityRef("clinic", "C1"), EntityRef("clinic", "C2")}


def test_parallel_events_fold_into_one_edge(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    sub = store.subgraph([EntityRef("employer", "E2"), EntityRef("person", "P3")])
    contributed = [e for e in sub.edges if e.type == "CONTRIBUTED"]
    assert len(contributed) == 1 and contributed[0].count == 2


def test_shortest_path(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    path = store.shortest_path(EntityRef("person", "P1"), EntityRef("person", "P2"))
    assert path is not None and len(path.nodes) == 3 and len(path.edges) == 2
    assert store.shortest_path(EntityRef("person", "P1"), EntityRef("person", "nobody")) is None
    assert store.shortest_path(EntityRef("person", "P1"), EntityRef("agency", "A1"), max_hops=1) is None


def test_subgraph(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    sub = store.subgraph([EntityRef("person", "P1"), EntityRef("employer", "E1"), EntityRef("person", "nobody")])
    assert set(sub.nodes) == {EntityRef("person", "P1"), EntityRef("employer", "E1")}
    assert {e.type for e in sub.edges} == {"EMPLOYED_BY", "CONTRIBUTED"}


def test_unique_marker() -> None:
    assert uuid.uuid4().hex  # keeps the module importable without Neo4j installed


def test_staged_snapshot_is_not_current(store: GraphStore, tiny: Dataset) -> None:
    old = store.load(tiny)
    staged = store.stage(_persons(2))
    assert staged.id and staged.id != old.id and staged.content_hash == _persons(2).content_hash
    assert store.snapshot().id == old.id and store.snapshot().content_hash == tiny.content_hash
    assert store.dataset().row_counts() == tiny.row_counts()
    assert store.entity(EntityRef("person", "P3")) is not None
    assert store.snapshot(staged.id).content_hash == staged.content_hash
    assert store.dataset(staged.id).row_counts() == {"persons": 2}
    assert store.snapshot_ids() == [old.id, staged.id]


def test_commit_makes_the_staged_snapshot_current(store: GraphStore, tiny: Dataset) -> None:
    old = store.load(tiny)
    staged = store.stage(_persons(2))
    store.commit(staged.id)
    store.commit(staged.id)
    assert store.snapshot().id == staged.id
    assert store.dataset().row_counts() == {"persons": 2}
    assert store.entity(EntityRef("person", "P3")) is None
    assert store.snapshot_ids() == [old.id, staged.id]  # commit deletes nothing
    store.commit(old.id)
    assert store.entity(EntityRef("person", "P3")) is not None
    with pytest.raises(NoSnapshot):
        store.commit("no-such-snapshot")
    assert store.snapshot().id == old.id


def test_retain_keeps_the_current_and_listed_snapshots(store: GraphStore, tiny: Dataset) -> None:
    first = store.load(tiny)
    second = store.stage(_persons(3))
    third = store.stage(_persons(2))
    store.commit(third.id)
    store.retain([first.id])
    assert store.snapshot_ids() == [first.id, third.id]
    assert store.snapshot(second.id) is None
    with pytest.raises(NoSnapshot):
        store.dataset(second.id)
    back = store.dataset(first.id)
    for name, df in tiny.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], df, obj=name)
    assert store.dataset().row_counts() == {"persons": 2}
    store.retain([])
    assert store.snapshot_ids() == [third.id]
    assert store.snapshot().id == third.id


def test_load_leaves_only_the_new_snapshot(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    store.stage(_persons(3))
    info = store.load(_persons(2))
    assert store.snapshot_ids() == [info.id]
    assert store.snapshot().id == info.id


def test_unknown_snapshot_reads_as_absent(store: GraphStore, tiny: Dataset) -> None:
    store.load(tiny)
    assert store.snapshot("no-such-snapshot") is None
    with pytest.raises(NoSnapshot):
        store.dataset("no-such-snapshot")


# The memory store takes no lease of its own (the run's home lease covers it): Neo4j only. Two
# stores on one server stand for two runs.


@pytest.mark.neo4j
def test_second_lease_is_refused_naming_the_holder(
    neo4j_store: Neo4jGraphStore, reopen: Callable[..., GraphStore], no_lease: None
) -> None:
    a, b = reopen(neo4j_store), reopen(neo4j_store)
    held = a.lease("run-1 on host-a")
    try:
        with pytest.raises(StoreBusy, match=r"run-1 on host-a since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"):
            b.lease("run-2 on host-b")
        with pytest.raises(StoreBusy, match="run-1 on host-a"):
            a.lease("run-1 on host-a")  # the same name is still another run
        held.renew()
    finally:
        held.release()
    b.lease("run-2 on host-b").release()


@pytest.mark.neo4j
def test_expired_lease_can_be_taken(
    neo4j_store: Neo4jGraphStore, reopen: Callable[..., GraphStore], no_lease: None
) -> None:
    a, b = reopen(neo4j_store, lease_ttl_s=1.0), reopen(neo4j_store)
    a.lease("run-1")  # never renewed nor released: the run died
    time.sleep(1.5)
    taken = b.lease("run-2")
    try:
        with pytest.raises(StoreBusy, match="run-2"):
            a.lease("run-3")
    finally:
        taken.release()
