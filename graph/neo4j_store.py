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
- benefits and labels are unconnected fact nodes :Benefit and :RiskLabel (never traversed).
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
"""
from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from functools import partial
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from neo4j import Driver, GraphDatabase
from neo4j.exceptions import (
    AuthError, ConfigurationError, DriverError, Neo4jError, TransientError,
)

from graph.contract import AGENCY_LINK_TYPES, ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN, IDENTIFIER_TYPES
from graph.dataset import Dataset
from graph.projection import NODE_TYPES, REL_TYPES
from graph.store import Edge, EntityRef, GraphStore, SnapshotInfo, StoreLease, Subgraph
from riskgraph.errors import NoSnapshot, StoreBusy, StoreLoadFailed, StoreUnavailable

log = logging.getLogger(__name__)

# Rows per UNWIND transaction; measured with bench/bench_neo4j.py --batch-sizes (see its docstring).
DEFAULT_BATCH_SIZE = 10_000
# Concurrent sessions (threads) writing one table's rows, split by end node (see _partition_key).
# 2 on this 2-core machine: ~1.9x one session (bench_neo4j.py); tables still go one at a time,
# since two tables at once lock the same persons from both sessions (that was slower than one).
DEFAULT_SESSIONS = 2
# Neo4j's db.relationship_grouping_threshold default: nodes with more relationships are "dense" and
# take concurrent relationship inserts without an exclusive node lock.
DENSE_NODE_DEGREE = 50
READ_BATCH_SIZE = 20_000
DELETE_BATCH_SIZE = 20_000
CONNECTION_TIMEOUT_S = 5.0
RETRY_TIME_S = 5.0  # managed transactions retry transient failures this long, then give up

LABELS: dict[str, str] = {
    "person": "Person", "employer": "Employer", "clinic": "Clinic", "pharmacy": "Pharmacy",
    "agency": "Agency", "phone": "Phone", "address": "Address", "bank_account": "BankAccount",
}
NODE_TYPE_OF_LABEL = {v: k for k, v in LABELS.items()}
FACT_LABELS: dict[str, str] = {"benefits": "Benefit", "labels": "RiskLabel"}
IDENTIFIER_RELS = {"phone": "HAS_PHONE", "address": "HAS_ADDRESS", "bank_account": "HAS_BANK_ACCOUNT"}
# event table -> (relationship, source type, source column, target type, target column)
EVENT_TABLES: dict[str, tuple[str, str, str, str, str]] = {
    "employment": ("EMPLOYED_BY", "person", "person_id", "employer", "employer_id"),
    "contributions": ("CONTRIBUTED", "employer", "employer_id", "person", "person_id"),
    "visits": ("VISITED", "person", "person_id", "clinic", "clinic_id"),
    "purchases": ("PURCHASED", "person", "person_id", "pharmacy", "pharmacy_id"),
}
# Columns of a relationship table kept only as its end nodes' `_id` (source, target): read back
# from the ends, which saves two property blocks per row.
END_COLUMNS: dict[str, tuple[str, str]] = {
    **{table: (sc, tc) for table, (_, _, sc, _, tc) in EVENT_TABLES.items()},
    "agency_links": ("agency_id", "entity_id"),
}
# derived relationships (no table of their own): (table, rel, source type/col, target type/col)
DERIVED_RELS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("employment", "PLACED_BY", "person", "person_id", "agency", "agency_id"),
    ("purchases", "PRESCRIBED_AT", "pharmacy", "pharmacy_id", "clinic", "clinic_id"),
)
META_KEY = "riskgraph"
LEASE_KEY = "writer"
LEASE_TTL_S = 180.0  # a run renews its lease every 30 s (its heartbeat)
CACHED_SNAPSHOTS = 2  # datasets kept in memory: the current one and one staged or older one
TYPE_RANK = {t: i for i, t in enumerate(NODE_TYPES)}
REL_RANK = {r: i for i, r in enumerate(REL_TYPES)}
SEP = "\x1f"   # joins a column's values into one string per batch (see _Column)
NULL = "\x1e"  # a missing text value inside such a string


def _q(name: str) -> str:
    """A Cypher identifier, backtick-quoted (extra columns may have any name)."""
    return "`" + name.replace("`", "``") + "`"


def _unavailable(url: str, exc: Exception) -> StoreUnavailable:
    if isinstance(exc, AuthError):
        return StoreUnavailable(f"Neo4j at {url} refused the credentials (wrong user or password): {exc.message}")
    if isinstance(exc, TransientError):
        return StoreUnavailable(f"Neo4j at {url} is unavailable ({exc.message or exc}); is it shutting down?")
    return StoreUnavailable(f"Neo4j at {url} is not reachable ({exc}); is the server running? "
                            "For a local one: `riskgraph neo4j start`")


class _Cancelled(Exception):
    """A concurrent ingest job stopped because another one failed."""


def _snap_key(snapshot_id: str) -> int | None:
    """The stored (integer) id of a snapshot id, or None when it cannot name one."""
    try:
        return int(snapshot_id)
    except (TypeError, ValueError):
        return None


def _when(value: Any) -> str:
    """A server DateTime as UTC text, to the second."""
    return value.to_native().astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class Neo4jGraphStore(GraphStore):
    """A graph store in a Neo4j 5.x database (Community or Enterprise, or Aura)."""

    def __init__(self, url: str, *, user: str | None = None, password: str | None = None,
                 database: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 sessions: int = DEFAULT_SESSIONS, lease_ttl_s: float = LEASE_TTL_S) -> None:
        self.url = url
        self.database = database or None
        self.batch_size = int(batch_size)
        self.sessions = max(1, int(sessions))
        self._cancel = threading.Event()
        auth = (user or "neo4j", password) if password else None
        try:
            self._driver: Driver = GraphDatabase.driver(url, auth=auth, connection_timeout=CONNECTION_TIMEOUT_S,
                                                     notifications_min_severity="OFF",
                                                     max_transaction_retry_time=RETRY_TIME_S)
        except (ConfigurationError, ValueError) as exc:
            raise StoreUnavailable(f"cannot use Neo4j URL {url!r}: {exc}") from exc
        self.lease_ttl_s = float(lease_ttl_s)
        self._schema_ready = False
        self._cache: OrderedDict[tuple[int, str], Dataset] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------------
    def _run(self, cypher: str, **params: Any) -> list[dict[str, Any]]:
        try:
            records, _, _ = self._driver.execute_query(cypher, params, database_=self.database)
        except (AuthError, TransientError, OSError, DriverError) as exc:
            raise _unavailable(self.url, exc) from exc
        return [r.data() for r in records]

    def _write(self, cypher: str, **params: Any) -> None:
        try:
            self._driver.execute_query(cypher, params, database_=self.database)
        except (AuthError, TransientError, OSError, DriverError) as exc:
            raise _unavailable(self.url, exc) from exc

    def _autocommit(self, cypher: str, **params: Any) -> None:
        """For `CALL { ... } IN TRANSACTIONS`, which needs an auto-commit transaction."""
        try:
            with self._driver.session(database=self.database) as session:
                session.run(cypher, params).consume()
        except (AuthError, TransientError, OSError, DriverError) as exc:
            raise _unavailable(self.url, exc) from exc

    def describe(self) -> str:
        return f"{self.url}" + (f"/{self.database}" if getattr(self, "database", None) else "")

    def ping(self) -> bool:
        try:
            self._driver.verify_connectivity()
        except (Neo4jError, DriverError, OSError):
            return False
        return True

    def check(self) -> None:
        """Raise StoreUnavailable with the reason when the server cannot be used."""
        try:
            self._driver.verify_connectivity()
        except (Neo4jError, DriverError, OSError) as exc:
            raise _unavailable(self.url, exc) from exc

    def close(self) -> None:
        self._driver.close()

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
            statements.append(f"CREATE CONSTRAINT rg_{label.lower()}_key IF NOT EXISTS "
                              f"FOR (n:{label}) REQUIRE (n._snapshot, n._id) IS UNIQUE")
        for label in FACT_LABELS.values():
            statements.append(f"CREATE INDEX rg_{label.lower()}_row IF NOT EXISTS "
                              f"FOR (n:{label}) ON (n._snapshot, n._row)")
        for rel in REL_TYPES:  # relationship indexes of earlier versions: they slowed every write ~10%
            statements.append(f"DROP INDEX rg_rel_{rel.lower()}_row IF EXISTS")
        for s in statements:
            self._write(s)
        self._write("CALL db.awaitIndexes(300)")
        self._schema_ready = True

    # -- snapshots --------------------------------------------------------------------------
    def _current(self) -> dict[str, Any] | None:
        rows = self._run("MATCH (m:RiskGraphMeta {key: $key}) "
                         "MATCH (s:RiskGraphSnapshot {id: m.current}) RETURN s {.*} AS s", key=META_KEY)
        return rows[0]["s"] if rows else None

    def _snapshot_node(self, snapshot_id: str | None) -> dict[str, Any] | None:
        """The current snapshot's node, or the named complete one's."""
        if snapshot_id is None:
            return self._current()
        snap = _snap_key(snapshot_id)
        if snap is None:
            return None
        rows = self._run("MATCH (s:RiskGraphSnapshot {id: $id}) WHERE s.status = 'complete' RETURN s {.*} AS s",
                         id=snap)
        return rows[0]["s"] if rows else None

    def snapshot(self, snapshot_id: str | None = None) -> SnapshotInfo | None:
        s = self._snapshot_node(snapshot_id)
        if s is None:
            return None
        return SnapshotInfo(s["content_hash"], datetime.fromisoformat(s["loaded_at"]), json.loads(s["row_counts"]),
                            str(s["id"]))

    def snapshot_ids(self) -> list[str]:
        rows = self._run("MATCH (s:RiskGraphSnapshot) WHERE s.status = 'complete' RETURN s.id AS id ORDER BY id")
        return [str(r["id"]) for r in rows]

    def stage(self, dataset: Dataset) -> SnapshotInfo:
        self.ensure_schema()
        self._delete_incomplete()
        snap = self._run(
            "MERGE (m:RiskGraphMeta {key: $key}) SET m.seq = coalesce(m.seq, 0) + 1 RETURN m.seq AS seq",
            key=META_KEY)[0]["seq"]
        info = SnapshotInfo(dataset.content_hash, datetime.now(timezone.utc), dataset.row_counts(), str(snap))
        schema = {name: [[c, str(df[c].dtype)] for c in df.columns] for name, df in dataset.tables.items()}
        self._write("CREATE (:RiskGraphSnapshot {id: $id, status: 'loading', content_hash: $hash, "
                    "loaded_at: $at, row_counts: $counts, tables: $schema, skipped: $skipped})",
                    id=snap, hash=info.content_hash, at=info.loaded_at.isoformat(),
                    counts=json.dumps(info.row_counts), schema=json.dumps(schema), skipped=dataset.skipped)
        try:
            self._ingest(snap, dataset)
            if not self._run("MATCH (s:RiskGraphSnapshot {id: $id}) SET s.status = 'complete' RETURN s.id AS id",
                             id=snap):
                raise StoreLoadFailed(f"snapshot {snap} was deleted while it was being written (another "
                                      "writer without the lease?); the previous snapshot stays current")
        except Neo4jError as exc:
            self._cleanup_quietly(snap)
            raise StoreLoadFailed(f"Neo4j rejected the load, the previous snapshot stays current: "
                                  f"{exc.message or exc}") from exc
        except StoreUnavailable as exc:
            self._cleanup_quietly(snap)
            raise StoreUnavailable(f"{exc} -- the load was interrupted; the previous snapshot stays current "
                                   "and the partial one is removed (now, or by the next load or retain)") from exc
        except BaseException:
            self._cleanup_quietly(snap)
            raise
        self._remember((snap, info.loaded_at.isoformat()), dataset)
        return info

    def commit(self, snapshot_id: str) -> None:
        self.ensure_schema()
        snap = _snap_key(snapshot_id)
        rows = [] if snap is None else self._run(
            "MATCH (s:RiskGraphSnapshot {id: $id}) WHERE s.status = 'complete' "
            "MERGE (m:RiskGraphMeta {key: $key}) SET m.current = s.id RETURN s.id AS id", key=META_KEY, id=snap)
        if not rows:
            raise NoSnapshot(f"cannot commit snapshot {snapshot_id!r}: Neo4j at {self.url} holds no complete "
                             "snapshot of that id (never staged, still being written, or deleted by retain)")

    def retain(self, keep: Collection[str]) -> None:
        if isinstance(keep, str):
            raise TypeError("retain() takes a collection of snapshot ids, not a single id")
        kept = [k for k in map(_snap_key, keep) if k is not None]
        rows = self._run("OPTIONAL MATCH (m:RiskGraphMeta {key: $key}) WITH m.current AS current "
                         "MATCH (s:RiskGraphSnapshot) WHERE coalesce(s.id <> current, true) AND NOT s.id IN $keep "
                         "RETURN s.id AS id ORDER BY id", key=META_KEY, keep=kept)
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
        try:
            self._delete_snapshot(snap)
        except (StoreUnavailable, Neo4jError):
            pass  # the server is gone; the next load (or retain) deletes the leftover (status 'loading')

    def _delete_incomplete(self) -> None:
        """Remove snapshots left half-written by crashed loads (status 'loading')."""
        rows = self._run("OPTIONAL MATCH (m:RiskGraphMeta {key: $key}) WITH m.current AS current "
                         "MATCH (s:RiskGraphSnapshot) WHERE coalesce(s.status <> 'complete', true) "
                         "AND coalesce(s.id <> current, true) RETURN s.id AS id", key=META_KEY)
        for r in rows:
            self._delete_snapshot(r["id"])

    def _delete_snapshot(self, snap: int) -> None:
        """DETACH DELETE the snapshot's nodes (with their relationships), entities first, in
        transactions of about DELETE_BATCH_SIZE relationships each."""
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] == snap]:
                del self._cache[key]
        rows = self._run("MATCH (s:RiskGraphSnapshot {id: $s}) RETURN s.row_counts AS counts", s=snap)
        per_tx = _delete_batches(json.loads(rows[0]["counts"]) if rows and rows[0]["counts"] else {})
        for label in list(LABELS.values()) + list(FACT_LABELS.values()):
            prop = "_id" if label in NODE_TYPE_OF_LABEL else "_row"
            self._autocommit(f"MATCH (n:{label}) WHERE n._snapshot = $s AND n.{prop} IS NOT NULL "
                             f"CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF {per_tx.get(label, DELETE_BATCH_SIZE)} "
                             "ROWS", s=snap)
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
            key=LEASE_KEY, token=token, holder=holder, ttl=self._lease_ttl_ms)[0]
        if not r["mine"]:
            raise StoreBusy(f"Neo4j at {self.url} is being written by {r['holder']} since {_when(r['since'])} "
                            f"(its lease runs until {_when(r['until'])} unless renewed); "
                            "try again once that run has finished")
        return Neo4jStoreLease(self, holder, token)

    @property
    def _lease_ttl_ms(self) -> int:
        return max(1, int(self.lease_ttl_s * 1000))

    # -- ingest ---------------------------------------------------------------------------------
    # Throughput notes (bench/bench_neo4j.py): packing values one by one is the driver's main cost
    # in pure Python (~4-5 us each), so most columns travel as ONE string per batch, joined with
    # SEP and split once per transaction on the server (see _Column). Relationships find their
    # end nodes by internal node id (NodeByIdSeek): the ids come back from the node CREATEs, so
    # no second lookup of the (_snapshot, _id) unique index per end node is needed.

    def _create(self, snap: int, head: str, columns: list[_Column], n: int, *, ids: bool = False,
                partition: np.ndarray | None = None) -> np.ndarray:
        """Run `head` (a clause using the columns' expressions) for rows 0..n-1 in batches; with
        `ids`, `head` binds node `n` and the internal ids of the created nodes come back in row order.

        Rows are written in order of `partition` (an end node per row: consecutive rows then touch
        the same nodes, which alone is ~25% faster) by self.sessions concurrent sessions, each
        taking a contiguous run of keys, so no key's node is written by two sessions."""
        order = None
        if partition is not None and n > 1:
            order = np.argsort(partition, kind="stable")
            columns = [c.take(order) for c in columns]
        chunks = _chunks(n, self.sessions, None if order is None else partition[order], self.batch_size)
        prelude = ", ".join(f"{c.prelude} AS {c.var}" for c in columns)
        cypher = (f"WITH {prelude} UNWIND range(0, $n - 1) AS i {head}"
                  + (" RETURN collect(i) AS rows, collect(id(n)) AS ids" if ids else ""))
        out = np.zeros(n if ids else 0, dtype=np.int64)

        def write(lo_chunk: int, hi_chunk: int) -> None:
            for lo in range(lo_chunk, hi_chunk, self.batch_size):
                if self._cancel.is_set():
                    raise _Cancelled()
                hi = min(hi_chunk, lo + self.batch_size)
                params = {c.var: c.batch(lo, hi) for c in columns}
                if ids:
                    created = self._run(cypher, n=hi - lo, s=snap, sep=SEP, null=NULL, **params)[0]
                    rows = lo + np.asarray(created["rows"], dtype=np.int64)
                    out[rows if order is None else order[rows]] = created["ids"]
                else:
                    self._write(cypher, n=hi - lo, s=snap, sep=SEP, null=NULL, **params)

        self._in_parallel([partial(write, lo, hi) for lo, hi in chunks])
        return out

    def _create_nodes(self, snap: int, label: str, columns: list[_Column], n: int) -> np.ndarray:
        _named(columns)
        props = ", ".join(f"{_q(c.name)}: {c.expr}" for c in columns)
        return self._create(snap, f"CREATE (n:{label} {{_snapshot: $s, {props}}})", columns, n, ids=True)

    def _create_rels(self, snap: int, rel: str, src: np.ndarray, dst: np.ndarray, columns: list[_Column]) -> None:
        """One relationship per row with both ends present (internal ids; -1 for a missing end, whose
        row makes none, as a MATCH on a missing node would); `columns` hold every row, _row included,
        or are empty for a derived relationship (no properties at all)."""
        keep = np.flatnonzero((src >= 0) & (dst >= 0))
        if len(keep) < len(src):
            columns = [c.take(keep) for c in columns]
            src, dst = src[keep], dst[keep]
        ends = [_Column.ints("_a", src), _Column.ints("_b", dst)]
        _named(ends + columns)
        props = "".join(f", {_q(c.name)}: {c.expr}" for c in columns)
        a, b = ends[0].expr, ends[1].expr
        body = f" {{_snapshot: $s{props}}}" if columns else ""
        self._create(snap, f"MATCH (x) WHERE id(x) = {a} MATCH (y) WHERE id(y) = {b} "
                           f"CREATE (x)-[:{rel}{body}]->(y)", ends + columns, len(src),
                     partition=_partition_key(src, dst))

    def _in_parallel(self, work: list[Callable[[], None]]) -> None:
        """Run the callables on one thread each (one session each: the server spreads concurrent
        transactions over its cores). The first failure stops the others at their next batch and
        is raised once every one has returned."""
        if len(work) <= 1:
            for w in work:
                w()
            return
        self._cancel.clear()
        with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="neo4j-ingest") as pool:
            futures = [pool.submit(w) for w in work]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:  # a failure (or an interrupt) ends the others at their next batch
                if not all(f.done() and f.exception() is None for f in futures):
                    self._cancel.set()
                wait(futures)
        self._cancel.clear()
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])

    def _ingest(self, snap: int, dataset: Dataset) -> None:
        """Nodes, then relationships (by the internal ids of their end nodes), then fact nodes.

        Each job is split into a client-side part (building its columns) and the writes: the next
        job's columns are built while the current job writes, so the server is not left idle."""
        tables = dataset.tables
        node_ids: dict[str, tuple[pd.Index, np.ndarray]] = {}  # node type -> (_id values, internal ids)
        Write = Callable[[], None]

        def ends(etype: str, values: pd.Series) -> np.ndarray:
            """Internal node id of each value's node, -1 where there is none."""
            if etype not in node_ids:
                return np.full(len(values), -1, dtype=np.int64)
            index, internal = node_ids[etype]
            pos = index.get_indexer(values)
            return np.where(pos >= 0, internal[np.maximum(pos, 0)] if len(internal) else -1, -1)

        def stored_ends(table: str, df: pd.DataFrame, st: str, sc: str, tt: str, tc: str) -> tuple[np.ndarray, np.ndarray]:
            """End nodes of rows whose end ids are kept only as those nodes (see END_COLUMNS): every
            row needs both, or it would be lost (a validated dataset always has them)."""
            src, dst = ends(st, df[sc]), ends(tt, df[tc])
            missing = np.flatnonzero((src < 0) | (dst < 0))
            if len(missing):
                i = int(missing[0])
                col, value = (sc, df[sc].iloc[i]) if src[i] < 0 else (tc, df[tc].iloc[i])
                raise StoreLoadFailed(f"{table}: {col} {value!r} names no loaded entity ({len(missing)} such "
                                      "rows); the load is undone and the previous snapshot stays current")
            return src, dst

        # 1. nodes: entities, and the shared identifiers (their values come from persons/employers)
        def entity_nodes(etype: str) -> Write:
            df = tables[ENTITY_TABLE[etype]]
            columns = _table_columns(df) + [_Column.of("_id", df[ID_COLUMN[etype]])]

            def write() -> None:
                created = self._create_nodes(snap, LABELS[etype], columns, len(df))
                node_ids[etype] = (pd.Index(df[ID_COLUMN[etype]]), created)
            return write

        holders = [(et, tables[ENTITY_TABLE[et]]) for et in ("person", "employer") if ENTITY_TABLE[et] in tables]
        identifier_values: dict[str, np.ndarray] = {}  # sorted distinct values, as str
        for ident in IDENTIFIER_TYPES:
            present = [df[ident].dropna() for _, df in holders if ident in df.columns]
            values = np.sort(pd.concat(present).unique().astype(object)) if present else np.array([], dtype=object)
            if len(values):
                identifier_values[ident] = values.astype(str).astype(object)

        def identifier_nodes(ident: str) -> Write:
            vals = identifier_values[ident]
            columns = [_Column.of("_id", pd.Series(vals, dtype=object))]

            def write() -> None:
                node_ids[ident] = (pd.Index(vals, dtype=object), self._create_nodes(snap, LABELS[ident], columns, len(vals)))
            return write

        # 2. relationships; their end ids are looked up at write time, once the nodes exist
        def event_rels(table: str) -> Write:
            rel, st, sc, tt, tc = EVENT_TABLES[table]
            df = tables[table]
            columns = _table_columns(df, without=(sc, tc))
            return lambda: self._create_rels(snap, rel, *stored_ends(table, df, st, sc, tt, tc), columns)

        def derived_rels(table: str, rel: str, st: str, sc: str, tt: str, tc: str) -> Write:
            df = tables[table]
            part = df[df[sc].notna() & df[tc].notna()]
            return lambda: self._create_rels(snap, rel, ends(st, part[sc]), ends(tt, part[tc]), [])

        def linked_rels(etype: str) -> Write:
            df = tables["agency_links"]
            idx = np.flatnonzero((df["entity_type"] == etype).to_numpy())
            part = df.iloc[idx]
            agency_col, entity_col = END_COLUMNS["agency_links"]
            columns = _table_columns(part, without=(agency_col, entity_col))
            columns[-1] = _Column.ints("_row", idx)  # rows of the whole table
            return lambda: self._create_rels(
                snap, "LINKED", *stored_ends("agency_links", part, "agency", agency_col, etype, entity_col), columns)

        def identifier_rels(ident: str) -> Write:
            parts = [(et, df[df[ident].notna()]) for et, df in holders if ident in df.columns]

            def write() -> None:
                for et, part in parts:
                    self._create_rels(snap, IDENTIFIER_RELS[ident], ends(et, part[ID_COLUMN[et]]),
                                      ends(ident, part[ident].astype(str)), [])
            return write

        # 3. the unconnected fact nodes
        def fact_nodes(table: str, label: str) -> Write:
            columns = _named(_table_columns(tables[table]))
            props = ", ".join(f"{_q(c.name)}: {c.expr}" for c in columns)
            return lambda: self._create(snap, f"CREATE (:{label} {{_snapshot: $s, {props}}})", columns,
                                        len(tables[table]))

        jobs: list[Callable[[], Write]] = []
        jobs += [partial(entity_nodes, t) for t in ENTITY_TYPES if ENTITY_TABLE[t] in tables]
        jobs += [partial(identifier_nodes, ident) for ident in identifier_values]
        jobs += [partial(event_rels, table) for table in EVENT_TABLES if table in tables]
        jobs += [partial(derived_rels, table, *spec) for table, *spec in DERIVED_RELS if table in tables]
        if "agency_links" in tables:
            jobs += [partial(linked_rels, etype) for etype in AGENCY_LINK_TYPES]
        jobs += [partial(identifier_rels, ident) for ident in identifier_values]
        jobs += [partial(fact_nodes, table, label) for table, label in FACT_LABELS.items() if table in tables]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neo4j-prepare") as prepare:
            upcoming = prepare.submit(jobs[0]) if jobs else None
            for k in range(len(jobs)):
                write = upcoming.result()
                upcoming = prepare.submit(jobs[k + 1]) if k + 1 < len(jobs) else None
                write()

    # -- reading the snapshot back ------------------------------------------------------------------
    def _require_current(self) -> dict[str, Any]:
        s = self._current()
        if s is None:
            raise NoSnapshot(f"no dataset loaded in Neo4j at {self.url}; run `riskgraph pipeline --data DIR` first")
        return s

    def dataset(self, snapshot_id: str | None = None) -> Dataset:
        if snapshot_id is None:
            s = self._require_current()
        elif (s := self._snapshot_node(snapshot_id)) is None:
            raise NoSnapshot(f"Neo4j at {self.url} holds no complete snapshot {snapshot_id!r} "
                             "(never staged, still being written, or deleted by retain)")
        key = (s["id"], s["loaded_at"])
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        schema: dict[str, list[list[str]]] = json.loads(s["tables"])
        counts: dict[str, int] = json.loads(s["row_counts"])
        tables = {name: self._read_table(s["id"], name, cols, counts)
                  for name, cols in schema.items()}
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

    def _read_table(self, snap: int, name: str, cols: list[list[str]], counts: dict[str, int]) -> pd.DataFrame:
        """One table of the snapshot. Each page comes back as ONE record holding a list per row
        (not a record per row: decoding those was most of the read time)."""
        etype = next((t for t in ENTITY_TYPES if ENTITY_TABLE[t] == name), None)
        source_of = dict(zip(END_COLUMNS.get(name, ()), ("a._id", "b._id")))

        def value(c: str, dtype: str) -> str:
            v = source_of.get(c) or f"x.{_q(c)}"
            return f"toString({v})" if dtype.startswith("datetime64") else v
        names = ["_key"] + [c for c, _ in cols]

        def row(key: str) -> str:
            return "collect([" + ", ".join([key] + [value(c, dtype) for c, dtype in cols]) + "]) AS rows"
        pages: list[list[list[Any]]] = []
        if etype is not None:
            label = LABELS[etype]
            for ids in self._id_pages(snap, label, READ_BATCH_SIZE):
                pages.append(self._run(f"UNWIND $ids AS id MATCH (x:{label} {{_snapshot: $s, _id: id}}) "
                                       f"RETURN {row('x._id')}", s=snap, ids=ids)[0]["rows"])
        elif name in FACT_LABELS:
            for lo in range(0, counts.get(name, 0), READ_BATCH_SIZE):
                pages.append(self._run(f"MATCH (x:{FACT_LABELS[name]}) WHERE x._snapshot = $s AND x._row >= $lo "
                                       f"AND x._row < $hi RETURN {row('x._row')}",
                                       s=snap, lo=lo, hi=lo + READ_BATCH_SIZE)[0]["rows"])
        else:
            pages = self._read_relationships(snap, name, row("x._row"), counts)
        raw = pd.DataFrame([r for page in pages for r in page], columns=names)
        # the loaded table's order: an entity table's key (like graph/dataset.py), else its rows
        order = ID_COLUMN[etype] if etype is not None else "_key"
        raw = raw.sort_values(order, kind="mergesort").reset_index(drop=True)
        out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
        for c, dtype in cols:
            values = raw[c]
            if dtype.startswith("datetime64"):
                out[c] = pd.to_datetime(values, format="%Y-%m-%d").astype(dtype)
            elif dtype == "str":
                out[c] = pd.Series(values.to_numpy(dtype=object), dtype="str")
            else:
                out[c] = pd.Series(values.to_numpy(dtype=object)).astype(dtype)
        return out

    def _read_relationships(self, snap: int, name: str, rows: str, counts: dict[str, int]) -> list[list[list[Any]]]:
        """A relationship table's pages of rows (start node `a`, relationship `x`, end node `b`), by
        pages of the nodes of one end (relationships have no index: it would cost every write ~10%)."""
        if name == "agency_links":
            rel, side, etype = "LINKED", "a", "agency"
        else:
            rel, st, _, tt, _ = EVENT_TABLES[name]
            nodes_of = {t: counts.get(ENTITY_TABLE[t], 0) for t in (st, tt)}
            side, etype = ("a", st) if nodes_of[st] >= nodes_of[tt] else ("b", tt)
        label = LABELS[etype]
        # about READ_BATCH_SIZE rows a page: nodes per page = rows per page / mean rows per node
        per_page = max(1, READ_BATCH_SIZE * counts.get(ENTITY_TABLE[etype], 0) // max(1, counts.get(name, 0)))
        return [self._run(f"UNWIND $ids AS id MATCH ({side}:{label} {{_snapshot: $s, _id: id}}) "
                          f"MATCH (a)-[x:{rel}]->(b) RETURN {rows}", s=snap, ids=ids)[0]["rows"]
                for ids in self._id_pages(snap, label, per_page)]

    def _id_pages(self, snap: int, label: str, size: int) -> Iterator[list[Any]]:
        """The `_id`s of the snapshot's `label` nodes, ascending, `size` a page (keyset pagination
        on the unique (_snapshot, _id) index)."""
        after = ""
        while True:
            ids = self._run(f"MATCH (n:{label}) WHERE n._snapshot = $s AND n._id > $after "
                            f"WITH n._id AS id ORDER BY id LIMIT {size} RETURN collect(id) AS ids",
                            s=snap, after=after)[0]["ids"]
            if not ids:
                return
            yield ids
            after = ids[-1]

    # -- graph reads --------------------------------------------------------------------------
    def entity(self, ref: EntityRef) -> dict[str, Any] | None:
        if ref.type not in LABELS:
            return None
        s = self._require_current()
        rows = self._run(f"MATCH (n:{LABELS[ref.type]} {{_snapshot: $s, _id: $id}}) RETURN n {{.*}} AS p",
                         s=s["id"], id=ref.id)
        if not rows:
            return None
        return _attributes(ref.type, rows[0]["p"], self._column_order(s))

    def _column_order(self, s: dict[str, Any]) -> dict[str, list[str]]:
        schema = json.loads(s["tables"])
        return {t: [c for c, _ in schema.get(ENTITY_TABLE[t], [])] for t in ENTITY_TYPES}

    def _node_ids(self, snap: int, refs: list[EntityRef]) -> dict[str, EntityRef]:
        """elementId -> ref for the refs that exist in the snapshot."""
        found: dict[str, EntityRef] = {}
        by_type: dict[str, list[str]] = {}
        for r in refs:
            if r.type in LABELS:
                by_type.setdefault(r.type, []).append(r.id)
        for t, ids in by_type.items():
            for row in self._run(f"UNWIND $ids AS id MATCH (n:{LABELS[t]} {{_snapshot: $s, _id: id}}) "
                                 "RETURN elementId(n) AS e, n._id AS id", ids=ids, s=snap):
                found[row["e"]] = EntityRef(t, row["id"])
        return found

    def neighbours(self, ref: EntityRef, *, hops: int = 1, limit: int = 200,
                   rel_types: tuple[str, ...] | None = None) -> Subgraph:
        s = self._require_current()
        start = self._node_ids(s["id"], [ref])
        if not start:
            return Subgraph()
        types = list(rel_types) if rel_types else None
        seen: dict[str, EntityRef] = dict(start)
        frontier = list(start)
        truncated = False
        rank = ("CASE head(labels(b)) " + " ".join(f"WHEN '{lab}' THEN {TYPE_RANK[t]}" for t, lab in LABELS.items())
                + " END")
        for _ in range(hops):
            if not frontier:
                break
            room = limit - len(seen)
            rows = self._run(
                "UNWIND $frontier AS e MATCH (a) WHERE elementId(a) = e "
                "MATCH (a)-[r]-(b) WHERE ($types IS NULL OR type(r) IN $types) "
                "WITH DISTINCT b WHERE NOT elementId(b) IN $seen "
                f"RETURN elementId(b) AS e, head(labels(b)) AS label, b._id AS id, {rank} AS rank "
                "ORDER BY rank, id LIMIT $room",
                frontier=frontier, types=types, seen=list(seen), room=max(room, 0) + 1)
            if len(rows) > room:
                rows, truncated = rows[:max(room, 0)], True
            frontier = [r["e"] for r in rows]
            seen.update({r["e"]: EntityRef(NODE_TYPE_OF_LABEL[r["label"]], r["id"]) for r in rows})
            if truncated:
                break
        return self._subgraph_of(s, seen, types, truncated)

    def shortest_path(self, source: EntityRef, target: EntityRef, *, max_hops: int = 6) -> Subgraph | None:
        s = self._require_current()
        ids = self._node_ids(s["id"], [source, target])
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
            "RETURN [n IN nodes(p) | [elementId(n), head(labels(n)), n._id]] AS nodes", a=a, b=b)
        if not rows:
            return None
        path = [(e, EntityRef(NODE_TYPE_OF_LABEL[lab], i)) for e, lab, i in rows[0]["nodes"]]
        sub = self._subgraph_of(s, dict(path), None, False)
        chosen: dict[frozenset, Edge] = {}
        for e in sub.edges:  # one edge per hop: the first relationship type in REL_TYPES order
            key = frozenset((e.source, e.target))
            if key not in chosen or REL_RANK[e.type] < REL_RANK[chosen[key].type]:
                chosen[key] = e
        sub.edges = [chosen[frozenset((path[i][1], path[i + 1][1]))] for i in range(len(path) - 1)]
        return sub

    def subgraph(self, refs: list[EntityRef]) -> Subgraph:
        s = self._require_current()
        return self._subgraph_of(s, self._node_ids(s["id"], refs), None, False)

    def _subgraph_of(self, s: dict[str, Any], nodes: dict[str, EntityRef], types: list[str] | None,
                     truncated: bool) -> Subgraph:
        eids = list(nodes)
        order = self._column_order(s)
        props = {r["e"]: r["p"] for r in self._run(
            "UNWIND $eids AS e MATCH (n) WHERE elementId(n) = e RETURN e, n {.*} AS p", eids=eids)}
        rels = self._run(
            "UNWIND $eids AS e MATCH (a) WHERE elementId(a) = e "
            "MATCH (a)-[r]->(b) WHERE elementId(b) IN $eids AND ($types IS NULL OR type(r) IN $types) "
            "RETURN elementId(a) AS a, elementId(b) AS b, type(r) AS t, count(r) AS n",
            eids=eids, types=types)
        ranked = sorted(nodes.items(), key=lambda kv: (TYPE_RANK[kv[1].type], kv[1].id))
        sub = Subgraph(truncated=truncated)
        for e, ref in ranked:
            sub.nodes[ref] = _attributes(ref.type, props.get(e, {}), order)
        index = {e: i for i, (e, _) in enumerate(ranked)}
        rels.sort(key=lambda r: (index[r["a"]], index[r["b"]], REL_RANK.get(r["t"], len(REL_RANK))))
        sub.edges = [Edge(nodes[r["a"]], nodes[r["b"]], r["t"], int(r["n"])) for r in rels]
        return sub


