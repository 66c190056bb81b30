"""The graph store interface. Every backend (memory, Neo4j) implements `GraphStore`.

Graph model (both backends):
- entity nodes: person, employer, clinic, pharmacy, agency (key: their id, attributes: the
  entity table's columns);
- shared-identifier nodes: phone, address, bank_account (key: the value), linked to every
  person or employer carrying that value;
- relationships, one per event row: EMPLOYED_BY (person->employer), CONTRIBUTED
  (employer->person), VISITED (person->clinic), PURCHASED (person->pharmacy), LINKED
  (agency->person|employer), HAS_PHONE / HAS_ADDRESS / HAS_BANK_ACCOUNT; benefits and labels
  are facts on the person / entity.

The pipeline reads the whole snapshot back with `dataset()` and computes from that, so both
backends give identical results for the same input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graph.dataset import Dataset


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

    def close(self) -> None:
        """Release connections."""


class StoreLease:
    """A held store lease: `renew` while the run is alive, `release` when done."""

    def renew(self) -> None:
        """Extend the lease (called with the run's heartbeat)."""

    def release(self) -> None:
        """Give the lease up."""
