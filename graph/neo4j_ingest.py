"""Writing one dataset into Neo4j as the nodes and relationships of a snapshot: the columnar batch
writer behind Neo4jGraphStore.stage (the layout it writes is described in graph/neo4j_store.py).

Throughput notes (bench/bench_neo4j.py): packing values one by one is the driver's main cost in
pure Python (~4-5 us each), so most columns travel as ONE string per batch, joined with SEP and
split once per transaction on the server (see _Column). Relationships find their end nodes by
internal node id (NodeByIdSeek): the ids come back from the node CREATEs, so no second lookup of
the (_snapshot, _id) unique index per end node is needed.

Personal data (docs/security.md, "Encryption at rest"). With a cipher, the columns named in
`encrypted` (those at a personal level) are written as `enc1:` ciphertext text, each value bound to
its column name (riskgraph/field_crypto.py); with tokens, identifier nodes are keyed by the keyed
token of their value (`_id`: `Tokens(value)`, so equal values still meet in one node) and hold the
value only as ciphertext (`_value`, bound to the identifier type). Nothing personal is sent in plain.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from functools import partial
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from graph.contract import AGENCY_LINK_TYPES, ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN, IDENTIFIER_TYPES
from graph.dataset import Dataset
from graph.neo4j_layout import (
    DERIVED_RELS,
    END_COLUMNS,
    EVENT_TABLES,
    FACT_LABELS,
    IDENTIFIER_RELS,
    LABELS,
    cypher_name,
)
from graph.neo4j_runner import CypherRunner
from riskgraph.errors import StoreLoadFailed
from riskgraph.field_crypto import TEXT_PREFIX, FieldCipher
from riskgraph.server_keys import Tokens

# Rows per UNWIND transaction; measured with bench/bench_neo4j.py --batch-sizes (see its docstring).
DEFAULT_BATCH_SIZE = 10_000
# Concurrent sessions (threads) writing one table's rows, split by end node (see _partition_key).
# 2 on this 2-core machine: ~1.9x one session (bench_neo4j.py); tables still go one at a time,
# since two tables at once lock the same persons from both sessions (that was slower than one).
DEFAULT_SESSIONS = 2
# Neo4j's db.relationship_grouping_threshold default: nodes with more relationships are "dense" and
# take concurrent relationship inserts without an exclusive node lock.
DENSE_NODE_DEGREE = 50
SEP = "\x1f"  # joins a column's values into one string per batch (see _Column)
NULL = "\x1e"  # a missing text value inside such a string

Write = Callable[[], object]  # one job's writes, run once its columns are built


class _Cancelled(Exception):
    """A concurrent ingest job stopped because another one failed."""


class SnapshotWriter:
    """Writes a dataset as the nodes and relationships of snapshot `snap`: nodes, then relationships
    (by the internal ids of their end nodes), then fact nodes; `batch_size` rows a transaction,
    `sessions` concurrent sessions (each on its own thread, all through `runner`)."""

    def __init__(
        self,
        runner: CypherRunner,
        snap: int,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        sessions: int = DEFAULT_SESSIONS,
        cipher: FieldCipher | None = None,
        encrypted: dict[str, list[str]] | None = None,
        tokens: Tokens | None = None,
    ) -> None:
        self.runner = runner
        self.snap = snap
        self.batch_size = int(batch_size)
        self.sessions = max(1, int(sessions))
        self.cipher = cipher
        self.encrypted = (encrypted or {}) if cipher is not None else {}  # table -> its encrypted columns
        self.tokens = tokens
        self._cancel = threading.Event()

    def _columns(self, table: str, df: pd.DataFrame, without: tuple[str, ...] = ()) -> list[_Column]:
        """`_table_columns` of one table, its personal columns (`encrypted`) as ciphertexts."""
        secret = set(self.encrypted.get(table, ()))
        if not secret or self.cipher is None:
            return _table_columns(df, without)
        cipher = self.cipher
        return [
            _Column.encrypted(c.name, df[c.name], cipher) if c.name in secret else c
            for c in _table_columns(df, without)
        ]

    def write(self, dataset: Dataset) -> None:
        """Write every table of `dataset`. Each job of the plan is split into a client-side part
        (building its columns) and the writes: the next job's columns are built while the current
        job writes, so the server is not left idle."""
        jobs = self._plan(dataset)
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neo4j-prepare") as prepare:
            upcoming = prepare.submit(jobs[0])
            for k in range(len(jobs)):
                write_job = upcoming.result()
                if k + 1 < len(jobs):
                    upcoming = prepare.submit(jobs[k + 1])
                write_job()

    # -- the ingest plan ------------------------------------------------------------------------
    def _plan(self, dataset: Dataset) -> list[Callable[[], Write]]:
        """The jobs writing `dataset`, in order; each returns the write to run once its columns are built."""
        tables = dataset.tables
        node_ids: dict[str, tuple[pd.Index, np.ndarray]] = {}  # node type -> (_id values, internal ids)

        def ends(etype: str, values: pd.Series) -> np.ndarray:
            """Internal node id of each value's node, -1 where there is none."""
            if etype not in node_ids:
                return np.full(len(values), -1, dtype=np.int64)
            index, internal = node_ids[etype]
            pos = index.get_indexer(values)
            return np.where(pos >= 0, internal[np.maximum(pos, 0)] if len(internal) else -1, -1)

        def stored_ends(
            table: str, df: pd.DataFrame, st: str, sc: str, tt: str, tc: str
        ) -> tuple[np.ndarray, np.ndarray]:
            """End nodes of rows whose end ids are kept only as those nodes (see END_COLUMNS): every
            row needs both, or it would be lost (a validated dataset always has them)."""
            src, dst = ends(st, df[sc]), ends(tt, df[tc])
            missing = np.flatnonzero((src < 0) | (dst < 0))
            if len(missing):
                i = int(missing[0])
                col, value = (sc, df[sc].iloc[i]) if src[i] < 0 else (tc, df[tc].iloc[i])
                raise StoreLoadFailed(
                    f"{table}: {col} {value!r} names no loaded entity ({len(missing)} such "
                    "rows); the load is undone and the previous snapshot stays current"
                )
            return src, dst

        # 1. nodes: entities, and the shared identifiers (their values come from persons/employers)
        def entity_nodes(etype: str) -> Write:
            df = tables[ENTITY_TABLE[etype]]
            columns = self._columns(ENTITY_TABLE[etype], df) + [_Column.of("_id", df[ID_COLUMN[etype]])]

            def write() -> None:
                created = self._create_nodes(LABELS[etype], columns, len(df))
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
            vals = identifier_values[ident]  # the nodes are found by value (ends) ...
            columns = [_Column.of("_id", pd.Series(vals, dtype=object))]
            if self.tokens is not None:  # ... but keyed by its token, the value kept encrypted
                tokens = self.tokens
                columns = [_Column.of("_id", pd.Series([tokens(v) for v in vals], dtype=object))]
                if self.cipher is not None:
                    columns.append(_Column.encrypted("_value", pd.Series(vals, dtype=object), self.cipher, ident))

            def write() -> None:
                node_ids[ident] = (pd.Index(vals, dtype=object), self._create_nodes(LABELS[ident], columns, len(vals)))

            return write

        # 2. relationships; their end ids are looked up at write time, once the nodes exist
        def event_rels(table: str) -> Write:
            rel, st, sc, tt, tc = EVENT_TABLES[table]
            df = tables[table]
            columns = self._columns(table, df, without=(sc, tc))
            return lambda: self._create_rels(rel, *stored_ends(table, df, st, sc, tt, tc), columns)

        def derived_rels(table: str, rel: str, st: str, sc: str, tt: str, tc: str) -> Write:
            df = tables[table]
            part = df[df[sc].notna() & df[tc].notna()]
            return lambda: self._create_rels(rel, ends(st, part[sc]), ends(tt, part[tc]), [])

        def linked_rels(etype: str) -> Write:
            df = tables["agency_links"]
            idx = np.flatnonzero((df["entity_type"] == etype).to_numpy())
            part = df.iloc[idx]
            agency_col, entity_col = END_COLUMNS["agency_links"]
            columns = self._columns("agency_links", part, without=(agency_col, entity_col))
            columns[-1] = _Column.ints("_row", idx)  # rows of the whole table
            return lambda: self._create_rels(
                "LINKED", *stored_ends("agency_links", part, "agency", agency_col, etype, entity_col), columns
            )

        def identifier_rels(ident: str) -> Write:
            parts = [(et, df[df[ident].notna()]) for et, df in holders if ident in df.columns]

            def write() -> None:
                for et, part in parts:
                    self._create_rels(
                        IDENTIFIER_RELS[ident], ends(et, part[ID_COLUMN[et]]), ends(ident, part[ident].astype(str)), []
                    )

            return write

        # 3. the unconnected fact nodes
        def fact_nodes(table: str, label: str) -> Write:
            columns = _named(self._columns(table, tables[table]))
            props = ", ".join(f"{cypher_name(c.name)}: {c.expr}" for c in columns)
            return lambda: self._create(f"CREATE (:{label} {{_snapshot: $s, {props}}})", columns, len(tables[table]))

        jobs: list[Callable[[], Write]] = []
        jobs += [partial(entity_nodes, t) for t in ENTITY_TYPES if ENTITY_TABLE[t] in tables]
        jobs += [partial(identifier_nodes, ident) for ident in identifier_values]
        jobs += [partial(event_rels, table) for table in EVENT_TABLES if table in tables]
        jobs += [partial(derived_rels, table, *spec) for table, *spec in DERIVED_RELS if table in tables]
        if "agency_links" in tables:
            jobs += [partial(linked_rels, etype) for etype in AGENCY_LINK_TYPES]
        jobs += [partial(identifier_rels, ident) for ident in identifier_values]
        jobs += [partial(fact_nodes, table, label) for table, label in FACT_LABELS.items() if table in tables]
        return jobs

    # -- batched CREATEs ------------------------------------------------------------------------
    def _create(
        self, head: str, columns: list[_Column], n: int, *, ids: bool = False, partition: np.ndarray | None = None
    ) -> np.ndarray:
        """Run `head` (a clause using the columns' expressions) for rows 0..n-1 in batches; with
        `ids`, `head` binds node `n` and the internal ids of the created nodes come back in row order.

        Rows are written in order of `partition` (an end node per row: consecutive rows then touch
        the same nodes, which alone is ~25% faster) by self.sessions concurrent sessions, each
        taking a contiguous run of keys, so no key's node is written by two sessions."""
        order, keys = None, None
        if partition is not None and n > 1:
            order = np.argsort(partition, kind="stable")
            columns = [c.take(order) for c in columns]
            keys = partition[order]
        chunks = _chunks(n, self.sessions, keys, self.batch_size)
        prelude = ", ".join(f"{c.prelude} AS {c.var}" for c in columns)
        cypher = f"WITH {prelude} UNWIND range(0, $n - 1) AS i {head}" + (
            " RETURN collect(i) AS rows, collect(id(n)) AS ids" if ids else ""
        )
        out = np.zeros(n if ids else 0, dtype=np.int64)

        def write(lo_chunk: int, hi_chunk: int) -> None:
            for lo in range(lo_chunk, hi_chunk, self.batch_size):
                if self._cancel.is_set():
                    raise _Cancelled()
                hi = min(hi_chunk, lo + self.batch_size)
                params = {
                    "n": hi - lo,
                    "s": self.snap,
                    "sep": SEP,
                    "null": NULL,
                    **{c.var: c.batch(lo, hi) for c in columns},
                }
                if ids:
                    created = self.runner.run(cypher, params)[0]
                    rows = lo + np.asarray(created["rows"], dtype=np.int64)
                    out[rows if order is None else order[rows]] = created["ids"]
                else:
                    self.runner.write(cypher, params)

        self._in_parallel([partial(write, lo, hi) for lo, hi in chunks])
        return out

    def _create_nodes(self, label: str, columns: list[_Column], n: int) -> np.ndarray:
        _named(columns)
        props = ", ".join(f"{cypher_name(c.name)}: {c.expr}" for c in columns)
        return self._create(f"CREATE (n:{label} {{_snapshot: $s, {props}}})", columns, n, ids=True)

    def _create_rels(self, rel: str, src: np.ndarray, dst: np.ndarray, columns: list[_Column]) -> None:
        """One relationship per row with both ends present (internal ids; -1 for a missing end, whose
        row makes none, as a MATCH on a missing node would); `columns` hold every row, _row included,
        or are empty for a derived relationship (no properties at all)."""
        keep = np.flatnonzero((src >= 0) & (dst >= 0))
        if len(keep) < len(src):
            columns = [c.take(keep) for c in columns]
            src, dst = src[keep], dst[keep]
        ends = [_Column.ints("_a", src), _Column.ints("_b", dst)]
        _named(ends + columns)
        props = "".join(f", {cypher_name(c.name)}: {c.expr}" for c in columns)
        a, b = ends[0].expr, ends[1].expr
        body = f" {{_snapshot: $s{props}}}" if columns else ""
        self._create(
            f"MATCH (x) WHERE id(x) = {a} MATCH (y) WHERE id(y) = {b} CREATE (x)-[:{rel}{body}]->(y)",
            ends + columns,
            len(src),
            partition=_partition_key(src, dst),
        )

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
        errors = [e for f in futures if (e := f.exception()) is not None]
        if errors:
            raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])


