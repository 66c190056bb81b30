"""The Neo4j backend: the graph model of graph/store.py in a Neo4j 5.x database, over Bolt.

Layout. Every node and every relationship holding a table row carries `_snapshot` (the load it
belongs to: a small integer, stored inline, where a text id took a whole property record); those
holding a table row also carry `_row` (its row there, so tables read back in their exact order):
- entity nodes :Person :Employer :Clinic :Pharmacy :Agency and identifier nodes :Phone
  :Address :BankAccount, keyed by `_id` (unique per snapshot); entity nodes hold their table's
  columns (missing values are simply absent properties; dates are native Neo4j dates);
- one relationship per event row (EMPLOYED_BY, CONTRIBUTED, VISITED, PURCHASED, LINKED) with the
  row's columns but the two that name its end nodes (those are the ends' `_id`);
- derived relationships as in graph/projection.py (PLACED_BY, PRESCRIBED_AT, HAS_PHONE,
  HAS_ADDRESS, HAS_BANK_ACCOUNT) with no property at all: their ends say which snapshot they
  belong to, and a relationship's property record is the main cost of writing it;
- benefits and labels are unconnected fact nodes :Benefit and :RiskLabel (never traversed);
- SAME_PERSON relationships (person record -> its golden person's record, docs/resolution.md)
  with match_probability and matched_on, written by `stage_same_person` into a staged snapshot
  after the run's resolution stage and before its commit; their count is the snapshot node's
  `same_person`. They go with their person nodes when the snapshot is deleted.
Personal data (docs/security.md). A store opened with a cipher writes every column at a personal
level (graph/contract.py `column_level`: names, id numbers, phones, addresses, bank accounts,
gender, birth date, diagnosis, unclassified extra columns) as `enc1:` ciphertext text bound to its
column name, and decrypts it when it reads the snapshot back; a store opened with tokens keys the
identifier nodes by `Tokens(value)` (`_id`: equal values still share one node) with the value kept
only as ciphertext (`_value`). The snapshot node records both (`encrypted`: table -> columns;
`identifier_tokens`: the key id of the tokens), so each snapshot reads back as it was written.
Graph reads give investigators' callers the plain values (identifier refs by value); masking by
role stays the API's job.
Only nodes are indexed: a relationship table reads back by pages of its end nodes, and a snapshot
is deleted node by node (DETACH DELETE); an index on relationships cost every write ~10%.
Snapshots. Each is a (:RiskGraphSnapshot {id, status}) node, its id the next (:RiskGraphMeta).seq.
`stage` writes one with status 'loading', then 'complete'; it is not current until `commit` sets
the single (:RiskGraphMeta).current pointer to it (one transaction). Graph queries read the current
snapshot; `dataset(id)` and `snapshot(id)` read any complete one. Snapshots stay until `retain`
deletes those neither current nor kept. A failed stage deletes its partial snapshot; a crashed
one's leftover (still 'loading') is removed by the next stage or retain. Column order and dtypes
of every table are kept in the snapshot node, so `dataset()` rebuilds identical frames.
Writers take the lease (:RiskGraphLease {key: 'writer'}) with holder, acquired_at, expires_at
(server time, LEASE_TTL_S ahead, renewed by the run's heartbeat); an expired lease may be taken over.

Modules. This one holds the store: snapshots, taking the write lease and graph reads; the held
lease (renew, release) is graph/neo4j_lease.py. The batch writer is
graph/neo4j_ingest.py, reading tables back graph/neo4j_read.py, the labels and relationship types
above graph/neo4j_layout.py; every statement goes through a CypherRunner (graph/neo4j_runner.py:
the Bolt driver by default, or a test's fake). Imports go one way: this module imports neo4j_ingest
and neo4j_read, which import neo4j_layout and neo4j_runner.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from neo4j.exceptions import Neo4jError

from graph.contract import AGENCY_LINK_TYPES, ENTITY_TABLE, ENTITY_TYPES, IDENTIFIER_TYPES, column_level
from graph.dataset import Dataset
from graph.neo4j_ingest import DEFAULT_BATCH_SIZE, DEFAULT_SESSIONS, SnapshotWriter
from graph.neo4j_layout import DERIVED_RELS, EVENT_TABLES, FACT_LABELS, LABELS, NODE_TYPE_OF_LABEL, REL_RANK, TYPE_RANK
from graph.neo4j_lease import LEASE_KEY, LEASE_TTL_S, Neo4jStoreLease, server_time
from graph.neo4j_read import NodeReader, encrypted_columns, identifier_value, read_table
from graph.neo4j_runner import BoltCypherRunner, CypherRunner
from graph.projection import REL_TYPES
from graph.store import (
    SAME_PERSON_COLUMNS,
    Edge,
    EntityRef,
    GraphStore,
    SnapshotInfo,
    Subgraph,
    same_person_frame,
)
from riskgraph.errors import NoSnapshot, StoreBusy, StoreLoadFailed, StoreUnavailable
from riskgraph.field_crypto import CannotDecrypt, FieldCipher
from riskgraph.server_keys import Tokens

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_SESSIONS", "CypherRunner", "Neo4jGraphStore", "Neo4jStoreLease"]

log = logging.getLogger(__name__)

DELETE_BATCH_SIZE = 20_000
META_KEY = "riskgraph"
CACHED_SNAPSHOTS = 2  # datasets kept in memory: the current one and one staged or older one


def _snap_key(snapshot_id: str) -> int | None:
    """The stored (integer) id of a snapshot id, or None when it cannot name one."""
    try:
        return int(snapshot_id)
    except (TypeError, ValueError):
        return None


class Neo4jGraphStore(GraphStore):
    """A graph store in a Neo4j 5.x database (Community or Enterprise, or Aura).

    Its statements go through `runner`: by default a BoltCypherRunner on `url` (with `user`,
    `password`, `database`); a test may pass a fake that collects them instead."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        sessions: int = DEFAULT_SESSIONS,
        lease_ttl_s: float = LEASE_TTL_S,
        runner: CypherRunner | None = None,
        cipher: FieldCipher | None = None,
        tokens: Tokens | None = None,
    ) -> None:
        self.url = url
        self.cipher = cipher  # personal columns encrypted at rest (none: stored plain, tests)
        self.tokens = tokens  # identifier nodes keyed by keyed tokens (none: by value, tests)
        self.database = database or None
        self.batch_size = int(batch_size)
        self.sessions = max(1, int(sessions))
        self._runner: CypherRunner = (
            runner
            if runner is not None
            else BoltCypherRunner(url, user=user, password=password, database=self.database)
        )
        self.lease_ttl_s = float(lease_ttl_s)
        self._schema_ready = False
        self._cache: OrderedDict[tuple[int, str], Dataset] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------------
    def _run(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        return self._runner.run(cypher, params)

    def _write(self, cypher: str, **params: Any) -> None:
        self._runner.write(cypher, params)

    def _autocommit(self, cypher: str, **params: Any) -> None:
        """For `CALL { ... } IN TRANSACTIONS`, which needs an auto-commit transaction."""
        self._runner.autocommit(cypher, params)

    def describe(self) -> str:
        return f"{self.url}" + (f"/{self.database}" if getattr(self, "database", None) else "")

    def ping(self) -> bool:
        try:
            self._runner.verify()
        except StoreUnavailable:
            return False
        return True

    def check(self) -> None:
        """Raise StoreUnavailable with the reason when the server cannot be used."""
        self._runner.verify()

    def close(self) -> None:
        self._runner.close()

    def ensure_schema(self) -> None:
        """Uniqueness constraints and indexes, created idempotently."""
        if self._schema_ready:
            return
        statements = [
            "CREATE CONSTRAINT rg_meta_key IF NOT EXISTS FOR (m:RiskGraphMeta) REQUIRE m.key IS UNIQUE",
            "CREATE CONSTRAINT rg_snapshot_id IF NOT EXISTS FOR (s:RiskGraphSnapshot) REQUIRE s.id IS UNIQUE",
            "CREATE CONSTRAINT rg_lease_key IF NOT EXISTS FOR (l:RiskGraphLease) REQUIRE l.key IS UNIQUE",
        ]
        for label in LABELS.values():
            statements.append(
                f"CREATE CONSTRAINT rg_{label.lower()}_key IF NOT EXISTS "
                f"FOR (n:{label}) REQUIRE (n._snapshot, n._id) IS UNIQUE"
            )
        for label in FACT_LABELS.values():
            statements.append(
                f"CREATE INDEX rg_{label.lower()}_row IF NOT EXISTS FOR (n:{label}) ON (n._snapshot, n._row)"
            )
        for rel in REL_TYPES:  # relationship indexes of earlier versions: they slowed every write ~10%
            statements.append(f"DROP INDEX rg_rel_{rel.lower()}_row IF EXISTS")
        for s in statements:
            self._write(s)
        self._write("CALL db.awaitIndexes(300)")
        self._schema_ready = True

    # -- snapshots --------------------------------------------------------------------------
    def _current(self) -> dict[str, Any] | None:
        rows = self._run(
            "MATCH (m:RiskGraphMeta {key: $key}) MATCH (s:RiskGraphSnapshot {id: m.current}) RETURN s {.*} AS s",
            key=META_KEY,
        )
        return rows[0]["s"] if rows else None

    def _snapshot_node(self, snapshot_id: str | None) -> dict[str, Any] | None:
        """The current snapshot's node, or the named complete one's."""
        if snapshot_id is None:
            return self._current()
        snap = _snap_key(snapshot_id)
        if snap is None:
            return None
        rows = self._run(
            "MATCH (s:RiskGraphSnapshot {id: $id}) WHERE s.status = 'complete' RETURN s {.*} AS s", id=snap
        )
        return rows[0]["s"] if rows else None

    def snapshot(self, snapshot_id: str | None = None) -> SnapshotInfo | None:
        s = self._snapshot_node(snapshot_id)
        if s is None:
            return None
        return SnapshotInfo(
            s["content_hash"], datetime.fromisoformat(s["loaded_at"]), json.loads(s["row_counts"]), str(s["id"])
        )

    def snapshot_ids(self) -> list[str]:
        rows = self._run("MATCH (s:RiskGraphSnapshot) WHERE s.status = 'complete' RETURN s.id AS id ORDER BY id")
        return [str(r["id"]) for r in rows]

    def stage(self, dataset: Dataset) -> SnapshotInfo:
        self.ensure_schema()
        self._delete_incomplete()
        snap = self._run(
            "MERGE (m:RiskGraphMeta {key: $key}) SET m.seq = coalesce(m.seq, 0) + 1 RETURN m.seq AS seq", key=META_KEY
        )[0]["seq"]
        info = SnapshotInfo(dataset.content_hash, datetime.now(UTC), dataset.row_counts(), str(snap))
        schema = {name: [[c, str(df[c].dtype)] for c in df.columns] for name, df in dataset.tables.items()}
        self._write(
            "CREATE (:RiskGraphSnapshot {id: $id, status: 'loading', content_hash: $hash, "
            "loaded_at: $at, row_counts: $counts, tables: $schema, skipped: $skipped, "
            "encrypted: $encrypted, identifier_tokens: $tokens})",
            id=snap,
            hash=info.content_hash,
            at=info.loaded_at.isoformat(),
            counts=json.dumps(info.row_counts),
            schema=json.dumps(schema),
            skipped=dataset.skipped,
            encrypted=json.dumps(self._personal_columns(dataset)),
            tokens=self.tokens.key_id if self.tokens is not None else None,
        )
        try:
            self._ingest(snap, dataset)
            if not self._run(
                "MATCH (s:RiskGraphSnapshot {id: $id}) SET s.status = 'complete' RETURN s.id AS id", id=snap
            ):
                raise StoreLoadFailed(
                    f"snapshot {snap} was deleted while it was being written (another "
                    "writer without the lease?); the previous snapshot stays current"
                )
        except Neo4jError as exc:
            self._cleanup_quietly(snap)
            raise StoreLoadFailed(
                f"Neo4j rejected the load, the previous snapshot stays current: {exc.message or exc}"
            ) from exc
        except StoreUnavailable as exc:
            self._cleanup_quietly(snap)
            raise StoreUnavailable(
                f"{exc} -- the load was interrupted; the previous snapshot stays current "
                "and the partial one is removed (now, or by the next load or retain)"
            ) from exc
        except BaseException:
            self._cleanup_quietly(snap)
            raise
        self._remember((snap, info.loaded_at.isoformat()), dataset)
        return info

    def commit(self, snapshot_id: str) -> None:
        self.ensure_schema()
        snap = _snap_key(snapshot_id)
        rows = (
            []
            if snap is None
            else self._run(
                "MATCH (s:RiskGraphSnapshot {id: $id}) WHERE s.status = 'complete' "
                "MERGE (m:RiskGraphMeta {key: $key}) SET m.current = s.id RETURN s.id AS id",
                key=META_KEY,
                id=snap,
            )
        )
        if not rows:
            raise NoSnapshot(
                f"cannot commit snapshot {snapshot_id!r}: Neo4j at {self.url} holds no complete "
                "snapshot of that id (never staged, still being written, or deleted by retain)"
            )

    def retain(self, keep: Collection[str]) -> None:
        if isinstance(keep, str):
            raise TypeError("retain() takes a collection of snapshot ids, not a single id")
        kept = [k for k in map(_snap_key, keep) if k is not None]
        rows = self._run(
            "OPTIONAL MATCH (m:RiskGraphMeta {key: $key}) WITH m.current AS current "
            "MATCH (s:RiskGraphSnapshot) WHERE coalesce(s.id <> current, true) AND NOT s.id IN $keep "
            "RETURN s.id AS id ORDER BY id",
            key=META_KEY,
            keep=kept,
        )
        for r in rows:
            self._delete_snapshot(r["id"])

    def clear(self) -> None:
        """Delete every snapshot (the store becomes empty)."""
        self.ensure_schema()
        for r in self._run("MATCH (s:RiskGraphSnapshot) RETURN s.id AS id"):
            self._delete_snapshot(r["id"])
        self._write("MATCH (m:RiskGraphMeta {key: $key}) REMOVE m.current", key=META_KEY)  # seq stays
        with self._cache_lock:
            self._cache.clear()

    def _cleanup_quietly(self, snap: int) -> None:
        # the server is gone: the next load (or retain) deletes the leftover (status 'loading')
        with contextlib.suppress(StoreUnavailable, Neo4jError):
            self._delete_snapshot(snap)

    def stage_same_person(self, snapshot_id: str, links: pd.DataFrame) -> int:
        snap = _snap_key(snapshot_id)
        frame = same_person_frame(links)
        rows = self._run(
            "MATCH (s:RiskGraphSnapshot {id: $id}) WHERE s.status = 'complete' "
            "OPTIONAL MATCH (m:RiskGraphMeta {key: $key}) RETURN coalesce(m.current = s.id, false) AS current",
            id=snap,
            key=META_KEY,
        )
        if not rows:
            raise NoSnapshot(f"Neo4j at {self.url} holds no complete snapshot {snapshot_id!r}")
        if rows[0]["current"]:
            raise ValueError(f"snapshot {snapshot_id} is current: its SAME_PERSON links are written before its commit")
        ids = sorted(set(frame["person_id"]) | set(frame["golden_id"]))
        found = self._run(
            "UNWIND $ids AS id MATCH (n:Person {_snapshot: $s, _id: id}) RETURN count(n) AS n", ids=ids, s=snap
        )[0]["n"]
        if found != len(ids):
            raise ValueError(f"{len(ids) - found} SAME_PERSON links name a person record snapshot {snapshot_id} lacks")
        try:  # (`_id IS NOT NULL`: the (_snapshot, _id) index finds the snapshot's persons)
            self._autocommit(  # links an earlier attempt left
                "MATCH (a:Person)-[r:SAME_PERSON]->() WHERE a._snapshot = $s AND a._id IS NOT NULL "
                f"CALL (r) {{ DELETE r }} IN TRANSACTIONS OF {DELETE_BATCH_SIZE} ROWS",
                s=snap,
            )
            records = [
                {"a": a, "b": b, "p": None if math.isnan(p) else float(p), "on": on}
                for a, b, p, on in zip(
                    frame["person_id"], frame["golden_id"], frame["match_probability"], frame["matched_on"]
                )
            ]
            for lo in range(0, len(records), self.batch_size):
                self._write(
                    "UNWIND $rows AS row "
                    "MATCH (a:Person {_snapshot: $s, _id: row.a}) MATCH (b:Person {_snapshot: $s, _id: row.b}) "
                    "CREATE (a)-[:SAME_PERSON {match_probability: row.p, matched_on: row.on}]->(b)",
                    rows=records[lo : lo + self.batch_size],
                    s=snap,
                )
            self._write("MATCH (s:RiskGraphSnapshot {id: $s}) SET s.same_person = $n", s=snap, n=len(records))
        except Neo4jError as exc:
            raise StoreLoadFailed(
                f"Neo4j rejected the SAME_PERSON links of snapshot {snapshot_id}; it is not committed: {exc.message or exc}"
            ) from exc
        return len(records)

    def same_person(self, snapshot_id: str | None = None) -> pd.DataFrame:
        s = self._require_current() if snapshot_id is None else self._snapshot_node(snapshot_id)
        if s is None:
            raise NoSnapshot(f"Neo4j at {self.url} holds no complete snapshot {snapshot_id!r}")
        rows = self._run(
            "MATCH (a:Person)-[r:SAME_PERSON]->(b:Person) WHERE a._snapshot = $s AND a._id IS NOT NULL "
            "RETURN a._id AS person_id, b._id AS golden_id, r.match_probability AS match_probability, "
            "r.matched_on AS matched_on",
            s=s["id"],
        )
        return same_person_frame(pd.DataFrame(rows, columns=list(SAME_PERSON_COLUMNS)))

    def _delete_incomplete(self) -> None:
        """Remove snapshots left half-written by crashed loads (status 'loading')."""
        rows = self._run(
            "OPTIONAL MATCH (m:RiskGraphMeta {key: $key}) WITH m.current AS current "
            "MATCH (s:RiskGraphSnapshot) WHERE coalesce(s.status <> 'complete', true) "
            "AND coalesce(s.id <> current, true) RETURN s.id AS id",
            key=META_KEY,
        )
        for r in rows:
            self._delete_snapshot(r["id"])

    def _delete_snapshot(self, snap: int) -> None:
        """DETACH DELETE the snapshot's nodes (with their relationships), entities first, in
        transactions of about DELETE_BATCH_SIZE relationships each."""
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] == snap]:
                del self._cache[key]
        rows = self._run(
            "MATCH (s:RiskGraphSnapshot {id: $s}) RETURN s.row_counts AS counts, s.same_person AS links", s=snap
        )
        per_tx = _delete_batches(
            json.loads(rows[0]["counts"]) if rows and rows[0]["counts"] else {},
            int(rows[0].get("links") or 0) if rows else 0,
        )
        for label in list(LABELS.values()) + list(FACT_LABELS.values()):
            prop = "_id" if label in NODE_TYPE_OF_LABEL else "_row"
            rows_per_tx = per_tx.get(label, DELETE_BATCH_SIZE)
            self._autocommit(
                f"MATCH (n:{label}) WHERE n._snapshot = $s AND n.{prop} IS NOT NULL "
                f"CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF {rows_per_tx} ROWS",
                s=snap,
            )
        self._write("MATCH (s:RiskGraphSnapshot {id: $s}) DELETE s", s=snap)

    # -- write lease ----------------------------------------------------------------------------
    def lease(self, holder: str) -> Neo4jStoreLease:
        """Take the write lease, (:RiskGraphLease {key: 'writer'}), in one transaction: when it is
        free or expired it becomes `holder`'s for lease_ttl_s; when another run holds it, StoreBusy
        names that run and since when."""
        self.ensure_schema()
        token = uuid.uuid4().hex
        # SET first takes the node's write lock: a concurrent taker then reads the committed lease.
        r = self._run(
            "MERGE (l:RiskGraphLease {key: $key}) SET l._lock = true "
            "WITH l, l.token IS NULL OR coalesce(l.expires_at < datetime(), true) AS free "
            "SET l += CASE WHEN free THEN {token: $token, holder: $holder, acquired_at: datetime(), "
            "expires_at: datetime() + duration({milliseconds: $ttl})} ELSE {} END "
            "REMOVE l._lock "
            "RETURN l.token = $token AS mine, l.holder AS holder, l.acquired_at AS since, l.expires_at AS until",
            key=LEASE_KEY,
            token=token,
            holder=holder,
            ttl=self._lease_ttl_ms,
        )[0]
        if not r["mine"]:
            raise StoreBusy(
                f"Neo4j at {self.url} is being written by {r['holder']} since {server_time(r['since'])} "
                f"(its lease runs until {server_time(r['until'])} unless renewed); "
                "try again once that run has finished"
            )
        return Neo4jStoreLease(self, holder, token)

    @property
    def _lease_ttl_ms(self) -> int:
        return max(1, int(self.lease_ttl_s * 1000))

    # -- ingest ---------------------------------------------------------------------------------
    def _personal_columns(self, dataset: Dataset) -> dict[str, list[str]]:
        """{table: its columns at a personal level}, the ones written encrypted (none without a cipher)."""
        if self.cipher is None:
            return {}
        found = {
            name: [str(c) for c in df.columns if column_level(name, str(c)).is_personal]
            for name, df in dataset.tables.items()
        }
        return {name: cols for name, cols in found.items() if cols}

    def _ingest(self, snap: int, dataset: Dataset) -> None:
        """Write the dataset's rows as snapshot `snap` (graph/neo4j_ingest.py), personal columns
        encrypted and identifier nodes keyed by tokens when the store has a cipher / tokens."""
        SnapshotWriter(
            self._runner,
            snap,
            batch_size=self.batch_size,
            sessions=self.sessions,
            cipher=self.cipher,
            encrypted=self._personal_columns(dataset),
            tokens=self.tokens,
        ).write(dataset)

    # -- reading the snapshot back ------------------------------------------------------------------
    def _require_current(self) -> dict[str, Any]:
        s = self._current()
        if s is None:
            raise NoSnapshot(f"no dataset loaded in Neo4j at {self.url}; run `riskgraph pipeline --data DIR` first")
        return s

    def dataset(self, snapshot_id: str | None = None) -> Dataset:
        s = self._require_current() if snapshot_id is None else self._snapshot_node(snapshot_id)
        if s is None:
            raise NoSnapshot(
                f"Neo4j at {self.url} holds no complete snapshot {snapshot_id!r} "
                "(never staged, still being written, or deleted by retain)"
            )
        key = (s["id"], s["loaded_at"])
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        schema: dict[str, list[list[str]]] = json.loads(s["tables"])
        counts: dict[str, int] = json.loads(s["row_counts"])
        encrypted = encrypted_columns(s)
        tables = {
            name: read_table(self._runner, s["id"], name, cols, counts, self.cipher, encrypted.get(name, ()))
            for name, cols in schema.items()
        }
        dataset = Dataset(tables, content_hash=s["content_hash"], skipped=list(s.get("skipped") or []))
        self._remember(key, dataset)
        return dataset

    def _remember(self, key: tuple[int, str], dataset: Dataset) -> None:
        """Cache a snapshot's dataset under (id, loaded_at), keeping the CACHED_SNAPSHOTS last used."""
        with self._cache_lock:
            self._cache[key] = dataset
            self._cache.move_to_end(key)
            while len(self._cache) > CACHED_SNAPSHOTS:
                self._cache.popitem(last=False)

    # -- graph reads --------------------------------------------------------------------------
    def _stored_id(self, s: dict[str, Any], node_type: str, node_id: str) -> str:
        """The `_id` a node is kept under: an identifier's keyed token when the snapshot keys its
        identifier nodes by tokens (its `identifier_tokens` key id), else the id itself."""
        key = s.get("identifier_tokens")
        if node_type not in IDENTIFIER_TYPES or not key:
            return node_id
        if self.tokens is None or self.tokens.key_id != key:
            raise CannotDecrypt(
                f"snapshot {s['id']} keys its identifier nodes with another key than this store's "
                "(rotated secret? run the pipeline again)"
            )
        return self.tokens(node_id)

    def _ref(self, node_type: str, stored_id: Any, value: Any) -> EntityRef:
        """A node read back as its ref: identifier nodes by their plain value (`_value` decrypted)."""
        if node_type in IDENTIFIER_TYPES and value is not None:
            return EntityRef(node_type, identifier_value(node_type, {"_value": value}, self.cipher))
        return EntityRef(node_type, stored_id)

    def entity(self, ref: EntityRef) -> dict[str, Any] | None:
        if ref.type not in LABELS:
            return None
        s = self._require_current()
        rows = self._run(
            f"MATCH (n:{LABELS[ref.type]} {{_snapshot: $s, _id: $id}}) RETURN n {{.*}} AS p",
            s=s["id"],
            id=self._stored_id(s, ref.type, ref.id),
        )
        if not rows:
            return None
        return NodeReader(s, self.cipher).attributes(ref.type, rows[0]["p"])

    def _node_ids(self, s: dict[str, Any], refs: list[EntityRef]) -> dict[str, EntityRef]:
        """elementId -> ref for the refs that exist in the snapshot."""
        found: dict[str, EntityRef] = {}
        by_type: dict[str, dict[str, str]] = {}  # type -> stored _id -> the ref's id
        for r in refs:
            if r.type in LABELS:
                by_type.setdefault(r.type, {})[self._stored_id(s, r.type, r.id)] = r.id
        for t, ids in by_type.items():
            for row in self._run(
                f"UNWIND $ids AS id MATCH (n:{LABELS[t]} {{_snapshot: $s, _id: id}}) "
                "RETURN elementId(n) AS e, n._id AS id",
                ids=list(ids),
                s=s["id"],
            ):
                found[row["e"]] = EntityRef(t, ids[row["id"]])
        return found

    def neighbours(
        self, ref: EntityRef, *, hops: int = 1, limit: int = 200, rel_types: tuple[str, ...] | None = None
    ) -> Subgraph:
        s = self._require_current()
        start = self._node_ids(s, [ref])
        if not start:
            return Subgraph()
        types = list(rel_types) if rel_types else None
        seen: dict[str, EntityRef] = dict(start)
        frontier = list(start)
        truncated = False
        rank = (
            "CASE head(labels(b)) "
            + " ".join(f"WHEN '{lab}' THEN {TYPE_RANK[t]}" for t, lab in LABELS.items())
            + " END"
        )
        for _ in range(hops):
            if not frontier:
                break
            room = limit - len(seen)
            rows = self._run(
                "UNWIND $frontier AS e MATCH (a) WHERE elementId(a) = e "
                "MATCH (a)-[r]-(b) WHERE ($types IS NULL OR type(r) IN $types) "
                "WITH DISTINCT b WHERE NOT elementId(b) IN $seen "
                f"RETURN elementId(b) AS e, head(labels(b)) AS label, b._id AS id, b._value AS value, {rank} AS rank "
                "ORDER BY rank, id LIMIT $room",
                frontier=frontier,
                types=types,
                seen=list(seen),
                room=max(room, 0) + 1,
            )
            if len(rows) > room:
                rows, truncated = rows[: max(room, 0)], True
            frontier = [r["e"] for r in rows]
            seen.update({r["e"]: self._ref(NODE_TYPE_OF_LABEL[r["label"]], r["id"], r.get("value")) for r in rows})
            if truncated:
                break
        return self._subgraph_of(s, seen, types, truncated)

    def shortest_path(self, source: EntityRef, target: EntityRef, *, max_hops: int = 6) -> Subgraph | None:
        s = self._require_current()
        ids = self._node_ids(s, [source, target])
        if len(set(ids.values())) < len({source, target}):
            return None
        if source == target:
            return self._subgraph_of(s, ids, None, False)
        a = next(e for e, r in ids.items() if r == source)
        b = next(e for e, r in ids.items() if r == target)
        hops = max(int(max_hops), 1)
        rows = self._run(
            "MATCH (a) WHERE elementId(a) = $a MATCH (b) WHERE elementId(b) = $b "
            f"MATCH p = shortestPath((a)-[*..{hops}]-(b)) "
            "RETURN [n IN nodes(p) | [elementId(n), head(labels(n)), n._id, n._value]] AS nodes",
            a=a,
            b=b,
        )
        if not rows:
            return None
        path = [(e, self._ref(NODE_TYPE_OF_LABEL[lab], i, v)) for e, lab, i, v in rows[0]["nodes"]]
        sub = self._subgraph_of(s, dict(path), None, False)
        chosen: dict[frozenset[EntityRef], Edge] = {}
        for e in sub.edges:  # one edge per hop: the first relationship type in REL_TYPES order
            key = frozenset((e.source, e.target))
            if key not in chosen or REL_RANK[e.type] < REL_RANK[chosen[key].type]:
                chosen[key] = e
        sub.edges = [chosen[frozenset((path[i][1], path[i + 1][1]))] for i in range(len(path) - 1)]
        return sub

    def subgraph(self, refs: list[EntityRef]) -> Subgraph:
        s = self._require_current()
        return self._subgraph_of(s, self._node_ids(s, refs), None, False)

    def _subgraph_of(
        self, s: dict[str, Any], nodes: dict[str, EntityRef], types: list[str] | None, truncated: bool
    ) -> Subgraph:
        eids = list(nodes)
        reader = NodeReader(s, self.cipher)
        props = {
            r["e"]: r["p"]
            for r in self._run("UNWIND $eids AS e MATCH (n) WHERE elementId(n) = e RETURN e, n {.*} AS p", eids=eids)
        }
        rels = self._run(
            "UNWIND $eids AS e MATCH (a) WHERE elementId(a) = e "
            "MATCH (a)-[r]->(b) WHERE elementId(b) IN $eids AND ($types IS NULL OR type(r) IN $types) "
            "RETURN elementId(a) AS a, elementId(b) AS b, type(r) AS t, count(r) AS n, "
            "head(collect(CASE WHEN type(r) = 'SAME_PERSON' THEN r {.match_probability, .matched_on} END)) AS p",
            eids=eids,
            types=types,
        )
        ranked = sorted(nodes.items(), key=lambda kv: (TYPE_RANK[kv[1].type], kv[1].id))
        sub = Subgraph(truncated=truncated)
        for e, ref in ranked:
            sub.nodes[ref] = reader.attributes(ref.type, props.get(e, {}))
        index = {e: i for i, (e, _) in enumerate(ranked)}
        rels.sort(key=lambda r: (index[r["a"]], index[r["b"]], REL_RANK.get(r["t"], len(REL_RANK))))
        sub.edges = [
            Edge(
                nodes[r["a"]],
                nodes[r["b"]],
                r["t"],
                int(r["n"]),
                {k: v for k, v in (r.get("p") or {}).items() if v is not None},
            )
            for r in rels
        ]
        return sub


