"""Personal data encrypted at rest in Neo4j (issue 19, item 4): after a pipeline run on the Neo4j
store, every node and relationship property read back through Cypher holds no known id number,
name, phone, address or bank account of the input in plain text; identifier nodes are keyed by
keyed tokens with their value kept as ciphertext; and the store still reads back the very dataset
that was loaded, and gives investigators' callers the plain values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from composer.pipeline import run_pipeline
from graph.dataset import load_dataset
from graph.factory import masking_tokens, open_store
from graph.store import EntityRef
from riskgraph.field_crypto import TEXT_PREFIX
from riskgraph.settings import Settings
from synth.generator import generate

if TYPE_CHECKING:
    from graph.neo4j_store import Neo4jGraphStore

PERSONS = 400
PERSONAL = ("id_number", "name", "phone", "address", "bank_account")


@pytest.mark.neo4j
def test_no_plain_personal_values_in_neo4j(
    tmp_path: Path, neo4j_url: str, neo4j_store: Neo4jGraphStore, no_lease: None
) -> None:
    data = tmp_path / "data"
    generate(persons=PERSONS, seed=7, out=data, progress=False)
    persons = pd.read_csv(data / "persons.csv", dtype=str)
    known = sorted({v for col in PERSONAL for v in persons[col].dropna().tolist()})
    assert len(known) >= 4 * PERSONS // 2
    settings = Settings(home=tmp_path / "home", store_url=neo4j_url, progress=False)
    result = run_pipeline(data=data, out=tmp_path / "out", settings=settings)

    nodes = neo4j_store._run("MATCH (n) RETURN labels(n) AS labels, properties(n) AS p")
    rels = neo4j_store._run("MATCH ()-[r]->() RETURN type(r) AS type, properties(r) AS p")
    assert len(nodes) > PERSONS and len(rels) > PERSONS
    text = "\n".join(str(r) for r in nodes + rels)
    assert [v for v in known if v in text] == []

    # identifier nodes: keyed by the token of their value, the value itself only as ciphertext
    tokens = masking_tokens(settings)
    phones = {r["p"]["_id"]: r["p"] for r in nodes if r["labels"] == ["Phone"]}
    assert phones and all(
        k.startswith(tokens.PREFIX) and p["_value"].startswith(TEXT_PREFIX) for k, p in phones.items()
    )
    assert tokens(persons["phone"].iloc[0]) in phones
    people = [r["p"] for r in nodes if r["labels"] == ["Person"]]
    assert all(p["id_number"].startswith(TEXT_PREFIX) for p in people if "id_number" in p)

    # the store reads the loaded dataset back in plain, and names identifiers by value
    store = open_store(neo4j_url, settings)
    try:
        snapshot = store.snapshot()
        assert snapshot is not None
        back = store.dataset(snapshot.id)
        loaded = load_dataset(data)
        for name, df in loaded.tables.items():
            pd.testing.assert_frame_equal(back.tables[name], df, check_exact=True, obj=name)
        first = persons.iloc[0]
        ref = EntityRef("person", first["person_id"])
        assert store.entity(ref)["name"] == first["name"]  # type: ignore[index]
        around = store.neighbours(ref, hops=1)
        assert EntityRef("phone", first["phone"]) in around.nodes
        assert around.nodes[EntityRef("phone", first["phone"])] == {"id": first["phone"]}
        assert store.entity(EntityRef("phone", first["phone"])) == {"id": first["phone"]}
    finally:
        store.close()
    assert result.run_id
