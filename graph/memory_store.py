"""The embedded default store: typed tables persisted as Parquet files under PATH.

Layout: PATH/snapshots/<id>/<table>.parquet + meta.json, and PATH/CURRENT naming the
snapshot in force; a snapshot's SAME_PERSON links (graph/store.py), written by its run after
resolution and before the commit, in PATH/snapshots/<id>/links/same_person.parquet (ids, a
probability and how it matched: nothing personal). Columns at the personal levels
(graph/contract.py `Level`; every extra column, since the store does not see the data
dictionary) are encrypted when a cipher is given (riskgraph/field_crypto.py; the factory always
gives one): with Parquet modular encryption under AES-GCM (the columns and the footer), value by
value under SM4; snapshots written value by value before still read. Folders are 0700 and files 0600. A load writes a new snapshot folder completely, then swaps CURRENT with
an atomic rename, so a failed load leaves the previous snapshot untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
import weakref
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN, TABLES, column_level
from graph.dataset import Dataset, _dtype
from graph.projection import REL_TYPES, Projection
from graph.store import (
    SAME_PERSON,
    SAME_PERSON_COLUMNS,
    Edge,
    EntityRef,
    GraphStore,
    SnapshotInfo,
    Subgraph,
    same_person_frame,
)
from riskgraph.errors import NoSnapshot
from riskgraph.field_crypto import CannotDecrypt, FieldCipher, decrypt_table, encrypt_table
from riskgraph.forked import Forked

PARALLEL_WRITE_CELLS = 2_000_000  # snapshots with more cells are written on both cores
LINKS_FILE = Path("links") / "same_person.parquet"  # inside a snapshot's folder


class MemoryGraphStore(GraphStore):
    """Tables in memory, persisted as Parquet; graph queries over the integer projection."""

    def __init__(self, path: str | Path, cipher: FieldCipher | None = None) -> None:
        self.path = Path(path)
        self.cipher = cipher
        self._cache_id: str | None = None
        self._dataset: Dataset | None = None
        self._projection: Projection | None = None
        self._adjacency: dict[tuple[str, ...] | None, Any] = {}
        self._staged: tuple[str, Dataset] | None = None
        self._projection_id: str | None = None  # the snapshot the projection was built from
        self._links: pd.DataFrame | None = None  # its SAME_PERSON links
        self._link_props: dict[tuple[str, str], dict[str, Any]] | None = None
        self._rows_of: weakref.ref[Dataset] | None = None  # the dataset whose id indexes `_row_index` holds
        self._row_index: dict[str, pd.Index] = {}
        self._building = threading.RLock()

    def describe(self) -> str:
        return f"memory://{self.path}"

    # -- snapshots ------------------------------------------------------------------------
    def _current_id(self) -> str | None:
        pointer = self.path / "CURRENT"
        if not pointer.exists():
            return None
        return pointer.read_text().strip() or None

    def stage(self, dataset: Dataset) -> SnapshotInfo:
        snapshots = self.path / "snapshots"
        snapshots.mkdir(parents=True, exist_ok=True, mode=0o700)
        snap_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"  # sorts oldest first
        staging = snapshots / f".staging-{snap_id}"
        info = SnapshotInfo(dataset.content_hash, datetime.now(UTC), dataset.row_counts(), snap_id)
        try:
            staging.mkdir(mode=0o700)
            self._write_tables(staging, dataset)
            _private_write(staging / "meta.json").write_text(
                json.dumps(
                    {
                        "content_hash": info.content_hash,
                        "loaded_at": info.loaded_at.isoformat(),
                        "row_counts": info.row_counts,
                        "skipped": dataset.skipped,
                    },
                    indent=2,
                )
            )
            _fsync_tree(staging)
            os.replace(staging, snapshots / snap_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._staged = (snap_id, dataset)
        return info

    def _write_tables(self, staging: Path, dataset: Dataset) -> None:
        """Every table's Parquet file (personal columns encrypted value by value). A large
        dataset's tables are split in two by size and written on both cores: a forked worker
        writes one half while this process writes the other."""

        def write(names: list[str]) -> None:
            for name in names:
                df = dataset.tables[name]
                write_personal_parquet(staging / f"{name}.parquet", name, df, self.cipher)

        sizes = {name: len(df) * max(len(df.columns), 1) for name, df in dataset.tables.items()}
        if sum(sizes.values()) < PARALLEL_WRITE_CELLS:
            write(list(sizes))
            return
        halves: tuple[list[str], list[str]] = ([], [])
        weight = [0, 0]
        for name in sorted(sizes, key=lambda n: -sizes[n]):  # greedy: the larger table to the lighter half
            side = 0 if weight[0] <= weight[1] else 1
            halves[side].append(name)
            weight[side] += sizes[name]
        worker = Forked(write, halves[1], name="snapshot writer")
        try:
            write(halves[0])
        except BaseException:
            worker.cancel()
            raise
        worker.result()

    def commit(self, snapshot_id: str) -> None:
        if not (self.path / "snapshots" / snapshot_id / "meta.json").exists():
            raise NoSnapshot(f"no complete snapshot {snapshot_id!r} in {self.path}")
        if self._current_id() == snapshot_id:
            return
        tmp_pointer = self.path / f".CURRENT.{snapshot_id}"
        with open(tmp_pointer, "w") as f:
            f.write(snapshot_id)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_pointer, self.path / "CURRENT")
        _fsync_dir(self.path)

    def retain(self, keep: Collection[str]) -> None:
        snapshots = self.path / "snapshots"
        if not snapshots.exists():
            return
        wanted = set(keep) | {self._current_id()}
        for old in snapshots.iterdir():
            if old.name not in wanted:
                shutil.rmtree(old, ignore_errors=True)
        for tmp in self.path.glob(".CURRENT.*"):
            tmp.unlink(missing_ok=True)

    def snapshot_ids(self) -> list[str]:
        snapshots = self.path / "snapshots"
        if not snapshots.exists():
            return []
        return sorted(p.name for p in snapshots.iterdir() if (p / "meta.json").exists() and not p.name.startswith("."))

    def stage_same_person(self, snapshot_id: str, links: pd.DataFrame) -> int:
        folder = self.path / "snapshots" / snapshot_id
        if not (folder / "meta.json").exists():
            raise NoSnapshot(f"no complete snapshot {snapshot_id!r} in {self.path}")
        if self._current_id() == snapshot_id:
            raise ValueError(f"snapshot {snapshot_id} is current: its SAME_PERSON links are written before its commit")
        frame = same_person_frame(links)
        # object arrays: pandas' isin on Arrow-backed strings loops in Python over the values
        persons = self.dataset(snapshot_id).table("persons")["person_id"].astype(str).to_numpy(dtype=object)
        known = pd.Index(
            np.concatenate([frame["person_id"].to_numpy(dtype=object), frame["golden_id"].to_numpy(dtype=object)]),
            dtype=object,
        )
        unknown = ~known.isin(persons).reshape(2, -1).all(axis=0)
        if unknown.any():
            raise ValueError(
                f"{int(unknown.sum())} SAME_PERSON links name a person record snapshot {snapshot_id} lacks"
            )
        target = folder / LINKS_FILE
        target.parent.mkdir(exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        try:
            write_private_parquet(tmp, pa.Table.from_pandas(frame, preserve_index=False))
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)  # all of them or none
            _fsync_dir(target.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return len(frame)

    def same_person(self, snapshot_id: str | None = None) -> pd.DataFrame:
        snap_id = snapshot_id or self._current_id()
        if snap_id is None or not (self.path / "snapshots" / snap_id / "meta.json").exists():
            raise NoSnapshot(f"no snapshot {snap_id!r} in {self.path}")
        path = self.path / "snapshots" / snap_id / LINKS_FILE
        if not path.exists():
            return same_person_frame(pd.DataFrame(columns=list(SAME_PERSON_COLUMNS)))
        return same_person_frame(read_private_parquet(path, None))

    def snapshot(self, snapshot_id: str | None = None) -> SnapshotInfo | None:
        snap_id = snapshot_id or self._current_id()
        if snap_id is None:
            return None
        meta_path = self.path / "snapshots" / snap_id / "meta.json"
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        return SnapshotInfo(
            meta["content_hash"], datetime.fromisoformat(meta["loaded_at"]), meta["row_counts"], snap_id
        )

    def dataset(self, snapshot_id: str | None = None) -> Dataset:
        snap_id = snapshot_id or self._current_id()
        if snap_id is None:
            raise NoSnapshot(f"no dataset loaded in {self.path}; run `riskgraph pipeline --data DIR` first")
        if snapshot_id is not None and snap_id == self._cache_id and self._dataset is not None:
            return self._dataset
        if self._staged is not None and self._staged[0] == snap_id:
            return self._staged[1]  # the dataset this process just staged (read back identical)
        folder = self.path / "snapshots" / snap_id
        if not (folder / "meta.json").exists():
            raise NoSnapshot(f"snapshot {snap_id!r} is not held in {self.path} (deleted by retention?)")
        if self._cache_id != snap_id:
            meta = json.loads((folder / "meta.json").read_text())
            tables = {}
            for f in sorted(folder.glob("*.parquet")):
                df = read_private_parquet(f, self.cipher)
                table = TABLES[f.stem]
                for c in table.columns:
                    if c.name in df.columns:
                        df[c.name] = df[c.name].astype(_dtype(c.kind))
                tables[f.stem] = df
            dataset = Dataset(tables, meta["content_hash"], meta.get("skipped", []))
            if snapshot_id is not None and snap_id != self._current_id():
                return dataset  # an older or staged snapshot: read, not cached for graph queries
            self._remember(snap_id, dataset)
        assert self._dataset is not None
        return self._dataset

    def _remember(self, snap_id: str, dataset: Dataset) -> None:
        self._cache_id, self._dataset = snap_id, dataset
        self._projection = None

    @property
    def projection(self) -> Projection:
        with self._building:  # graph reads run on several threads: one builds, the others wait for it
            dataset = self.dataset()
            snap_id = self._current_id()
            if self._projection is None or self._projection_id != snap_id:
                assert snap_id is not None
                self._links = self.same_person(snap_id)
                self._projection, self._projection_id = Projection(dataset, same_person=self._links), snap_id
                self._adjacency, self._link_props = {}, None
            return self._projection

    def warm(self) -> None:
        """The current snapshot's projection and full adjacency (about 10 s at 1M persons)."""
        if self._current_id() is not None:
            self._adj(None)

    def _same_person_properties(self, source: str, target: str) -> dict[str, Any]:
        """A SAME_PERSON edge's properties (match_probability when known, matched_on)."""
        if self._link_props is None:
            links = self._links if self._links is not None else self.same_person()
            self._link_props = {
                (p, g): _clean({"match_probability": prob, "matched_on": on})
                for p, g, prob, on in zip(
                    links["person_id"], links["golden_id"], links["match_probability"], links["matched_on"]
                )
            }
        return dict(self._link_props.get((source, target), {}))

    # -- graph reads ------------------------------------------------------------------------
    def entity(self, ref: EntityRef) -> dict[str, Any] | None:
        dataset = self.dataset()
        if ref.type not in ENTITY_TYPES:
            return {"id": ref.id} if self.projection.node_index(ref.type, ref.id) >= 0 else None
        df = dataset.table(ENTITY_TABLE[ref.type])
        # each table's id index, built once per dataset held (reads run on several threads)
        held = self._row_index if self._rows_of is not None and self._rows_of() is dataset else {}
        index = held.get(ref.type)
        if index is None:
            index = pd.Index(df[ID_COLUMN[ref.type]])
            if held is not self._row_index:
                self._rows_of, self._row_index = weakref.ref(dataset), held
            held[ref.type] = index
        pos = index.get_indexer([ref.id])[0]
        if pos < 0:
            return None
        return _clean(df.iloc[pos].to_dict())

    def _adj(self, rel_types: tuple[str, ...] | None):
        key = tuple(sorted(rel_types)) if rel_types else None
        if key not in self._adjacency:
            self._adjacency[key] = self.projection.adjacency(key)
        return self._adjacency[key]

    def neighbours(
        self, ref: EntityRef, *, hops: int = 1, limit: int = 200, rel_types: tuple[str, ...] | None = None
    ) -> Subgraph:
        proj = self.projection
        start = proj.node_index(ref.type, ref.id)
        if start < 0:
            return Subgraph()
        adj = self._adj(rel_types)
        seen = np.array([start], dtype=np.int64)
        frontier = seen
        truncated = False
        for _ in range(hops):
            if len(frontier) == 0:
                break
            nxt = np.unique(np.concatenate([adj.indices[adj.indptr[i] : adj.indptr[i + 1]] for i in frontier]))
            nxt = np.setdiff1d(nxt, seen, assume_unique=True)
            room = limit - len(seen)
            if len(nxt) > room:
                nxt, truncated = nxt[: max(room, 0)], True
            seen = np.concatenate([seen, nxt])
            frontier = nxt
            if truncated:
                break
        return self._subgraph_of(seen, rel_types, truncated)

    def shortest_path(self, source: EntityRef, target: EntityRef, *, max_hops: int = 6) -> Subgraph | None:
        proj = self.projection
        a, b = proj.node_index(source.type, source.id), proj.node_index(target.type, target.id)
        if a < 0 or b < 0:
            return None
        if a == b:
            return self._subgraph_of(np.array([a]), None, False)
        found = breadth_first_path(self._adj(None), a, b, max_hops)
        if found is None:
            return None
        path_nodes = np.array(found, dtype=np.int64)
        sub = self._subgraph_of(path_nodes, None, False)
        refs = [EntityRef(*proj.node_of(int(n))) for n in path_nodes]
        hops = [frozenset((refs[i], refs[i + 1])) for i in range(len(refs) - 1)]
        chosen: dict[frozenset, Edge] = {}
        for e in sub.edges:  # one edge per hop: the first relationship type in REL_TYPES order
            key = frozenset((e.source, e.target))
            if key in hops and (key not in chosen or REL_TYPES.index(e.type) < REL_TYPES.index(chosen[key].type)):
                chosen[key] = e
        sub.edges = [chosen[h] for h in hops]
        return sub

    def subgraph(self, refs: list[EntityRef]) -> Subgraph:
        proj = self.projection
        idx = np.array([i for i in (proj.node_index(r.type, r.id) for r in refs) if i >= 0], dtype=np.int64)
        return self._subgraph_of(np.unique(idx), None, False)

    def _subgraph_of(self, nodes: np.ndarray, rel_types: tuple[str, ...] | None, truncated: bool) -> Subgraph:
        proj = self.projection
        src, tgt, rel, cnt = proj.edge_arrays
        # Edges are sorted by source: slice each node's run, then keep targets inside the set.
        lo, hi = np.searchsorted(src, nodes, "left"), np.searchsorted(src, nodes, "right")
        rows = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if len(nodes) else np.zeros(0, int)
        rows = rows[np.isin(tgt[rows], nodes)]
        if rel_types:
            rows = rows[np.isin(rel[rows], [REL_TYPES.index(r) for r in rel_types if r in REL_TYPES])]
        sub = Subgraph(truncated=truncated)
        refs = {int(n): EntityRef(*proj.node_of(int(n))) for n in nodes}
        for ref in refs.values():
            sub.nodes[ref] = self.entity(ref) or {}
        for i in rows:
            a, b, kind = refs[int(src[i])], refs[int(tgt[i])], REL_TYPES[int(rel[i])]
            props = self._same_person_properties(a.id, b.id) if kind == SAME_PERSON else {}
            sub.edges.append(Edge(a, b, kind, int(cnt[i]), props))
        return sub