class Neo4jStoreLease(StoreLease):
    """The write lease as held by one run (a random token tells it from any other holder)."""

    def __init__(self, store: Neo4jGraphStore, holder: str, token: str) -> None:
        self.store = store
        self.holder = holder
        self._token = token

    def renew(self) -> None:
        """Push the expiry lease_ttl_s ahead; StoreBusy when the lease was lost (expired and taken
        over, or removed): this run must not write any more."""
        renewed = self.store._run(
            "MATCH (l:RiskGraphLease {key: $key}) WHERE l.token = $token "
            "SET l.expires_at = datetime() + duration({milliseconds: $ttl}) RETURN l.key AS key",
            key=LEASE_KEY, token=self._token, ttl=self.store._lease_ttl_ms)
        if renewed:
            return
        now = self.store._run("MATCH (l:RiskGraphLease {key: $key}) RETURN l.holder AS holder, "
                              "l.acquired_at AS since", key=LEASE_KEY)
        by = f"; {now[0]['holder']} holds it since {_when(now[0]['since'])}" if now else ""
        raise StoreBusy(f"{self.holder} lost the write lease of Neo4j at {self.store.url} "
                        f"(it expired and was taken over, or was removed){by}")

    def release(self) -> None:
        """Remove the lease if this run still holds it (an unreachable server lets it expire)."""
        try:
            self.store._write("MATCH (l:RiskGraphLease {key: $key}) WHERE l.token = $token DELETE l",
                              key=LEASE_KEY, token=self._token)
        except StoreUnavailable as exc:
            log.warning("could not release the write lease of %s (it expires by itself): %s", self.store.url, exc)


