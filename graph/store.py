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
    type: str                       # EMPLOYED_BY, VISITED, HAS_PHONE, ...
    count: int = 1                  # parallel event rows folded into one edge


@dataclass
class Subgraph:
    """Nodes with their attributes, and edges among them."""

    nodes: dict[EntityRef, dict[str, Any]] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    truncated: bool = False         # a limit cut the expansion short


@dataclass(frozen=True)
class SnapshotInfo:
    content_hash: str
    loaded_at: datetime
    row_counts: dict[str, int]


class GraphStore(ABC):
    """A graph store holding one dataset snapshot at a time."""

    @abstractmethod
    def load(self, dataset: Dataset) -> SnapshotInfo:
        """Replace the snapshot with `dataset`, all or nothing: on failure the old one stays."""

    @abstractmethod
    def snapshot(self) -> SnapshotInfo | None:
        """What is loaded now, or None when the store is empty."""

    @abstractmethod
    def dataset(self) -> Dataset:
        """The whole snapshot as typed tables (raises NoSnapshot when empty)."""

    @abstractmethod
    def entity(self, ref: EntityRef) -> dict[str, Any] | None:
        """The node's attributes, or None when it does not exist."""

    @abstractmethod
    def neighbours(self, ref: EntityRef, *, hops: int = 1, limit: int = 200,
                   rel_types: tuple[str, ...] | None = None) -> Subgraph:
        """Nodes within `hops` of `ref` (at most `limit` nodes, nearest first) and their edges."""

    @abstractmethod
    def shortest_path(self, source: EntityRef, target: EntityRef, *, max_hops: int = 6) -> Subgraph | None:
        """One shortest path between two nodes, or None when none is within `max_hops`."""

    @abstractmethod
    def subgraph(self, refs: list[EntityRef]) -> Subgraph:
        """The given nodes and every edge among them."""

    def ping(self) -> bool:
        """True when the store is reachable."""
        return True

    def close(self) -> None:
        """Release connections."""