def _delete_batches(counts: dict[str, int], same_person: int = 0) -> dict[str, int]:
    """Nodes per delete transaction for each entity label: DELETE_BATCH_SIZE relationships over the
    most relationships its nodes can have on average (from the table row counts and the
    `same_person` links, which touch two person nodes each). Identifier and fact nodes have none
    left once the entities are gone."""
    touching = {t: 0 for t in ENTITY_TYPES}
    ends = [(table, st, tt) for table, (_, st, _, tt, _) in EVENT_TABLES.items()]
    ends += [(table, st, tt) for table, _, st, _, tt, _ in DERIVED_RELS]
    ends += [("agency_links", "agency", t) for t in AGENCY_LINK_TYPES]
    for table, st, tt in ends:
        touching[st] += counts.get(table, 0)
        touching[tt] += counts.get(table, 0)
    for holder in ("person", "employer"):
        touching[holder] += len(IDENTIFIER_TYPES) * counts.get(ENTITY_TABLE[holder], 0)
    touching["person"] += 2 * same_person
    return {
        LABELS[t]: max(
            1, min(DELETE_BATCH_SIZE, DELETE_BATCH_SIZE * counts.get(ENTITY_TABLE[t], 0) // max(1, touching[t]))
        )
        for t in ENTITY_TYPES
    }
