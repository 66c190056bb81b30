"""The same dataset gives the same scores and rings on the memory store and on a real Neo4j."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from composer.pipeline import run_pipeline
from composer.protect import reveal_evidence
from graph.factory import field_cipher, open_store
from riskgraph.settings import Settings
from tests.factories import SAMPLE

if TYPE_CHECKING:
    from graph.neo4j_store import Neo4jGraphStore


@pytest.mark.neo4j
def test_memory_and_neo4j_give_the_same_results(tmp_path: Path, neo4j_store: Neo4jGraphStore) -> None:
    outs, hits, links = {}, {}, {}
    for name, url in (("memory", f"memory://{tmp_path / 'store'}"), ("neo4j", neo4j_store.url)):
        settings = Settings(home=tmp_path / f"home-{name}", store_url=url, progress=False)
        run_pipeline(data=SAMPLE, out=tmp_path / name, settings=settings)
        outs[name] = tmp_path / name
        # personal evidence values are encrypted (fresh nonces, each home its own key): compare plain
        h = pd.read_csv(outs[name] / "rule_hits.csv")
        cipher = field_cipher(settings)
        hits[name] = h.assign(evidence=[reveal_evidence(e, cipher) for e in h["evidence"].tolist()])
        store = open_store(url, settings)
        try:
            links[name] = store.same_person()  # the resolution's SAME_PERSON links (docs/resolution.md)
        finally:
            store.close()
    a = pd.read_csv(outs["memory"] / "scores.csv", dtype={"entity_id": str})
    b = pd.read_csv(outs["neo4j"] / "scores.csv", dtype={"entity_id": str})
    same = ["entity_type", "entity_id", "grade", "rule_hits"]
    assert a[same].equals(b[same])
    assert (a["risk_score"] - b["risk_score"]).abs().max() <= 1e-6
    assert (a["credit_points"] - b["credit_points"]).abs().max() <= 1e-3
    ra, rb = pd.read_csv(outs["memory"] / "rings.csv"), pd.read_csv(outs["neo4j"] / "rings.csv")
    assert ra.equals(rb)
    assert hits["memory"].equals(hits["neo4j"])
    pd.testing.assert_frame_equal(links["memory"], links["neo4j"])
    resolved = pd.read_csv(outs["memory"] / "resolved_persons.csv", dtype=str, keep_default_na=False)
    merged = resolved[resolved["person_id"] != resolved["golden_id"]]
    assert len(merged) > 0  # the sample plants duplicate person records
    assert links["memory"]["person_id"].tolist() == sorted(merged["person_id"])
