"""The graph store interface. Every backend (memory, Neo4j) implements `GraphStore`.

Graph model (both backends):
- entity nodes: person, employer, clinic, pharmacy, agency (key: their id, attributes: the
  entity table's columns);
- shared-identifier nodes: phone, address, bank_account (key: the value), linked to every
  person or employer carrying that value;
- relationships, one per event row: EMPLOYED_BY (person->employer), CONTRIBUTED
  (employer->person), VISITED (person->clinic), PURCHASED (person->pharmacy), LINKED
  (agency->person|employer), HAS_PHONE / HAS_ADDRESS / HAS_BANK_ACCOUNT; benefits and labels
  are facts on the person / entity;
- SAME_PERSON (person record -> its golden person's record, docs/resolution.md), with
  match_probability and matched_on: written by the run that staged the snapshot, after its
  resolution stage and before its commit (`stage_same_person`), deleted with the snapshot. It is
  for investigators' graph reads only: the analytics stages work on the golden dataset, where
  the records of one human already are one node, and never see it.

The pipeline reads the whole snapshot back with `dataset()` and computes from that, so both
backends give identical results for the same input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from graph.dataset import Dataset

SAME_PERSON = "SAME_PERSON"
# A snapshot's SAME_PERSON links: one row per person record merged into another record's golden
# person (person_id -> golden_id), with the record's match_probability and matched_on.
SAME_PERSON_COLUMNS = ("person_id", "golden_id", "match_probability", "matched_on")


@dataclass(frozen=True, order=True)
class EntityRef:
    """A node of the graph: an entity (person, ...) or a shared identifier (phone, ...)."""

    type: str
    id: str


@dataclass(frozen=True)
class Edge:
    source: EntityRef
    target: EntityRef
    type: str  # EMPLOYED_BY, VISITED, HAS_PHONE, ...
    count: int = 1  # parallel event rows folded into one edge
    # the relationship's own properties where it has some (SAME_PERSON: match_probability, matched_on)
    properties: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class Subgraph:
    """Nodes with their attributes, and edges among them."""

    nodes: dict[EntityRef, dict[str, Any]] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    truncated: bool = False  # a limit cut the expansion short


@dataclass(frozen=True)
class SnapshotInfo:
    content_hash: str
    loaded_at: datetime
    row_counts: dict[str, int]
    id: str = ""  # the snapshot's id in its store (text, whatever the backend)


class GraphStore(ABC):
    """A graph store holding dataset snapshots, one of them current (the one graph queries read).

    A run writes its snapshot with `stage` (invisible to readers), and makes it current with
    `commit` only once the whole run has succeeded; `retain` deletes the ones no longer kept.
    `lease` keeps a second writer out of the same store while a run holds it."""

    @abstractmethod
    def stage(self, dataset: Dataset) -> SnapshotInfo:
        """Write `dataset` as a new complete snapshot that is not yet current (all or nothing:
        a failed stage leaves nothing behind but what the next `retain` removes)."""

    @abstractmethod
    def commit(self, snapshot_id: str) -> None:
        """Make a staged or retained snapshot the current one (idempotent)."""

    @abstractmethod
    def retain(self, keep: Collection[str]) -> None:
        """Delete every snapshot that is neither current nor in `keep` (incomplete ones included)."""

    @abstractmethod
    def snapshot_ids(self) -> list[str]:
        """Ids of every complete snapshot held, oldest first."""

    def load(self, dataset: Dataset) -> SnapshotInfo:
        """Stage `dataset`, make it current and drop every other snapshot."""
        info = self.stage(dataset)
        self.commit(info.id)
        self.retain([info.id])
        return info

    @abstractmethod
    def stage_same_person(self, snapshot_id: str, links: pd.DataFrame) -> int:
        """Write the SAME_PERSON links (SAME_PERSON_COLUMNS) into a complete snapshot that is not
        current (a staged one: they become visible with its commit, and go with it when it is
        deleted). Replaces the links it held; refuses the current snapshot (NoSnapshot when it is
        not held, ValueError when it is current or a link names a person it does not hold).
        Returns the number of links written."""

    @abstractmethod
    def same_person(self, snapshot_id: str | None = None) -> pd.DataFrame:
        """The current (or named) snapshot's SAME_PERSON links, SAME_PERSON_COLUMNS, sorted by
        person_id (empty when its run wrote none)."""

    @abstractmethod
    def snapshot(self, snapshot_id: str | None = None) -> SnapshotInfo | None:
        """The current snapshot (or the named one), or None when there is none."""

    @abstractmethod
    def dataset(self, snapshot_id: str | None = None) -> Dataset:
        """The current (or named) snapshot as typed tables (raises NoSnapshot when absent)."""

    def lease(self, holder: str) -> StoreLease:
        """Exclusive right to write this store until released; raises StoreBusy naming the
        holder when another run has it. The default (single-process stores) takes no lease."""
        return StoreLease()

    @abstractmethod
    def entity(self, ref: EntityRef) -> dict[str, Any] | None:
        """The node's attributes, or None when it does not exist."""

    @abstractmethod
    def neighbours(
        self, ref: EntityRef, *, hops: int = 1, limit: int = 200, rel_types: tuple[str, ...] | None = None
    ) -> Subgraph:
        """Nodes within `hops` of `ref` (at most `limit` nodes, nearest first) and their edges."""

    @abstractmethod
    def shortest_path(self, source: EntityRef, target: EntityRef, *, max_hops: int = 6) -> Subgraph | None:
        """One shortest path between two nodes, or None when none is within `max_hops`."""

    @abstractmethod
    def subgraph(self, refs: list[EntityRef]) -> Subgraph:
        """The given nodes and every edge among them."""

    def describe(self) -> str:
        """Where the store is, without credentials (for run records and manifests)."""
        return type(self).__name__

    def ping(self) -> bool:
        """True when the store is reachable."""
        return True

    def warm(self) -> None:
        """Build now what the first graph read would otherwise build while a caller waits (the
        memory store's projection of the current snapshot); nothing by default."""

    def close(self) -> None:
        """Release connections."""


def same_person_frame(links: pd.DataFrame) -> pd.DataFrame:
    """`links` in the stores' one form: SAME_PERSON_COLUMNS, ids as text, probability float (NaN
    when unknown), matched_on text, one row per person record, sorted by person_id."""
    missing = [c for c in SAME_PERSON_COLUMNS if c not in links.columns]
    if missing:
        raise ValueError(f"SAME_PERSON links lack the columns {missing}")
    out = pd.DataFrame(
        {
            "person_id": links["person_id"].astype(str).to_numpy(dtype=object),
            "golden_id": links["golden_id"].astype(str).to_numpy(dtype=object),
            "match_probability": pd.to_numeric(links["match_probability"], errors="coerce").astype("float64"),
            "matched_on": links["matched_on"].fillna("").astype(str).to_numpy(dtype=object),
        }
    )
    if (out["person_id"] == out["golden_id"]).any():
        raise ValueError("a SAME_PERSON link joins a record to itself")
    if out["person_id"].duplicated().any():
        raise ValueError("a person record has more than one SAME_PERSON link (one golden person each)")
    return out.sort_values("person_id", kind="mergesort").reset_index(drop=True)


class StoreLease:
    """A held store lease: `renew` while the run is alive, `release` when done."""

    def renew(self) -> None:
        """Extend the lease (called with the run's heartbeat)."""

    def release(self) -> None:
        """Give the lease up."""
