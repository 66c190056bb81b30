"""Ring evidence for the investigation views: the shared identifiers behind a ring, by value.

Ring detection (features/rings) names a shared phone, bank account or address in its evidence by a
keyed pseudonym (`phone#tok-<token>`, under the installation's masking key), so rings.csv and the
results database hold no personal data. The ring view maps each pseudonym back to the graph's own
identifier node (its value) through the ring members' attributes, keyed with the same `Tokens`;
the caller then masks those values by role, exactly as neighbourhoods do, so a ring drawn over a
neighbourhood lands on the same identifier nodes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from features.rings.identity import identifier_label
from graph.contract import IDENTIFIER_TYPES
from graph.projection import IDENTIFIER_RELATIONSHIPS
from graph.store import EntityRef, Subgraph
from riskgraph.server_keys import Tokens

HOLDER_TYPES = ("person", "employer")  # the entity types that carry identifier columns


def holders(nodes: Iterable[dict[str, Any]]) -> list[EntityRef]:
    """The evidence nodes that may hold a shared identifier (persons and employers)."""
    return [EntityRef(n["entity_type"], str(n["entity_id"])) for n in nodes if n["entity_type"] in HOLDER_TYPES]


def pseudonyms(nodes: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """(type, pseudonym) of the identifier nodes in ring evidence."""
    return {(n["entity_type"], str(n["entity_id"])) for n in nodes if n["entity_type"] in IDENTIFIER_TYPES}


def identifier_values(
    sub: Subgraph, wanted: set[tuple[str, str]], tokens: Tokens | None = None
) -> dict[tuple[str, str], str]:
    """(type, pseudonym) -> the identifier's value, from the holders' attributes in `sub`.
    `tokens` are the installation's masking tokens, the ones the run keyed its pseudonyms with.
    Pseudonyms no holder explains (attributes missing from the store) are left out."""
    if not wanted:
        return {}
    rows = [
        (id_type, str(value))
        for attrs in sub.nodes.values()
        for id_type in IDENTIFIER_TYPES
        if _present(value := attrs.get(id_type))
    ]
    if not rows:
        return {}
    types = pd.Series([t for t, _ in rows], dtype="str")
    values = pd.Series([v for _, v in rows], dtype="str")
    # the same pseudonym features/rings wrote
    labels = identifier_label(types, values.str.strip().str.casefold(), tokens)
    found = {(t, str(label)): v for (t, v), label in zip(rows, labels)}
    return {key: found[key] for key in wanted if key in found}


def relation(rel: str, target_type: str) -> str:
    """The graph's relationship name for an evidence edge to a shared identifier (`has_phone` is
    `HAS_PHONE` in neighbourhoods); other relations unchanged."""
    if target_type in IDENTIFIER_RELATIONSHIPS and rel == f"has_{target_type}":
        return IDENTIFIER_RELATIONSHIPS[target_type]
    return rel


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return str(value).strip() != ""