def breadth_first_path(adj: Any, a: int, b: int, max_hops: int) -> list[int] | None:
    """The path from node `a` to node `b` that a breadth-first search of the symmetric CSR matrix
    `adj` finds (scipy's `breadth_first_order` predecessors: each level in discovery order, each
    node's neighbours in index order), searching at most `max_hops` levels instead of the whole
    graph; None when `b` is farther."""
    pred = np.full(adj.shape[0], -1, dtype=np.int64)
    pred[a] = a
    frontier = np.array([a], dtype=np.int64)
    for _ in range(max_hops):
        starts = adj.indptr[frontier]
        sizes = adj.indptr[frontier + 1] - starts
        total = int(sizes.sum())
        if total == 0:
            return None
        # every frontier node's neighbours, in frontier order, without a Python loop
        within = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        reached, via = adj.indices[np.repeat(starts, sizes) + within], np.repeat(frontier, sizes)
        new = pred[reached] < 0
        reached, via = reached[new], via[new]
        _, first = np.unique(reached, return_index=True)
        first.sort()  # the order of discovery: the first edge that reached each node names its predecessor
        frontier = reached[first]
        pred[frontier] = via[first]
        if pred[b] >= 0:
            path = [b]
            while path[-1] != a:
                path.append(int(pred[path[-1]]))
            return path[::-1]
    return None


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly attribute values: dates as YYYY-MM-DD, missing values dropped."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
            continue
        if isinstance(v, pd.Timestamp):
            v = v.strftime("%Y-%m-%d")
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def write_personal_parquet(path: Path, name: str, df: pd.DataFrame, cipher: FieldCipher | None) -> None:
    """A dataset table as a private Parquet file, its columns at the personal levels encrypted
    (with a cipher): natively by Parquet under AES-GCM, value by value under SM4."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    personal = [str(c) for c in df.columns if column_level(name, str(c)).is_personal]
    if cipher is None or not personal:
        write_private_parquet(path, table)
    elif cipher.encrypts_parquet:
        write_private_parquet(path, table, cipher.parquet_encryption(personal))
    else:
        write_private_parquet(path, encrypt_table(table, personal, cipher))


def write_private_parquet(path: Path, table: pa.Table, encryption: Any = None) -> None:
    """A Parquet file readable by its owner only (0600); `encryption`: pyarrow's file
    encryption properties (FieldCipher.parquet_encryption)."""
    _private_write(path)
    pq.write_table(table, path, encryption_properties=encryption)


def read_private_parquet(path: Path, cipher: FieldCipher | None) -> pd.DataFrame:
    """A table written by write_private_parquet or write_personal_parquet, decrypted."""
    try:
        table = pq.read_table(path, decryption_properties=cipher.parquet_decryption() if cipher else None)
    except OSError as exc:
        if "encrypted" not in str(exc):
            raise
        raise CannotDecrypt(f"{path.name} is encrypted and does not open without its key") from exc
    return decrypt_table(table, cipher).to_pandas()


def _private_write(path: Path) -> Path:
    """`path` created empty with mode 0600 (whatever the umask), ready to be written."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)
    return path


def _fsync_tree(folder: Path) -> None:
    """Flush a freshly written folder's files and the folder itself to disk."""
    for f in folder.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
