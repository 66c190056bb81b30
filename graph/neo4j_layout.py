"""Where each table of the graph model lives in Neo4j: labels, relationship types, which columns are
kept only as end nodes. Shared by the writer (graph/neo4j_ingest.py), the reader
(graph/neo4j_read.py) and the store (graph/neo4j_store.py); the layout itself is described in
the docstring of graph/neo4j_store.py.
"""

from __future__ import annotations

from graph.projection import NODE_TYPES, REL_TYPES

LABELS: dict[str, str] = {
    "person": "Person",
    "employer": "Employer",
    "clinic": "Clinic",
    "pharmacy": "Pharmacy",
    "agency": "Agency",
    "phone": "Phone",
    "address": "Address",
    "bank_account": "BankAccount",
}
NODE_TYPE_OF_LABEL = {v: k for k, v in LABELS.items()}
FACT_LABELS: dict[str, str] = {
    "benefits": "Benefit",
    "labels": "RiskLabel",
    "inspections": "Inspection",
    "wage_arrears": "WageArrears",
    "commitments": "Commitment",
    "deaths": "DeathRecord",
    "custody": "CustodyRecord",
}
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
TYPE_RANK = {t: i for i, t in enumerate(NODE_TYPES)}
REL_RANK = {r: i for i, r in enumerate(REL_TYPES)}


def cypher_name(name: str) -> str:
    """A Cypher identifier, backtick-quoted (extra columns may have any name)."""
    return "`" + name.replace("`", "``") + "`"
