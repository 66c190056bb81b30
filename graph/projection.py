"""Integer-indexed projection of a dataset for analytics.

Every node (entities and shared identifiers) gets a global integer index; within a type,
nodes are sorted by id, so results never depend on load order. A node's index within its type
is its id code: the projection owns the dataset's `ColumnCodes` (graph/codes.py), which the
feature stage shares. Each relationship type is a pair of int arrays (source, target) in global
indices, and `matrix()` gives the sparse (source type x target type) count matrix that the
feature and ring stages use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graph.codes import ColumnCodes
from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN, IDENTIFIER_TYPES
from graph.dataset import Dataset

NODE_TYPES: tuple[str, ...] = ENTITY_TYPES + IDENTIFIER_TYPES

# relationship type -> (table, source type, source column, target type, target column)
EVENT_RELATIONSHIPS: dict[str, tuple[str, str, str, str, str]] = {
    "EMPLOYED_BY": ("employment", "person", "person_id", "employer", "employer_id"),
    "PLACED_BY": ("employment", "person", "person_id", "agency", "agency_id"),
    "CONTRIBUTED": ("contributions", "employer", "employer_id", "person", "person_id"),
    "VISITED": ("visits", "person", "person_id", "clinic", "clinic_id"),
    "PURCHASED": ("purchases", "person", "person_id", "pharmacy", "pharmacy_id"),
    "PRESCRIBED_AT": ("purchases", "pharmacy", "pharmacy_id", "clinic", "clinic_id"),
}
IDENTIFIER_RELATIONSHIPS: dict[str, str] = {
    "phone": "HAS_PHONE",
    "address": "HAS_ADDRESS",
    "bank_account": "HAS_BANK_ACCOUNT",
}
# SAME_PERSON (person record -> its golden person's record) comes last: only a store's graph
# reads project it (`same_person=`); the analytics stages build their projection of the golden
# dataset without it, so features, rules, rings and scores never see it.
REL_TYPES: tuple[str, ...] = (
    tuple(EVENT_RELATIONSHIPS) + ("LINKED",) + tuple(IDENTIFIER_RELATIONSHIPS.values()) + ("SAME_PERSON",)
)


@dataclass(frozen=True)
class Relationship:
    source_type: str
    target_type: str
    source: np.ndarray  # local index within source_type
    target: np.ndarray  # local index within target_type


class Projection:
    """Node index and relationship arrays of one dataset. `same_person` (a store's SAME_PERSON
    links, graph/store.py) adds those person -> person edges: for graph reads only."""

    def __init__(self, dataset: Dataset, same_person: pd.DataFrame | None = None) -> None:
        self.dataset = dataset
        # Node index = id code: the one ColumnCodes of this dataset's ids, which the feature
        # stage shares (`column_codes.sharing_ids()`).
        self.column_codes = ColumnCodes(dataset)
        self.ids: dict[str, pd.Index] = {  # straight from Arrow: no Python strings
            t: pd.Index(pd.array(self.column_codes.vocab(t), dtype="str"), name="entity_id") for t in NODE_TYPES
        }
        self.offsets: dict[str, int] = {}
        total = 0
        for t in NODE_TYPES:
            self.offsets[t] = total
            total += len(self.ids[t])
        self.n_nodes = total
        self.relationships: dict[str, list[Relationship]] = {}
        self._matrices: dict[tuple[str, str | None, str | None], sp.csr_matrix] = {}
        self._build(dataset)
        if same_person is not None and len(same_person):
            person = self.ids["person"]
            self._add(
                "SAME_PERSON",
                "person",
                "person",
                person.get_indexer(same_person["person_id"].to_numpy(dtype=object)),
                person.get_indexer(same_person["golden_id"].to_numpy(dtype=object)),
            )

    def codes(self, table: str, column: str, node_type: str) -> np.ndarray:
        """int64 local index into `ids[node_type]` of each row's value of `table.column`
        (-1 where the value is missing or unknown). Computed once per (table, column, type);
        the returned array is shared and read-only."""
        return self.column_codes.codes(table, column, node_type)

    def _add(self, rel: str, st: str, tt: str, s: np.ndarray, t: np.ndarray) -> None:
        keep = (s >= 0) & (t >= 0)
        self.relationships.setdefault(rel, []).append(
            Relationship(st, tt, s[keep].astype(np.int64), t[keep].astype(np.int64))
        )

    def _build(self, dataset: Dataset) -> None:
        for rel, (table, st, sc, tt, tc) in EVENT_RELATIONSHIPS.items():
            if not dataset.has(table):
                continue
            self._add(rel, st, tt, self.codes(table, sc, st), self.codes(table, tc, tt))
        if dataset.has("agency_links"):
            links = dataset.tables["agency_links"]
            is_type = {
                et: (links["entity_type"] == et).to_numpy(dtype=bool, na_value=False) for et in ("person", "employer")
            }
            agency = self.codes("agency_links", "agency_id", "agency")
            for et in ("person", "employer"):
                part = is_type[et]
                self._add("LINKED", "agency", et, agency[part], self.codes("agency_links", "entity_id", et)[part])
        for et in ("person", "employer"):
            table = ENTITY_TABLE[et]
            holder = self.codes(table, ID_COLUMN[et], et)  # 0..n-1: the table is sorted by id
            for ident, rel in IDENTIFIER_RELATIONSHIPS.items():
                self._add(rel, et, ident, holder, self.codes(table, ident, ident))

    # -- lookups ---------------------------------------------------------------------------
    def node_index(self, node_type: str, node_id: str) -> int:
        """Global index of a node, or -1 when absent."""
        if node_type not in self.ids:
            return -1
        local = self.ids[node_type].get_indexer([node_id])[0]
        return -1 if local < 0 else self.offsets[node_type] + int(local)

    def node_of(self, index: int) -> tuple[str, str]:
        """(type, id) of a global index."""
        for t in reversed(NODE_TYPES):
            if index >= self.offsets[t] and len(self.ids[t]):
                return t, str(self.ids[t][index - self.offsets[t]])
        raise IndexError(index)

    def matrix(self, rel: str, source_type: str | None = None, target_type: str | None = None) -> sp.csr_matrix:
        """Sparse count matrix (source nodes x target nodes) of one relationship type.
        Built once per arguments and shared between callers: do not modify it in place."""
        key = (rel, source_type, target_type)
        m = self._matrices.get(key)
        if m is None:
            m = self._matrices[key] = self._build_matrix(rel, source_type, target_type)
        return m

    def _build_matrix(self, rel: str, source_type: str | None, target_type: str | None) -> sp.csr_matrix:
        parts = [
            r
            for r in self.relationships.get(rel, [])
            if (source_type is None or r.source_type == source_type)
            and (target_type is None or r.target_type == target_type)
        ]
        if not parts:
            st = source_type or "person"
            tt = target_type or "person"
            return sp.csr_matrix((len(self.ids[st]), len(self.ids[tt])), dtype=np.float64)
        st, tt = parts[0].source_type, parts[0].target_type
        s = np.concatenate([p.source for p in parts])
        t = np.concatenate([p.target for p in parts])
        m = sp.csr_matrix((np.ones(len(s)), (s, t)), shape=(len(self.ids[st]), len(self.ids[tt])))
        m.sum_duplicates()
        return m

    @cached_property
    def edges(self) -> pd.DataFrame:
        """Every relationship folded to one row per (source, target, type) in global indices."""
        frames = []
        for code, rel in enumerate(REL_TYPES):
            for r in self.relationships.get(rel, []):
                if len(r.source) == 0:
                    continue
                frames.append(
                    pd.DataFrame(
                        {
                            "source": r.source + self.offsets[r.source_type],
                            "target": r.target + self.offsets[r.target_type],
                            "rel": np.full(len(r.source), code, dtype=np.int16),
                        }
                    )
                )
        if not frames:
            return pd.DataFrame({"source": [], "target": [], "rel": [], "count": []}, dtype=np.int64)
        n, k = max(self.n_nodes, 1), len(REL_TYPES)
        if n * n * k >= 2**62:  # the packed key below would overflow
            df = pd.concat(frames, ignore_index=True)
            return df.groupby(["source", "target", "rel"], sort=True).size().rename("count").reset_index()
        # One int64 key per row, ordered like (source, target, rel): np.unique sorts and counts.
        key = np.concatenate(
            [
                (f["source"].to_numpy() * n + f["target"].to_numpy()) * k + f["rel"].to_numpy().astype(np.int64)
                for f in frames
            ]
        )
        key, count = np.unique(key, return_counts=True)
        st, rel_code = np.divmod(key, k)
        source, target = np.divmod(st, n)
        return pd.DataFrame(
            {"source": source, "target": target, "rel": rel_code.astype(np.int16), "count": count.astype(np.int64)}
        )

    @cached_property
    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`edges` as numpy arrays (source, target, rel code, count), sorted by source."""
        e = self.edges
        return (
            e["source"].to_numpy(np.int64),
            e["target"].to_numpy(np.int64),
            e["rel"].to_numpy(np.int16),
            e["count"].to_numpy(np.int64),
        )

    @cached_property
    def _full_adjacency(self) -> sp.csr_matrix:
        return self._build_adjacency(None)

    def adjacency(self, rel_types: tuple[str, ...] | None = None) -> sp.csr_matrix:
        """Symmetric 0/1 adjacency over all nodes, optionally restricted to some types."""
        return self._full_adjacency if rel_types is None else self._build_adjacency(rel_types)

    def _build_adjacency(self, rel_types: tuple[str, ...] | None) -> sp.csr_matrix:
        e = self.edges
        if rel_types is not None:
            codes = [REL_TYPES.index(r) for r in rel_types if r in REL_TYPES]
            e = e[e["rel"].isin(codes)]
        s = e["source"].to_numpy(dtype=np.int64)
        t = e["target"].to_numpy(dtype=np.int64)
        m = sp.csr_matrix(
            (np.ones(2 * len(s), dtype=np.int8), (np.r_[s, t], np.r_[t, s])), shape=(self.n_nodes, self.n_nodes)
        )
        m.data[:] = 1
        m.sort_indices()
        return m
