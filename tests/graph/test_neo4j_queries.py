"""The Cypher and parameters Neo4jGraphStore produces, checked without a server: the store runs on
a collecting fake CypherRunner (graph/neo4j_runner.py) that records every statement and answers
from canned records. These add to the real-server tests (test_neo4j_store.py), replacing none."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
from neo4j.time import DateTime

from graph.dataset import Dataset
from graph.neo4j_ingest import NULL, SEP, SnapshotWriter
from graph.neo4j_store import Neo4jGraphStore, Neo4jStoreLease
from graph.store import Edge, EntityRef
from riskgraph.errors import NoSnapshot, StoreBusy

Records = list[dict[str, Any]]
Answer = Records | Callable[[str, dict[str, Any]], Records]


class Call(NamedTuple):
    kind: str  # run, write or autocommit
    cypher: str
    params: dict[str, Any]


class CollectingRunner:
    """A CypherRunner that records each statement; `run` answers with the records of the first
    `answers` fragment found in the statement (a list, or a function of the statement and its
    parameters), else with none."""

    def __init__(self, answers: Mapping[str, Answer] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[Call] = []
        self.closed = False

    def run(self, cypher: str, params: Mapping[str, Any]) -> Records:
        self.calls.append(Call("run", cypher, dict(params)))
        for fragment, answer in self.answers.items():
            if fragment in cypher:
                return answer(cypher, dict(params)) if callable(answer) else [dict(r) for r in answer]
        return []

    def write(self, cypher: str, params: Mapping[str, Any]) -> None:
        self.calls.append(Call("write", cypher, dict(params)))

    def autocommit(self, cypher: str, params: Mapping[str, Any]) -> None:
        self.calls.append(Call("autocommit", cypher, dict(params)))

    def verify(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def runner() -> CollectingRunner:
    return CollectingRunner()


@pytest.fixture
def fake_store(runner: CollectingRunner) -> Neo4jGraphStore:
    """A store on the collecting runner, its schema already ensured (those statements not recorded)."""
    store = Neo4jGraphStore("bolt://nowhere:7687", runner=runner)
    store.ensure_schema()
    runner.calls.clear()
    return store


def test_schema_is_created_once_and_close_closes_the_runner(runner: CollectingRunner) -> None:
    store = Neo4jGraphStore("bolt://nowhere:7687", runner=runner)
    store.ensure_schema()
    store.ensure_schema()
    statements = [c.cypher for c in runner.calls]
    assert all(c.kind == "write" for c in runner.calls) and statements[-1] == "CALL db.awaitIndexes(300)"
    assert (
        "CREATE CONSTRAINT rg_person_key IF NOT EXISTS FOR (n:Person) REQUIRE (n._snapshot, n._id) IS UNIQUE"
        in statements
    )
    assert "CREATE INDEX rg_benefit_row IF NOT EXISTS FOR (n:Benefit) ON (n._snapshot, n._row)" in statements
    assert len(statements) == len(set(statements))  # the second call sent nothing
    assert store.ping()
    store.close()
    assert runner.closed


# -- snapshots ------------------------------------------------------------------------------------

COMMIT = (
    "MATCH (s:RiskGraphSnapshot {id: $id}) WHERE s.status = 'complete' "
    "MERGE (m:RiskGraphMeta {key: $key}) SET m.current = s.id RETURN s.id AS id"
)


def test_commit_points_the_meta_node_at_the_complete_snapshot(
    fake_store: Neo4jGraphStore, runner: CollectingRunner
) -> None:
    runner.answers["SET m.current = s.id"] = [{"id": 7}]
    fake_store.commit("7")
    assert runner.calls == [Call("run", COMMIT, {"key": "riskgraph", "id": 7})]


def test_commit_of_no_complete_snapshot_is_refused(fake_store: Neo4jGraphStore, runner: CollectingRunner) -> None:
    with pytest.raises(NoSnapshot, match="holds no complete snapshot"):
        fake_store.commit("7")  # the server matched nothing
    assert runner.calls == [Call("run", COMMIT, {"key": "riskgraph", "id": 7})]
    runner.calls.clear()
    with pytest.raises(NoSnapshot):
        fake_store.commit("not-a-snapshot-id")
    assert runner.calls == []  # no id can match: nothing asked


RETAIN = (
    "OPTIONAL MATCH (m:RiskGraphMeta {key: $key}) WITH m.current AS current "
    "MATCH (s:RiskGraphSnapshot) WHERE coalesce(s.id <> current, true) AND NOT s.id IN $keep "
    "RETURN s.id AS id ORDER BY id"
)


def test_retain_lists_the_snapshots_neither_current_nor_kept(
    fake_store: Neo4jGraphStore, runner: CollectingRunner
) -> None:
    fake_store.retain(["1", "12", "not-an-id"])
    assert runner.calls == [Call("run", RETAIN, {"key": "riskgraph", "keep": [1, 12]})]
    runner.calls.clear()
    with pytest.raises(TypeError):
        fake_store.retain("12")
    assert runner.calls == []


def test_snapshot_deletion_detaches_node_by_node_in_bounded_transactions(
    fake_store: Neo4jGraphStore, runner: CollectingRunner
) -> None:
    runner.answers[RETAIN] = [{"id": 3}]
    runner.answers["RETURN s.row_counts AS counts"] = [{"counts": json.dumps({"persons": 10, "visits": 40})}]
    fake_store.retain([])
    assert runner.calls[0] == Call("run", RETAIN, {"key": "riskgraph", "keep": []})
    assert runner.calls[1] == Call(
        "run", "MATCH (s:RiskGraphSnapshot {id: $s}) RETURN s.row_counts AS counts", {"s": 3}
    )
    # persons: 20,000 relationships a transaction over 40 visits + 3 identifier links per person
    # = 7 a person; entities without rows: 1; identifier and fact nodes have none left: 20,000
    per_tx = {
        "Person": 20_000 * 10 // 70,
        "Employer": 1,
        "Clinic": 1,
        "Pharmacy": 1,
        "Agency": 1,
        "Phone": 20_000,
        "Address": 20_000,
        "BankAccount": 20_000,
        "Benefit": 20_000,
        "RiskLabel": 20_000,
        "Inspection": 20_000,
        "WageArrears": 20_000,
        "Commitment": 20_000,
        "DeathRecord": 20_000,  # the registries (issue 16): fact nodes like benefits
        "CustodyRecord": 20_000,
    }
    key = {
        "Benefit": "_row",
        "RiskLabel": "_row",
        "Inspection": "_row",
        "WageArrears": "_row",
        "Commitment": "_row",
        "DeathRecord": "_row",
        "CustodyRecord": "_row",
    }
    assert runner.calls[2:-1] == [
        Call(
            "autocommit",
            f"MATCH (n:{label}) WHERE n._snapshot = $s AND n.{key.get(label, '_id')} IS NOT NULL "
            f"CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF {rows} ROWS",
            {"s": 3},
        )
        for label, rows in per_tx.items()
    ]
    assert runner.calls[-1] == Call("write", "MATCH (s:RiskGraphSnapshot {id: $s}) DELETE s", {"s": 3})


# -- the write lease ------------------------------------------------------------------------------

LEASE = (
    "MERGE (l:RiskGraphLease {key: $key}) SET l._lock = true "
    "WITH l, l.token IS NULL OR coalesce(l.expires_at < datetime(), true) AS free "
    "SET l += CASE WHEN free THEN {token: $token, holder: $holder, acquired_at: datetime(), "
    "expires_at: datetime() + duration({milliseconds: $ttl})} ELSE {} END "
    "REMOVE l._lock "
    "RETURN l.token = $token AS mine, l.holder AS holder, l.acquired_at AS since, l.expires_at AS until"
)


def test_lease_is_taken_in_one_statement_with_a_fresh_token(
    fake_store: Neo4jGraphStore, runner: CollectingRunner
) -> None:
    runner.answers["MERGE (l:RiskGraphLease"] = [{"mine": True}]
    lease = fake_store.lease("run-1 on host-a")
    [call] = runner.calls
    assert call.kind == "run" and call.cypher == LEASE
    token = call.params.pop("token")
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert call.params == {"key": "writer", "holder": "run-1 on host-a", "ttl": 180_000}
    assert isinstance(lease, Neo4jStoreLease) and lease.holder == "run-1 on host-a"

    runner.calls.clear()
    runner.answers["SET l.expires_at"] = [{"key": "writer"}]
    lease.renew()
    lease.release()
    assert runner.calls == [
        Call(
            "run",
            "MATCH (l:RiskGraphLease {key: $key}) WHERE l.token = $token "
            "SET l.expires_at = datetime() + duration({milliseconds: $ttl}) RETURN l.key AS key",
            {"key": "writer", "token": token, "ttl": 180_000},
        ),
        Call(
            "write",
            "MATCH (l:RiskGraphLease {key: $key}) WHERE l.token = $token DELETE l",
            {"key": "writer", "token": token},
        ),
    ]


def test_lease_held_by_another_run_names_it(fake_store: Neo4jGraphStore, runner: CollectingRunner) -> None:
    runner.answers["MERGE (l:RiskGraphLease"] = [
        {
            "mine": False,
            "holder": "run-0 on host-b",
            "since": DateTime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
            "until": DateTime(2025, 1, 2, 3, 7, 5, tzinfo=UTC),
        }
    ]
    with pytest.raises(
        StoreBusy,
        match=r"being written by run-0 on host-b since 2025-01-02 03:04:05 UTC "
        r"\(its lease runs until 2025-01-02 03:07:05 UTC unless renewed\)",
    ):
        Neo4jGraphStore("bolt://nowhere:7687", runner=runner, lease_ttl_s=0.5).lease("run-1")
    assert runner.calls[-1].params["ttl"] == 500


# -- graph reads ----------------------------------------------------------------------------------

SNAPSHOT = {
    "id": 5,
    "status": "complete",
    "tables": json.dumps({"persons": [["person_id", "str"], ["name", "str"]], "employers": [["employer_id", "str"]]}),
}
RANK = (
    "CASE head(labels(b)) WHEN 'Person' THEN 0 WHEN 'Employer' THEN 1 WHEN 'Clinic' THEN 2 "
    "WHEN 'Pharmacy' THEN 3 WHEN 'Agency' THEN 4 WHEN 'Phone' THEN 5 WHEN 'Address' THEN 6 "
    "WHEN 'BankAccount' THEN 7 END"
)


def test_neighbours_expand_by_element_id_nearest_first(fake_store: Neo4jGraphStore, runner: CollectingRunner) -> None:
    runner.answers.update(
        {
            "MATCH (s:RiskGraphSnapshot {id: m.current})": [{"s": SNAPSHOT}],
            "MATCH (n:Person {_snapshot: $s, _id: id})": [{"e": "4:p1", "id": "P1"}],
            "WITH DISTINCT b": lambda _, p: (
                [] if "4:e1" in p["seen"] else [{"e": "4:e1", "label": "Employer", "id": "E1", "rank": 1}]
            ),
            "RETURN e, n {.*} AS p": [
                {"e": "4:p1", "p": {"_snapshot": 5, "_id": "P1", "person_id": "P1", "name": "Li"}},
                {"e": "4:e1", "p": {"_snapshot": 5, "_id": "E1", "employer_id": "E1"}},
            ],
            "count(r) AS n": [{"a": "4:p1", "b": "4:e1", "t": "EMPLOYED_BY", "n": 2}],
        }
    )
    p1, e1 = EntityRef("person", "P1"), EntityRef("employer", "E1")
    sub = fake_store.neighbours(p1, hops=2, limit=10, rel_types=("EMPLOYED_BY",))
    assert [c.cypher.split(" ")[0] for c in runner.calls] == ["MATCH", "UNWIND", "UNWIND", "UNWIND", "UNWIND", "UNWIND"]
    assert runner.calls[1].params == {"ids": ["P1"], "s": 5}
    hop = (
        "UNWIND $frontier AS e MATCH (a) WHERE elementId(a) = e "
        "MATCH (a)-[r]-(b) WHERE ($types IS NULL OR type(r) IN $types) "
        "WITH DISTINCT b WHERE NOT elementId(b) IN $seen "
        f"RETURN elementId(b) AS e, head(labels(b)) AS label, b._id AS id, b._value AS value, {RANK} AS rank "
        "ORDER BY rank, id LIMIT $room"
    )
    # one more than there is room for: a full page tells a truncated expansion
    assert runner.calls[2] == Call(
        "run", hop, {"frontier": ["4:p1"], "types": ["EMPLOYED_BY"], "seen": ["4:p1"], "room": 10}
    )
    assert runner.calls[3] == Call(
        "run", hop, {"frontier": ["4:e1"], "types": ["EMPLOYED_BY"], "seen": ["4:p1", "4:e1"], "room": 9}
    )  # the second hop
    assert runner.calls[5].params == {"eids": ["4:p1", "4:e1"], "types": ["EMPLOYED_BY"]}
    assert sub.nodes == {p1: {"person_id": "P1", "name": "Li"}, e1: {"employer_id": "E1"}}
    assert sub.edges == [Edge(p1, e1, "EMPLOYED_BY", 2)] and not sub.truncated


def test_graph_reads_without_a_current_snapshot_ask_nothing_more(
    fake_store: Neo4jGraphStore, runner: CollectingRunner
) -> None:
    with pytest.raises(NoSnapshot):
        fake_store.neighbours(EntityRef("person", "P1"))
    assert runner.calls == [
        Call(
            "run",
            "MATCH (m:RiskGraphMeta {key: $key}) MATCH (s:RiskGraphSnapshot {id: m.current}) RETURN s {.*} AS s",
            {"key": "riskgraph"},
        )
    ]


# -- ingest ---------------------------------------------------------------------------------------


def _created(cypher: str, params: dict[str, Any]) -> Records:
    """The answer to a node CREATE batch: its rows, and internal ids 100 + snapshot row."""
    rows = list(range(params["n"]))
    first = int(params[_row_var(cypher)].split(SEP)[0]) if params["n"] else 0
    return [{"rows": rows, "ids": [100 + first + r for r in rows]}]


def _row_var(cypher: str) -> str:
    return re.search(r"`_row`: toInteger\((c\d+)\[i\]\)", cypher).group(1)


def _persons() -> Dataset:
    return Dataset(
        {
            "persons": pd.DataFrame(
                {
                    "person_id": pd.Series(["p1", "p2", "p3"], dtype="str"),
                    "name": pd.Series(["A", None, "C"], dtype="str"),
                    "birth_date": pd.to_datetime(pd.Series(["2000-01-02", None, "1990-12-31"])),
                    "score": pd.Series([1.5, np.nan, 3.0]),
                }
            )
        },
        content_hash="h",
    )


PERSON_NODES = (
    "WITH split($c0, $sep) AS c0, split($c1, $sep) AS c1, split($c2, $sep) AS c2, split($c3, $sep) AS c3, "
    "split($c4, $sep) AS c4, split($c5, $sep) AS c5 UNWIND range(0, $n - 1) AS i "
    "CREATE (n:Person {_snapshot: $s, `person_id`: c0[i], `name`: CASE c1[i] WHEN $null THEN null ELSE c1[i] END, "
    "`birth_date`: CASE c2[i] WHEN '' THEN null ELSE date(c2[i]) END, `score`: toFloat(c3[i]), "
    "`_row`: toInteger(c4[i]), `_id`: c5[i]}) RETURN collect(i) AS rows, collect(id(n)) AS ids"
)


def test_one_ingest_batch_sends_each_column_as_one_joined_string(runner: CollectingRunner) -> None:
    runner.answers["CREATE (n:Person"] = _created
    SnapshotWriter(runner, 3, batch_size=2, sessions=1).write(_persons())
    first, second = runner.calls
    assert first == Call(
        "run",
        PERSON_NODES,
        {
            "n": 2,
            "s": 3,
            "sep": SEP,
            "null": NULL,
            "c0": f"p1{SEP}p2",
            "c1": f"A{SEP}{NULL}",
            "c2": f"2000-01-02{SEP}",
            "c3": f"1.5{SEP}",
            "c4": f"0{SEP}1",
            "c5": f"p1{SEP}p2",
        },
    )
    assert second == Call(
        "run",
        PERSON_NODES,
        {
            "n": 1,
            "s": 3,
            "sep": SEP,
            "null": NULL,
            "c0": "p3",
            "c1": "C",
            "c2": "1990-12-31",
            "c3": "3",
            "c4": "2",
            "c5": "p3",
        },
    )


def test_relationship_batch_finds_its_ends_by_internal_id(runner: CollectingRunner) -> None:
    runner.answers["CREATE (n:"] = _created
    persons = _persons().tables["persons"]
    tables = {
        "persons": persons,
        "clinics": pd.DataFrame({"clinic_id": pd.Series(["c1"], dtype="str")}),
        "visits": pd.DataFrame(
            {
                "visit_id": pd.Series(["v1", "v2"], dtype="str"),
                "person_id": pd.Series(["p3", "p1"], dtype="str"),
                "clinic_id": pd.Series(["c1", "c1"], dtype="str"),
            }
        ),
    }
    SnapshotWriter(runner, 3, batch_size=10, sessions=1).write(Dataset(tables, content_hash="h"))
    assert [c.cypher.split("CREATE ")[1][:12] for c in runner.calls] == ["(n:Person {_", "(n:Clinic {_", "(x)-[:VISITE"]
    visits = runner.calls[-1]
    assert visits == Call(
        "write",
        (
            "WITH split($c0, $sep) AS c0, split($c1, $sep) AS c1, split($c2, $sep) AS c2, split($c3, $sep) AS c3 "
            "UNWIND range(0, $n - 1) AS i MATCH (x) WHERE id(x) = toInteger(c0[i]) MATCH (y) WHERE id(y) = "
            "toInteger(c1[i]) CREATE (x)-[:VISITED {_snapshot: $s, `visit_id`: c2[i], `_row`: toInteger(c3[i])}]->(y)"
        ),
        # ends: p3 and p1 (nodes 102 and 100), the clinic (node 100 of its own batch), kept only as
        # the ends (no person_id nor clinic_id property); rows in order of the end the sessions split by
        {
            "n": 2,
            "s": 3,
            "sep": SEP,
            "null": NULL,
            "c0": f"102{SEP}100",
            "c1": f"100{SEP}100",
            "c2": f"v1{SEP}v2",
            "c3": f"0{SEP}1",
        },
    )