def _delete_batches(counts: dict[str, int]) -> dict[str, int]:
    """Nodes per delete transaction for each entity label: DELETE_BATCH_SIZE relationships over the
    most relationships its nodes can have on average (from the table row counts). Identifier and
    fact nodes have none left once the entities are gone."""
    touching = {t: 0 for t in ENTITY_TYPES}
    ends = [(table, st, tt) for table, (_, st, _, tt, _) in EVENT_TABLES.items()]
    ends += [(table, st, tt) for table, _, st, _, tt, _ in DERIVED_RELS]
    ends += [("agency_links", "agency", t) for t in AGENCY_LINK_TYPES]
    for table, st, tt in ends:
        touching[st] += counts.get(table, 0)
        touching[tt] += counts.get(table, 0)
    for holder in ("person", "employer"):
        touching[holder] += len(IDENTIFIER_TYPES) * counts.get(ENTITY_TABLE[holder], 0)
    return {LABELS[t]: max(1, min(DELETE_BATCH_SIZE, DELETE_BATCH_SIZE * counts.get(ENTITY_TABLE[t], 0)
                                  // max(1, touching[t]))) for t in ENTITY_TYPES}


# -- conversions ---------------------------------------------------------------------------------

def _partition_key(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The end (source or target node of each row) to split a relationship ingest by.

    Sessions holding disjoint runs of the key never touch the same key node; nodes of the other end
    may be shared. That costs nothing for dense nodes (concurrent inserts) nor for nodes in one row
    only, but a node in 2..DENSE_NODE_DEGREE-1 rows is locked by both sessions: pick the end whose
    other end has fewer such rows (persons for visits; the phone for HAS_PHONE)."""
    def shared(other: np.ndarray) -> int:
        if len(other) == 0:
            return 0
        _, inverse, counts = np.unique(other, return_inverse=True, return_counts=True)
        c = counts[inverse]
        return int(((c >= 2) & (c < DENSE_NODE_DEGREE)).sum())
    return src if shared(dst) <= shared(src) else dst


def _chunks(n: int, parts: int, keys: np.ndarray | None, batch: int) -> list[tuple[int, int]]:
    """Split rows 0..n-1 into up to `parts` contiguous runs of about equal size, each cut moved
    back to the start of its `keys` run (sorted) so that a key never spans two runs. Fewer rows
    than two batches stay in one run."""
    if parts <= 1 or n < 2 * batch:
        return [(0, n)] if n else []
    cuts = {0, n}
    for k in range(1, parts):
        cut = k * n // parts
        cuts.add(int(np.searchsorted(keys, keys[cut], side="left")) if keys is not None else cut)
    ordered = sorted(cuts)
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b > a]


def _values(s: pd.Series) -> list[Any]:
    """A column as Bolt-ready Python values: None for missing, datetime.date for dates."""
    if pd.api.types.is_datetime64_any_dtype(s):
        arr = np.array(s.dt.date.to_numpy(dtype=object), dtype=object, copy=True)
        arr[s.isna().to_numpy()] = None
        return arr.tolist()
    if pd.api.types.is_integer_dtype(s):
        return s.astype("int64").tolist()
    arr = np.array(s.to_numpy(dtype=object), dtype=object, copy=True)
    arr[s.isna().to_numpy()] = None
    return arr.tolist()


def _named(columns: list[_Column]) -> list[_Column]:
    """Give the columns of one query their variables c0, c1, ... (same text each load: plan cache)."""
    for j, c in enumerate(columns):
        c.var = f"c{j}"
    return columns


def _table_columns(df: pd.DataFrame, without: tuple[str, ...] = ()) -> list[_Column]:
    """Every column of `df` (but `without`) then `_row` (0..len-1), ready for _create."""
    out = [_Column.of(c, df[c]) for c in df.columns if c not in without]
    out.append(_Column.ints("_row", np.arange(len(df))))
    return out


class _Column:
    """One property column of an ingest, sent per batch in its cheapest exact form:
    - "str": text values joined with SEP into one string (a missing value is NULL);
    - "float" / "int": the shortest exact text of each value joined with SEP ('' when missing),
      read back with toFloat / toInteger (it round-trips a double exactly, and so does Java's parser);
    - "date": YYYY-MM-DD joined with SEP ('' when missing), stored as a native date();
    - "list": anything else (or text containing SEP/NULL), as a plain Bolt list.
    The server splits each joined string once per batch (`prelude`); `expr` is row i's value.
    `items` is an object array of Python values, built without per-value Python code."""

    def __init__(self, name: str, kind: str, items: np.ndarray, has_null: bool) -> None:
        self.name, self.kind, self.items, self.has_null = name, kind, items, has_null
        self.var = ""  # its parameter and variable in the query, set by _named()

    @classmethod
    def of(cls, name: str, s: pd.Series) -> _Column:
        missing = s.isna().to_numpy()
        has_null = bool(missing.any())
        if pd.api.types.is_datetime64_any_dtype(s) and getattr(s.dt, "tz", None) is None:
            text = s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(str).astype(object)
            text[missing] = ""
            return cls(name, "date", text, has_null)
        if pd.api.types.is_integer_dtype(s) and not has_null:
            return cls.ints(name, s.to_numpy(dtype=np.int64))
        if pd.api.types.is_float_dtype(s):
            arr = s.to_numpy(dtype="float64", na_value=np.nan)
            if not np.isinf(arr).any():
                text = _as_text(arr)   # the shortest text that parses back to the same double
                text[missing] = ""
                return cls(name, "float", text, has_null)
        values = np.asarray(_values(s), dtype=object)
        if pd.api.types.is_string_dtype(s):
            if _plain_text(values[~missing]):
                out = values.copy()
                out[missing] = NULL
                return cls(name, "str", out, has_null)
        return cls(name, "list", values, has_null)

    @classmethod
    def ints(cls, name: str, values: np.ndarray) -> _Column:
        return cls(name, "int", _as_text(np.asarray(values, dtype=np.int64)), False)

    def take(self, rows: np.ndarray) -> _Column:
        out = _Column(self.name, self.kind, self.items[np.asarray(rows, dtype=np.int64)], self.has_null)
        out.var = self.var
        return out

    def batch(self, lo: int, hi: int) -> Any:
        return self.items[lo:hi].tolist() if self.kind == "list" else SEP.join(self.items[lo:hi])

    @property
    def prelude(self) -> str:
        return f"${self.var}" if self.kind == "list" else f"split(${self.var}, $sep)"

    @property
    def expr(self) -> str:
        v = f"{self.var}[i]"
        if self.kind == "str":
            return f"CASE {v} WHEN $null THEN null ELSE {v} END" if self.has_null else v
        if self.kind == "float":
            return f"toFloat({v})"
        if self.kind == "int":
            return f"toInteger({v})"
        if self.kind == "date":
            return f"CASE {v} WHEN '' THEN null ELSE date({v}) END" if self.has_null else f"date({v})"
        return v


def _as_text(values: np.ndarray) -> np.ndarray:
    """Numbers as an object array of str (Arrow's cast: shortest round-trip text, ~4x numpy's)."""
    return pa.array(values).cast(pa.string()).to_numpy(zero_copy_only=False)


def _plain_text(values: np.ndarray) -> bool:
    """All values are str and none holds SEP or NULL (checked on one joined string, at C speed)."""
    try:
        joined = "".join(values)
    except TypeError:   # a value that is not text
        return False
    return SEP not in joined and NULL not in joined


def _attributes(node_type: str, props: dict[str, Any], order: dict[str, list[str]]) -> dict[str, Any]:
    """Node attributes as the memory store gives them: table column order, dates as YYYY-MM-DD,
    missing values absent; identifier nodes give {"id": value}."""
    if node_type not in ENTITY_TYPES:
        return {"id": props.get("_id")} if props else {}
    out: dict[str, Any] = {}
    for c in order.get(node_type, []):
        v = props.get(c)
        if v is None:
            continue
        if hasattr(v, "iso_format"):
            v = v.iso_format()
        out[c] = v
    return out
