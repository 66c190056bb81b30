"""Reading a snapshot's tables and nodes back from Neo4j, as the frames and attributes they were
loaded from (the layout is described in graph/neo4j_store.py). Columns the snapshot keeps
encrypted (its `encrypted` property) are decrypted here, in memory, with the store's cipher."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

import pandas as pd

from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN
from graph.neo4j_layout import END_COLUMNS, EVENT_TABLES, FACT_LABELS, LABELS, cypher_name
from graph.neo4j_runner import CypherRunner
from riskgraph.field_crypto import TEXT_PREFIX, CannotDecrypt, FieldCipher

READ_BATCH_SIZE = 20_000


def read_table(
    runner: CypherRunner,
    snap: int,
    name: str,
    cols: list[list[str]],
    counts: dict[str, int],
    cipher: FieldCipher | None = None,
    encrypted: Collection[str] = (),
) -> pd.DataFrame:
    """Table `name` of snapshot `snap`, with its columns `cols` ([name, dtype], in order), in its
    loaded order; its `encrypted` columns decrypted with `cipher`. Each page comes back as ONE
    record holding a list per row (not a record per row: decoding those was most of the read time)."""
    etype = next((t for t in ENTITY_TYPES if ENTITY_TABLE[t] == name), None)
    source_of = dict(zip(END_COLUMNS.get(name, ()), ("a._id", "b._id")))

    def value(c: str, dtype: str) -> str:
        v = source_of.get(c) or f"x.{cypher_name(c)}"
        return f"toString({v})" if dtype.startswith("datetime64") else v

    names = ["_key"] + [c for c, _ in cols]

    def row(key: str) -> str:
        return "collect([" + ", ".join([key] + [value(c, dtype) for c, dtype in cols]) + "]) AS rows"

    pages: list[list[list[Any]]] = []
    if etype is not None:
        label = LABELS[etype]
        for ids in _id_pages(runner, snap, label, READ_BATCH_SIZE):
            pages.append(
                runner.run(
                    f"UNWIND $ids AS id MATCH (x:{label} {{_snapshot: $s, _id: id}}) RETURN {row('x._id')}",
                    {"s": snap, "ids": ids},
                )[0]["rows"]
            )
    elif name in FACT_LABELS:
        for lo in range(0, counts.get(name, 0), READ_BATCH_SIZE):
            pages.append(
                runner.run(
                    f"MATCH (x:{FACT_LABELS[name]}) WHERE x._snapshot = $s AND x._row >= $lo "
                    f"AND x._row < $hi RETURN {row('x._row')}",
                    {"s": snap, "lo": lo, "hi": lo + READ_BATCH_SIZE},
                )[0]["rows"]
            )
    else:
        pages = _read_relationships(runner, snap, name, row("x._row"), counts)
    raw = pd.DataFrame([r for page in pages for r in page], columns=names)
    # the loaded table's order: an entity table's key (like graph/dataset.py), else its rows
    order = ID_COLUMN[etype] if etype is not None else "_key"
    raw = raw.sort_values(order, kind="mergesort").reset_index(drop=True)
    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    for c, dtype in cols:
        values = raw[c]
        if c in encrypted:
            values = pd.Series([reveal(v, c, cipher) for v in values.tolist()], dtype=object)
            if dtype == "bool":
                values = values.map({"True": True, "False": False})
        if dtype.startswith("datetime64"):
            out[c] = pd.to_datetime(values, format="%Y-%m-%d").astype(dtype)
        elif dtype == "str":
            out[c] = pd.Series(values.to_numpy(dtype=object), dtype="str")
        else:
            out[c] = pd.Series(values.to_numpy(dtype=object)).astype(dtype)
    return out


def _read_relationships(
    runner: CypherRunner, snap: int, name: str, rows: str, counts: dict[str, int]
) -> list[list[list[Any]]]:
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
    return [
        runner.run(
            f"UNWIND $ids AS id MATCH ({side}:{label} {{_snapshot: $s, _id: id}}) "
            f"MATCH (a)-[x:{rel}]->(b) RETURN {rows}",
            {"s": snap, "ids": ids},
        )[0]["rows"]
        for ids in _id_pages(runner, snap, label, per_page)
    ]


def _id_pages(runner: CypherRunner, snap: int, label: str, size: int) -> Iterator[list[Any]]:
    """The `_id`s of the snapshot's `label` nodes, ascending, `size` a page (keyset pagination
    on the unique (_snapshot, _id) index)."""
    after = ""
    while True:
        ids = runner.run(
            f"MATCH (n:{label}) WHERE n._snapshot = $s AND n._id > $after "
            f"WITH n._id AS id ORDER BY id LIMIT {size} RETURN collect(id) AS ids",
            {"s": snap, "after": after},
        )[0]["ids"]
        if not ids:
            return
        yield ids
        after = ids[-1]


def column_order(snapshot_node: dict[str, Any]) -> dict[str, list[str]]:
    """Each entity type's table columns, in order, from the snapshot node's stored schema."""
    schema = json.loads(snapshot_node["tables"])
    return {t: [c for c, _ in schema.get(ENTITY_TABLE[t], [])] for t in ENTITY_TYPES}


def encrypted_columns(snapshot_node: dict[str, Any]) -> dict[str, list[str]]:
    """{table: its columns stored encrypted} of a snapshot (none for one written without a cipher)."""
    return dict(json.loads(snapshot_node.get("encrypted") or "{}"))


def reveal(value: Any, column: str, cipher: FieldCipher | None) -> Any:
    """The plain value of a stored property: `enc1:` ciphertexts decrypted (bound to `column`),
    anything else unchanged; a ciphertext without a cipher is refused, never shown."""
    if cipher is not None:
        return cipher.decrypt_text(value, column)
    if isinstance(value, str) and value.startswith(TEXT_PREFIX):
        raise CannotDecrypt(f"{column} is stored encrypted and the store was opened without its key")
    return value


def identifier_value(node_type: str, props: dict[str, Any], cipher: FieldCipher | None) -> Any:
    """An identifier node's value: its `_value` decrypted when the node is keyed by a token, else
    its `_id` (a snapshot written without tokens)."""
    if props.get("_value") is not None:
        return reveal(props["_value"], node_type, cipher)
    return props.get("_id")


def _typed(text: Any, dtype: str) -> Any:
    """A decrypted attribute as the memory store gives it (numbers as numbers, dates as text)."""
    if dtype.startswith("float"):
        return float(text)
    if dtype.startswith("int"):
        return int(text)
    if dtype == "bool":
        return text == "True"
    return text


class NodeReader:
    """Attributes of a snapshot's nodes as the memory store gives them (see `attributes`)."""

    def __init__(self, snapshot_node: dict[str, Any], cipher: FieldCipher | None) -> None:
        schema = json.loads(snapshot_node["tables"])
        self.order = column_order(snapshot_node)
        self.types = {t: dict(map(tuple, schema.get(ENTITY_TABLE[t], []))) for t in ENTITY_TYPES}
        encrypted = encrypted_columns(snapshot_node)
        self.encrypted = {t: frozenset(encrypted.get(ENTITY_TABLE[t], ())) for t in ENTITY_TYPES}
        self.cipher = cipher

    def attributes(self, node_type: str, props: dict[str, Any]) -> dict[str, Any]:
        """Table column order, dates as YYYY-MM-DD, missing values absent, personal values
        decrypted; identifier nodes give {"id": value}."""
        if node_type not in ENTITY_TYPES:
            return {"id": identifier_value(node_type, props, self.cipher)} if props else {}
        return node_attributes(node_type, props, self.order, self)

    def reveal(self, node_type: str, column: str, value: Any) -> Any:
        if column not in self.encrypted[node_type]:
            return value
        return _typed(reveal(value, column, self.cipher), self.types[node_type].get(column, "str"))


def node_attributes(
    node_type: str, props: dict[str, Any], order: dict[str, list[str]], reader: NodeReader | None = None
) -> dict[str, Any]:
    """Node attributes as the memory store gives them: table column order, dates as YYYY-MM-DD,
    missing values absent (decrypted by `reader`, when given); identifier nodes give {"id": value}."""
    if node_type not in ENTITY_TYPES:
        return {"id": props.get("_id")} if props else {}
    out: dict[str, Any] = {}
    for c in order.get(node_type, []):
        v = props.get(c)
        if v is None:
            continue
        if reader is not None:
            v = reader.reveal(node_type, c, v)
        if hasattr(v, "iso_format"):
            v = v.iso_format()
        out[c] = v
    return out