# -- splitting the rows ---------------------------------------------------------------------------


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


# -- columns ---------------------------------------------------------------------------------------


def _values(s: pd.Series) -> list[Any]:
    """A column as Bolt-ready Python values: None for missing, datetime.date for dates."""
    if pd.api.types.is_datetime64_any_dtype(s):
        arr = np.array(s.dt.date.to_numpy(dtype=object), dtype=object, copy=True)
        arr[s.isna().to_numpy()] = None
        return cast(list[Any], arr.tolist())
    if pd.api.types.is_integer_dtype(s):
        return cast(list[Any], s.astype("int64").tolist())
    arr = np.array(s.to_numpy(dtype=object), dtype=object, copy=True)
    arr[s.isna().to_numpy()] = None
    return cast(list[Any], arr.tolist())


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
                text = _as_text(arr)  # the shortest text that parses back to the same double
                text[missing] = ""
                return cls(name, "float", text, has_null)
        values = np.asarray(_values(s), dtype=object)
        if pd.api.types.is_string_dtype(s) and _plain_text(values[~missing]):
            out = values.copy()
            out[missing] = NULL
            return cls(name, "str", out, has_null)
        return cls(name, "list", values, has_null)

    @classmethod
    def encrypted(cls, name: str, s: pd.Series, cipher: FieldCipher, column: str | None = None) -> _Column:
        """Column `name` as `enc1:` ciphertext text, each value bound to `column` (default: `name`);
        the values as `plain_text` gives them (neo4j_read.py restores them from the table's dtype)."""
        missing = s.isna().to_numpy()
        text = plain_text(s)
        bound = name if column is None else column
        # the batch API (one nonce prefix per call), in encrypt_text's form: enc1:<url-safe base64>
        blobs = cipher.encrypt_strings(text.tolist(), bound)
        out = np.array(
            [NULL if b is None else TEXT_PREFIX + base64.urlsafe_b64encode(b).decode("ascii") for b in blobs],
            dtype=object,
        )
        return cls(name, "str", out, bool(missing.any()))

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


