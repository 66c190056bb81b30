"""SAME_PERSON links (issue 16, docs/resolution.md): the one contract, run against every GraphStore
backend (memory and a real Neo4j) through the `store` fixture. A run writes them into the snapshot
it staged, after resolution: invisible until that snapshot's commit, deleted with the snapshot."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import pytest

from graph.dataset import Dataset, dataset_from_frames
from graph.projection import REL_TYPES, Projection
from graph.store import SAME_PERSON, SAME_PERSON_COLUMNS, Edge, EntityRef, GraphStore
from riskgraph.errors import NoSnapshot
from tests.factories import tiny_frames

P1, P2, P3, P4 = (EntityRef("person", p) for p in ("P1", "P2", "P3", "P4"))


@pytest.fixture
def tiny() -> Dataset:
    return dataset_from_frames(tiny_frames())


def _links() -> pd.DataFrame:
    """P2 and P4 are records of P1's and P3's golden persons (P4's probability unknown: a review)."""
    return pd.DataFrame(
        {
            "person_id": ["P4", "P2"],
            "golden_id": ["P3", "P1"],
            "match_probability": [float("nan"), 0.987],
            "matched_on": ["review", "model"],
        }
    )


def _same_person_edges(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if e.type == SAME_PERSON]


def test_links_of_a_staged_snapshot_are_invisible_until_its_commit(store: GraphStore, tiny: Dataset) -> None:
    old = store.load(tiny)
    staged = store.stage(tiny)
    assert store.stage_same_person(staged.id, _links()) == 2
    # the served snapshot shows none of them
    assert len(store.same_person()) == 0
    assert _same_person_edges(store.neighbours(P2).edges) == []
    assert store.shortest_path(P2, P1, max_hops=1) is None
    store.commit(staged.id)
    got = store.same_person()
    assert list(got.columns) == list(SAME_PERSON_COLUMNS)
    assert got["person_id"].tolist() == ["P2", "P4"] and got["golden_id"].tolist() == ["P1", "P3"]
    assert got["matched_on"].tolist() == ["model", "review"]
    assert got["match_probability"].iloc[0] == 0.987 and math.isnan(got["match_probability"].iloc[1])
    assert len(store.same_person(old.id)) == 0  # the older snapshot keeps its own (none)


def test_neighbours_and_paths_show_the_other_record(store: GraphStore, tiny: Dataset) -> None:
    staged = store.stage(tiny)
    store.stage_same_person(staged.id, _links())
    store.commit(staged.id)
    around = store.neighbours(P2, hops=1)
    assert P1 in around.nodes
    assert _same_person_edges(around.edges) == [
        Edge(P2, P1, SAME_PERSON, 1, {"match_probability": 0.987, "matched_on": "model"})
    ]
    only = store.neighbours(P4, hops=1, rel_types=(SAME_PERSON,))
    assert set(only.nodes) == {P3, P4}
    assert only.edges == [Edge(P4, P3, SAME_PERSON, 1, {"matched_on": "review"})]  # no probability: absent
    path = store.shortest_path(P4, P3, max_hops=3)
    assert path is not None and path.edges == [Edge(P4, P3, SAME_PERSON, 1, {"matched_on": "review"})]
    sub = store.subgraph([P1, P2, P3])
    assert _same_person_edges(sub.edges) == [
        Edge(P2, P1, SAME_PERSON, 1, {"match_probability": 0.987, "matched_on": "model"})
    ]
    # other relationships keep no properties
    assert all(e.properties == {} for e in around.edges if e.type != SAME_PERSON)


def test_links_read_back_from_a_fresh_store(
    store: GraphStore, reopen: Callable[..., GraphStore], tiny: Dataset
) -> None:
    staged = store.stage(tiny)
    store.stage_same_person(staged.id, _links())
    store.commit(staged.id)
    fresh = reopen(store)
    pd.testing.assert_frame_equal(fresh.same_person(), store.same_person())
    assert _same_person_edges(fresh.neighbours(P1).edges) == [
        Edge(P2, P1, SAME_PERSON, 1, {"match_probability": 0.987, "matched_on": "model"})
    ]


def test_the_current_snapshot_and_unknown_records_are_refused(store: GraphStore, tiny: Dataset) -> None:
    current = store.load(tiny)
    with pytest.raises(ValueError, match="current"):
        store.stage_same_person(current.id, _links())
    staged = store.stage(tiny)
    with pytest.raises(ValueError, match="lacks"):
        store.stage_same_person(staged.id, pd.DataFrame({**_links().to_dict("list"), "golden_id": ["P3", "P9"]}))
    with pytest.raises(ValueError, match="more than one"):
        store.stage_same_person(staged.id, pd.concat([_links(), _links()]))
    with pytest.raises(NoSnapshot):
        store.stage_same_person("424242", _links())
    store.commit(staged.id)
    assert len(store.same_person()) == 0  # nothing of the refused calls was written


def test_staging_again_replaces_the_links(store: GraphStore, tiny: Dataset) -> None:
    staged = store.stage(tiny)
    store.stage_same_person(staged.id, _links())
    store.stage_same_person(staged.id, _links().iloc[1:])
    store.commit(staged.id)
    assert store.same_person()["person_id"].tolist() == ["P2"]
    assert len(_same_person_edges(store.neighbours(P3).edges)) == 0


def test_retain_deletes_them_with_their_snapshot(store: GraphStore, tiny: Dataset) -> None:
    first = store.stage(tiny)
    store.stage_same_person(first.id, _links())
    store.commit(first.id)
    second = store.stage(tiny)
    store.stage_same_person(second.id, _links().iloc[:1])
    failed = store.stage(tiny)  # a run that failed after writing its links: never committed
    store.stage_same_person(failed.id, _links())
    store.commit(second.id)
    store.retain([])
    assert store.snapshot_ids() == [second.id]
    with pytest.raises(NoSnapshot):
        store.same_person(first.id)
    with pytest.raises(NoSnapshot):
        store.same_person(failed.id)
    assert store.same_person()["person_id"].tolist() == ["P4"]
    assert _same_person_edges(store.neighbours(P2).edges) == []


@pytest.mark.neo4j
def test_neo4j_retain_leaves_no_same_person_relationship(neo4j_store: GraphStore, tiny: Dataset) -> None:
    from graph.neo4j_store import Neo4jGraphStore

    assert isinstance(neo4j_store, Neo4jGraphStore)
    kept = neo4j_store.stage(tiny)
    neo4j_store.stage_same_person(kept.id, _links().iloc[:1])
    dropped = neo4j_store.stage(tiny)
    neo4j_store.stage_same_person(dropped.id, _links())
    neo4j_store.commit(kept.id)
    count = "MATCH (:Person)-[r:SAME_PERSON]->(:Person) RETURN count(r) AS n"
    assert neo4j_store._run(count)[0]["n"] == 3
    neo4j_store.retain([])
    assert neo4j_store._run(count)[0]["n"] == 1
    neo4j_store.clear()
    assert neo4j_store._run(count)[0]["n"] == 0


def test_the_analytics_projection_never_holds_same_person(tiny: Dataset) -> None:
    """Features, rules, rings and scores build Projection(dataset) of the golden dataset: no
    SAME_PERSON edge there; only a store's graph reads pass the links in."""
    plain = Projection(tiny)
    assert SAME_PERSON not in plain.relationships
    linked = Projection(tiny, same_person=_links())
    code = REL_TYPES.index(SAME_PERSON)
    assert (linked.edges["rel"] == code).sum() == 2
    pd.testing.assert_frame_equal(linked.edges[linked.edges["rel"] != code].reset_index(drop=True), plain.edges)
