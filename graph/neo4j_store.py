"""The Neo4j backend: the graph model of graph/store.py in a Neo4j 5.x database, over Bolt.

Layout. Every node and relationship carries `_snapshot` (the load it belongs to) and `_row`
(its row in the source table, so tables read back in their exact order):
- entity nodes :Person :Employer :Clinic :Pharmacy :Agency and identifier nodes :Phone
  :Address :BankAccount, keyed by `_id` (unique per snapshot); entity nodes hold their table's
  columns (missing values are simply absent properties; dates are native Neo4j dates);
- one relationship per event row (EMPLOYED_BY, CONTRIBUTED, VISITED, PURCHASED, LINKED) with all
  the row's columns; derived ones as in graph/projection.py (PLACED_BY, PRESCRIBED_AT,
  HAS_PHONE, HAS_ADDRESS, HAS_BANK_ACCOUNT);
- benefits and labels are unconnected fact nodes :Benefit and :RiskLabel (never traversed).
A load writes a new snapshot id, then flips the single (:RiskGraphMeta).current pointer in one
transaction and deletes the old snapshot; a failed load deletes its partial snapshot, and any
leftover of a crashed load is removed by the next one. Column order and dtypes of every table
are kept in the (:RiskGraphSnapshot) node, so `dataset()` rebuilds identical frames.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from neo4j import Driver, GraphDatabase
from neo4j.exceptions import (
    AuthError, ConfigurationError, DriverError, Neo4jError, TransientError,
)

from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN, IDENTIFIER_TYPES
from graph.dataset import Dataset
from graph.projection import NODE_TYPES, REL_TYPES
from graph.store import Edge, EntityRef, GraphStore, SnapshotInfo, Subgraph
from riskgraph.errors import NoSnapshot, StoreLoadFailed, StoreUnavailable

log = logging.getLogger(__name__)

# Rows per UNWIND transaction; measured with bench/bench_neo4j.py --batch-sizes (see its docstring).
DEFAULT_BATCH_SIZE = 10_000
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
# derived relationships (no table of their own): (table, rel, source type/col, target type/col)
DERIVED_RELS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("employment", "PLACED_BY", "person", "person_id", "agency", "agency_id"),
    ("purchases", "PRESCRIBED_AT", "pharmacy", "pharmacy_id", "clinic", "clinic_id"),
)
META_KEY = "riskgraph"
TYPE_RANK = {t: i for i, t in enumerate(NODE_TYPES)}
REL_RANK = {r: i for i, r in enumerate(REL_TYPES)}
INTERNAL = ("_snapshot", "_id", "_row")


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


class Neo4jGraphStore(GraphStore):
    """A graph store in a Neo4j 5.x database (Community or Enterprise, or Aura)."""

    def __init__(self, url: str, *, user: str | None = None, password: str | None = None,
                 database: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.url = url
        self.database = database or None
        self.batch_size = int(batch_size)
        auth = (user or "neo4j", password) if password else None
        try:
            self._driver: Driver = GraphDatabase.driver(url, auth=auth, connection_timeout=CONNECTION_TIMEOUT_S,
                                                     notifications_min_severity="OFF",
                                                     max_transaction_retry_time=RETRY_TIME_S)
        except (ConfigurationError, ValueError) as exc:
            raise StoreUnavailable(f"cannot use Neo4j URL {url!r}: {exc}") from exc
        self._schema_ready = False
        self._cache: tuple[str, Dataset] | None = None

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
        ]
        for label in LABELS.values():
            statements.append(f"CREATE CONSTRAINT rg_{label.lower()}_key IF NOT EXISTS "
                              f"FOR (n:{label}) REQUIRE (n._snapshot, n._id) IS UNIQUE")
        for label in FACT_LABELS.values():
            statements.append(f"CREATE INDEX rg_{label.lower()}_row IF NOT EXISTS "
                              f"FOR (n:{label}) ON (n._snapshot, n._row)")
        for rel in REL_TYPES:
            statements.append(f"CREATE INDEX rg_rel_{rel.lower()}_row IF NOT EXISTS "
                              f"FOR ()-[r:{rel}]-() ON (r._snapshot, r._row)")
        for s in statements:
            self._write(s)
        self._write("CALL db.awaitIndexes(300)")
        self._schema_ready = True

    # -- snapshots --------------------------------------------------------------------------
    def _current(self) -> dict[str, Any] | None:
        rows = self._run("MATCH (m:RiskGraphMeta {key: $key}) "
                         "MATCH (s:RiskGraphSnapshot {id: m.current}) RETURN s {.*} AS s", key=META_KEY)
        return rows[0]["s"] if rows else None

    def snapshot(self) -> SnapshotInfo | None:
        s = self._current()
        if s is None:
            return None
        return SnapshotInfo(s["content_hash"], datetime.fromisoformat(s["loaded_at"]), json.loads(s["row_counts"]))

    def load(self, dataset: Dataset) -> SnapshotInfo:
        self.ensure_schema()
        self._delete_stale()
        snap = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        info = SnapshotInfo(dataset.content_hash, datetime.now(timezone.utc), dataset.row_counts())
        schema = {name: [[c, str(df[c].dtype)] for c in df.columns] for name, df in dataset.tables.items()}
        self._write("CREATE (:RiskGraphSnapshot {id: $id, status: 'loading', content_hash: $hash, "
                    "loaded_at: $at, row_counts: $counts, tables: $schema, skipped: $skipped})",
                    id=snap, hash=info.content_hash, at=info.loaded_at.isoformat(),
                    counts=json.dumps(info.row_counts), schema=json.dumps(schema), skipped=dataset.skipped)
        try:
            self._ingest(snap, dataset)
            previous = self._run(
                "MERGE (m:RiskGraphMeta {key: $key}) WITH m, m.current AS old "
                "MATCH (s:RiskGraphSnapshot {id: $id}) SET s.status = 'complete', m.current = $id "
                "RETURN old", key=META_KEY, id=snap)
        except Neo4jError as exc:
            self._cleanup_quietly(snap)
            raise StoreLoadFailed(f"Neo4j rejected the load, the previous snapshot stays current: "
                                  f"{exc.message or exc}") from exc
        except StoreUnavailable as exc:
            self._cleanup_quietly(snap)
            raise StoreUnavailable(f"{exc} -- the load was interrupted; the previous snapshot stays current "
                                   "and the partial one is removed (now or by the next load)") from exc
        except BaseException:
            self._cleanup_quietly(snap)
            raise
        old = previous[0]["old"] if previous else None
        if old and old != snap:
            try:
                self._delete_snapshot(old)
            except StoreUnavailable as exc:  # the new snapshot is in force; the next load retries
                log.warning("could not delete the previous snapshot %s yet: %s", old, exc)
        self._cache = (snap, dataset)
        return info

    def clear(self) -> None:
        """Delete every snapshot (the store becomes empty)."""
        self.ensure_schema()
        for r in self._run("MATCH (s:RiskGraphSnapshot) RETURN s.id AS id"):
            self._delete_snapshot(r["id"])
        self._write("MATCH (m:RiskGraphMeta {key: $key}) DELETE m", key=META_KEY)
        self._cache = None

    def _cleanup_quietly(self, snap: str) -> None:
        try:
            self._delete_snapshot(snap)
        except (StoreUnavailable, Neo4jError):
            pass  # the server is gone; the next load deletes the leftover (status 'loading')

    def _delete_stale(self) -> None:
        """Remove snapshots left behind by crashed loads (anything but the current one)."""
        rows = self._run("OPTIONAL MATCH (m:RiskGraphMeta {key: $key}) WITH m "
                         "MATCH (s:RiskGraphSnapshot) WHERE m IS NULL OR s.id <> m.current RETURN s.id AS id",
                         key=META_KEY)
        for r in rows:
            self._delete_snapshot(r["id"])

    def _delete_snapshot(self, snap: str) -> None:
        for rel in REL_TYPES:
            self._autocommit(f"MATCH ()-[r:{rel}]->() WHERE r._snapshot = $s AND r._row IS NOT NULL "
                        f"CALL (r) {{ DELETE r }} IN TRANSACTIONS OF {DELETE_BATCH_SIZE} ROWS", s=snap)
        for label in list(LABELS.values()) + list(FACT_LABELS.values()):
            prop = "_id" if label in NODE_TYPE_OF_LABEL else "_row"
            self._autocommit(f"MATCH (n:{label}) WHERE n._snapshot = $s AND n.{prop} IS NOT NULL "
                        f"CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF {DELETE_BATCH_SIZE} ROWS", s=snap)
        self._write("MATCH (s:RiskGraphSnapshot {id: $s}) DELETE s", s=snap)

    # -- ingest ---------------------------------------------------------------------------------
    def _batches(self, columns: dict[str, list[Any]], n: int) -> Iterator[dict[str, list[Any]]]:
        for lo in range(0, n, self.batch_size):
            yield {k: v[lo:lo + self.batch_size] for k, v in columns.items()}

    def _unwind(self, snap: str, body: str, columns: dict[str, list[Any]], n: int) -> None:
        """Run `body` for each row i of the columnar batch ($c.<col>[i] is row i's value)."""
        cypher = f"UNWIND range(0, size($c._row) - 1) AS i {body}"
        for batch in self._batches(columns, n):
            self._write(cypher, c=batch, s=snap)

    def _ingest(self, snap: str, dataset: Dataset) -> None:
        for etype in ENTITY_TYPES:
            table = ENTITY_TABLE[etype]
            if table not in dataset.tables:
                continue
            df = dataset.tables[table]
            cols = _columns(df)
            cols["_id"] = cols[ID_COLUMN[etype]]
            props = ", ".join(f"{_q(c)}: $c.{_q(c)}[i]" for c in cols)
            self._unwind(snap, f"CREATE (:{LABELS[etype]} {{_snapshot: $s, {props}}})", cols, len(df))
        self._ingest_identifiers(snap, dataset)
        for table, (rel, st, sc, tt, tc) in EVENT_TABLES.items():
            if table not in dataset.tables:
                continue
            df = dataset.tables[table]
            cols = _columns(df)
            props = ", ".join(f"{_q(c)}: $c.{_q(c)}[i]" for c in cols)
            self._unwind(snap, f"MATCH (a:{LABELS[st]} {{_snapshot: $s, _id: $c.{_q(sc)}[i]}}) "
                               f"MATCH (b:{LABELS[tt]} {{_snapshot: $s, _id: $c.{_q(tc)}[i]}}) "
                               f"CREATE (a)-[:{rel} {{_snapshot: $s, {props}}}]->(b)", cols, len(df))
        for table, rel, st, sc, tt, tc in DERIVED_RELS:
            if table not in dataset.tables:
                continue
            df = dataset.tables[table]
            part = df[df[sc].notna() & df[tc].notna()]
            cols = {"src": _values(part[sc]), "dst": _values(part[tc]), "_row": list(range(len(part)))}
            self._unwind(snap, f"MATCH (a:{LABELS[st]} {{_snapshot: $s, _id: $c.src[i]}}) "
                               f"MATCH (b:{LABELS[tt]} {{_snapshot: $s, _id: $c.dst[i]}}) "
                               f"CREATE (a)-[:{rel} {{_snapshot: $s, _row: $c._row[i]}}]->(b)", cols, len(part))
        if "agency_links" in dataset.tables:
            df = dataset.tables["agency_links"]
            cols = _columns(df)
            props = ", ".join(f"{_q(c)}: $c.{_q(c)}[i]" for c in cols)
            for etype in ("person", "employer"):
                mask = (df["entity_type"] == etype).to_numpy()
                idx = np.flatnonzero(mask)
                part = {k: [v[j] for j in idx] for k, v in cols.items()}
                self._unwind(snap, f"MATCH (a:Agency {{_snapshot: $s, _id: $c.agency_id[i]}}) "
                                   f"MATCH (b:{LABELS[etype]} {{_snapshot: $s, _id: $c.entity_id[i]}}) "
                                   f"CREATE (a)-[:LINKED {{_snapshot: $s, {props}}}]->(b)", part, len(idx))
        for table, label in FACT_LABELS.items():
            if table not in dataset.tables:
                continue
            df = dataset.tables[table]
            cols = _columns(df)
            props = ", ".join(f"{_q(c)}: $c.{_q(c)}[i]" for c in cols)
            self._unwind(snap, f"CREATE (:{label} {{_snapshot: $s, {props}}})", cols, len(df))

    def _ingest_identifiers(self, snap: str, dataset: Dataset) -> None:
        holders = [(et, dataset.tables[ENTITY_TABLE[et]]) for et in ("person", "employer")
                   if ENTITY_TABLE[et] in dataset.tables]
        for ident in IDENTIFIER_TYPES:
            present = [df[ident].dropna() for _, df in holders if ident in df.columns]
            values = np.sort(pd.concat(present).unique().astype(object)) if present else np.array([], dtype=object)
            if len(values) == 0:
                continue
            vals = [str(v) for v in values]
            self._unwind(snap, f"CREATE (:{LABELS[ident]} {{_snapshot: $s, _id: $c._id[i], _row: $c._row[i]}})",
                         {"_id": vals, "_row": list(range(len(vals)))}, len(vals))
            row = 0
            for et, df in holders:
                part = df[df[ident].notna()]
                cols = {"src": _values(part[ID_COLUMN[et]]), "dst": _values(part[ident]),
                        "_row": list(range(row, row + len(part)))}
                row += len(part)
                self._unwind(snap, f"MATCH (a:{LABELS[et]} {{_snapshot: $s, _id: $c.src[i]}}) "
                                   f"MATCH (b:{LABELS[ident]} {{_snapshot: $s, _id: $c.dst[i]}}) "
                                   f"CREATE (a)-[:{IDENTIFIER_RELS[ident]} {{_snapshot: $s, _row: $c._row[i]}}]->(b)",
                             cols, len(part))

    # -- reading the snapshot back ------------------------------------------------------------------
    def _require_current(self) -> dict[str, Any]:
        s = self._current()
        if s is None:
            raise NoSnapshot(f"no dataset loaded in Neo4j at {self.url}; run `riskgraph pipeline --data DIR` first")
        return s

    def dataset(self) -> Dataset:
        s = self._require_current()
        if self._cache is not None and self._cache[0] == s["id"]:
            return self._cache[1]
        schema: dict[str, list[list[str]]] = json.loads(s["tables"])
        counts: dict[str, int] = json.loads(s["row_counts"])
        tables = {name: self._read_table(s["id"], name, cols, counts.get(name, 0))
                  for name, cols in schema.items()}
        dataset = Dataset(tables, content_hash=s["content_hash"], skipped=list(s.get("skipped") or []))
        self._cache = (s["id"], dataset)
        return dataset

    def _read_table(self, snap: str, name: str, cols: list[list[str]], n: int) -> pd.DataFrame:
        etype = next((t for t in ENTITY_TYPES if ENTITY_TABLE[t] == name), None)
        if etype is not None:
            match = f"MATCH (x:{LABELS[etype]}) WHERE x._snapshot = $s AND x._id IS NOT NULL"
            order, page = f"x.{_q(ID_COLUMN[etype])}", "x._id > $after"
        elif name in FACT_LABELS:
            match = f"MATCH (x:{FACT_LABELS[name]}) WHERE x._snapshot = $s"
            order, page = "x._row", "x._row >= $lo AND x._row < $hi"
        else:
            rel = "LINKED" if name == "agency_links" else EVENT_TABLES[name][0]
            match = f"MATCH ()-[x:{rel}]->() WHERE x._snapshot = $s"
            order, page = "x._row", "x._row >= $lo AND x._row < $hi"
        fields = ", ".join(
            (f"toString(x.{_q(c)})" if dtype.startswith("datetime64") else f"x.{_q(c)}") + f" AS {_q(c)}"
            for c, dtype in cols)
        parts: list[pd.DataFrame] = []
        if etype is not None:  # entity ids are unique: page by id (keyset pagination)
            after = ""
            while True:
                rows = self._run(f"{match} AND {page} RETURN x._id AS _key, {fields} ORDER BY x._id "
                                 f"LIMIT {READ_BATCH_SIZE}", s=snap, after=after)
                if not rows:
                    break
                parts.append(pd.DataFrame.from_records(rows))
                after = rows[-1]["_key"]
        else:
            for lo in range(0, n, READ_BATCH_SIZE):
                rows = self._run(f"{match} AND {page} RETURN x._row AS _key, {fields} ORDER BY x._row",
                                 s=snap, lo=lo, hi=lo + READ_BATCH_SIZE)
                parts.append(pd.DataFrame.from_records(rows))
        raw = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if etype is not None and len(raw):  # the loaded table's order: its key, like graph/dataset.py
            raw = raw.sort_values(ID_COLUMN[etype], kind="mergesort").reset_index(drop=True)
        out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
        for c, dtype in cols:
            values = raw[c] if c in raw.columns else pd.Series([None] * len(raw), dtype=object)
            if dtype.startswith("datetime64"):
                out[c] = pd.to_datetime(values, format="%Y-%m-%d").astype(dtype)
            elif dtype == "str":
                out[c] = pd.Series(values.to_numpy(dtype=object), dtype="str")
            else:
                out[c] = pd.Series(values.to_numpy(dtype=object)).astype(dtype)
        return out

    # -- graph reads --------------------------------------------------------------------------
    def _snap_id(self) -> str:
        return self._require_current()["id"]

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

    def _node_ids(self, snap: str, refs: list[EntityRef]) -> dict[str, EntityRef]:
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


# -- conversions ---------------------------------------------------------------------------------

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


def _columns(df: pd.DataFrame) -> dict[str, list[Any]]:
    cols = {c: _values(df[c]) for c in df.columns}
    cols["_row"] = list(range(len(df)))
    return cols


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