def plain_text(s: pd.Series) -> np.ndarray:
    """A column's values as text, the form they are encrypted in: dates YYYY-MM-DD (as Neo4j
    stores them), numbers the shortest text that parses back exactly, anything else str()."""
    missing = s.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(s):
        text = np.asarray(s.dt.strftime("%Y-%m-%d").to_numpy(dtype=object), dtype=object)
    elif pd.api.types.is_float_dtype(s) or (pd.api.types.is_integer_dtype(s) and not missing.any()):
        filled = s.to_numpy(dtype="float64" if pd.api.types.is_float_dtype(s) else "int64", na_value=0)
        text = _as_text(np.asarray(filled))
    else:
        text = np.asarray([str(v) for v in s.to_numpy(dtype=object)], dtype=object)
    text = np.array(text, dtype=object, copy=True)
    text[missing] = None
    return text


def _as_text(values: np.ndarray) -> np.ndarray:
    """Numbers as an object array of str (Arrow's cast: shortest round-trip text, ~4x numpy's)."""
    return cast(np.ndarray, pa.array(values).cast(pa.string()).to_numpy(zero_copy_only=False))


def _plain_text(values: np.ndarray) -> bool:
    """All values are str and none holds SEP or NULL (checked on one joined string, at C speed)."""
    try:
        joined = "".join(values)
    except TypeError:  # a value that is not text
        return False
    return SEP not in joined and NULL not in joined
