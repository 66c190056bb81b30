"""Entity detail, neighbours, paths and rings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import mask_value
from composer.pipeline import run_pipeline
from graph.projection import REL_TYPES
from tests.api.support import headers, make_settings

H = headers("investigator")
IDENTIFIERS = ("phone", "address", "bank_account")


@pytest.fixture(scope="module", params=["memory", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def client(
    request: pytest.FixtureRequest,
    scored_home: Path,
    served_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """The investigator endpoints over each graph store: the same tests pass on both."""
    if request.param == "memory":
        settings = make_settings(served_home)
    else:
        from graph.neo4j_store import Neo4jGraphStore

        url = request.getfixturevalue("neo4j_url")
        Neo4jGraphStore(url).clear()
        home = tmp_path_factory.mktemp("api-neo4j")
        settings = make_settings(home, store_url=url)
        run_pipeline(data=scored_home.parent / "data", out=home / "out", settings=settings)
    with TestClient(create_app(settings)) as c:
        yield c


def test_entity_detail(client: TestClient) -> None:
    body = client.get("/v1/entities/person/P0000001", headers=H).json()
    assert body["attributes"]["person_id"] == "P0000001"
    assert body["credit"]["entity_id"] == "P0000001"
    for hit in body["rule_hits"]:
        assert {"rule_id", "severity", "evidence"} <= set(hit)
    assert client.get("/v1/entities/person/NOPE", headers=H).status_code == 404
    assert client.get("/v1/entities/phone/123", headers=H).status_code == 422


def test_neighbours_hops_and_limit(client: TestClient) -> None:
    one = client.get("/v1/entities/person/P0000001/neighbours", headers=H).json()
    two = client.get("/v1/entities/person/P0000001/neighbours", params={"hops": 2}, headers=H).json()
    assert len(two["nodes"]) >= len(one["nodes"]) > 1
    small = client.get("/v1/entities/person/P0000001/neighbours", params={"hops": 3, "limit": 3}, headers=H).json()
    assert len(small["nodes"]) <= 3 and small["truncated"]
    only = client.get("/v1/entities/person/P0000001/neighbours", params={"rel_type": "VISITED"}, headers=H).json()
    assert all(e["relation"] == "VISITED" for e in only["edges"])
    for params in ({"hops": 4}, {"hops": 0}, {"limit": 0}, {"limit": 5000}, {"rel_type": "LOVES"}):
        assert client.get("/v1/entities/person/P0000001/neighbours", params=params, headers=H).status_code == 422
    assert client.get("/v1/entities/person/NOPE/neighbours", headers=H).status_code == 404


def test_paths(client: TestClient) -> None:
    nb = client.get("/v1/entities/person/P0000001/neighbours", params={"hops": 2}, headers=H).json()
    other = next(n for n in nb["nodes"] if n["type"] == "person" and n["id"] != "P0000001")
    r = client.get(
        "/v1/paths",
        params={"source_type": "person", "source_id": "P0000001", "target_type": "person", "target_id": other["id"]},
        headers=H,
    ).json()
    assert r["found"] and 1 <= r["hops"] <= 2 and len(r["edges"]) == r["hops"]
    r = client.get(
        "/v1/paths",
        params={"source_type": "person", "source_id": "P0000001", "target_type": "person", "target_id": "NOPE"},
        headers=H,
    )
    assert r.status_code == 404
    r = client.get("/v1/paths", params={"source_type": "person", "source_id": "P0000001"}, headers=H)
    assert r.status_code == 422


def test_a_record_s_neighbours_include_its_other_record_via_same_person(client: TestClient) -> None:
    """A person record merged into another record's golden person (issue 16) is linked to it by
    SAME_PERSON, with match_probability and matched_on, on both stores, for every role."""
    state = client.app.state.riskgraph
    links = state.store.same_person()
    resolved = pd.read_csv(
        state.settings.home / "runs" / state.book.run_id / "out" / "resolved_persons.csv",
        dtype={"person_id": str, "golden_id": str},
        keep_default_na=False,
    )
    merged = resolved[resolved["person_id"] != resolved["golden_id"]]
    assert len(links) == len(merged) > 0  # the synthetic data plants duplicate records
    assert links["person_id"].tolist() == sorted(merged["person_id"])
    record, golden = links["person_id"].iloc[0], links["golden_id"].iloc[0]
    for role in ("investigator", "inspector"):
        body = client.get(f"/v1/entities/person/{record}/neighbours", headers=headers(role)).json()
        assert {"type": "person", "id": golden} in [{"type": n["type"], "id": n["id"]} for n in body["nodes"]]
        same = [e for e in body["edges"] if e["relation"] == "SAME_PERSON"]
        assert [(e["source_id"], e["target_id"]) for e in same] == [(record, golden)]
        props = same[0]["properties"]
        assert props["matched_on"] in {"id_number", "model", "review"}
        assert props.get("match_probability", 1.0) <= 1.0
    only = client.get(f"/v1/entities/person/{golden}/neighbours", params={"rel_type": "SAME_PERSON"}, headers=H).json()
    others = set(links.loc[links["golden_id"] == golden, "person_id"])
    assert {n["id"] for n in only["nodes"]} == others | {golden}
    assert {e["relation"] for e in only["edges"]} == {"SAME_PERSON"}
    path = client.get(
        "/v1/paths",
        params={"source_type": "person", "source_id": record, "target_type": "person", "target_id": golden},
        headers=H,
    ).json()
    assert path["found"] and path["hops"] == 1 and path["edges"][0]["relation"] == "SAME_PERSON"


def test_the_explorer_filters_every_relationship_type() -> None:
    """The graph explorer's relationship-type filter (api/static/js/api.js) lists exactly the
    API's relationship types, SAME_PERSON included."""
    js = (Path(__file__).resolve().parents[2] / "api" / "static" / "js" / "api.js").read_text()
    listed = re.search(r"export const REL_TYPES = \[(.*?)\];", js, re.S)
    assert listed is not None
    assert tuple(re.findall(r'"([A-Z_]+)"', listed.group(1))) == REL_TYPES


def test_rings_list_and_detail(client: TestClient) -> None:
    page = client.get("/v1/rings", params={"limit": 1}, headers=H).json()
    assert page["total"] >= 1 and len(page["items"]) == 1
    scores = [x["ring_score"] for x in client.get("/v1/rings", headers=H).json()["items"]]
    assert scores == sorted(scores, reverse=True)
    ring = page["items"][0]
    detail = client.get(f"/v1/rings/{ring['ring_id']}", headers=H).json()
    assert detail["size"] == ring["size"] and detail["members"] and detail["subgraph"]["edges"]
    member = detail["members"][0]
    mine = client.get("/v1/rings", params={"entity_type": member["type"], "entity_id": member["id"]}, headers=H).json()
    assert ring["ring_id"] in [x["ring_id"] for x in mine["items"]]
    if page["next_cursor"]:
        nxt = client.get("/v1/rings", params={"limit": 1, "cursor": page["next_cursor"]}, headers=H).json()
        assert nxt["items"][0]["ring_id"] != ring["ring_id"]
    assert client.get("/v1/rings/nope", headers=H).status_code == 404
    assert client.get("/v1/rings", params={"entity_id": "P1"}, headers=H).status_code == 422


def test_ring_identifiers_by_value_for_investigators_masked_for_inspectors(client: TestClient) -> None:
    """The shared phone / bank account behind an identity ring: its value (the same node as in the
    members' neighbourhoods) for investigators, the neighbourhoods' masked token for inspectors."""
    items = client.get("/v1/rings", params={"limit": 500}, headers=H).json()["items"]
    with_ids = [
        r
        for r in items
        if r["ring_type"] in ("identity", "broker")
        and any(
            n["type"] in IDENTIFIERS
            for n in client.get(f"/v1/rings/{r['ring_id']}", headers=H).json()["subgraph"]["nodes"]
        )
    ]
    assert with_ids, "the API test data should have a ring linked by shared identifiers"
    identity = [r for r in with_ids if r["ring_type"] == "identity"]
    rid = (identity or with_ids)[0]["ring_id"]
    shown = client.get(f"/v1/rings/{rid}", headers=H).json()
    hidden = client.get(f"/v1/rings/{rid}", headers=headers("inspector")).json()
    assert len(shown["subgraph"]["nodes"]) == len(hidden["subgraph"]["nodes"])
    assert not shown["subgraph"]["masked"] and hidden["subgraph"]["masked"]

    real = [n for n in shown["subgraph"]["nodes"] if n["type"] in IDENTIFIERS]
    masked = [n for n in hidden["subgraph"]["nodes"] if n["type"] in IDENTIFIERS]
    assert all(n["attributes"]["shared_by"] >= 2 for n in real)
    members = {(m["type"], m["id"]) for m in shown["members"]}
    for node in real:
        assert "#" not in node["id"] and not node["id"].startswith("tok-"), node
        holders = [
            (e["source_type"], e["source_id"])
            for e in shown["subgraph"]["edges"]
            if (e["target_type"], e["target_id"]) == (node["type"], node["id"])
        ]
        assert len(holders) == node["attributes"]["shared_by"] and set(holders) <= members
        assert {e["relation"] for e in shown["subgraph"]["edges"] if e["target_id"] == node["id"]} == {
            f"HAS_{node['type'].upper()}"
        }
        holder_type, holder_id = holders[0]
        attrs = client.get(f"/v1/entities/{holder_type}/{holder_id}", headers=H).json()["attributes"]
        assert str(attrs[node["type"]]) == node["id"]  # the member's own phone / bank account
        around = client.get(f"/v1/entities/{holder_type}/{holder_id}/neighbours", headers=H).json()
        assert (node["type"], node["id"]) in {(n["type"], n["id"]) for n in around["nodes"]}
    tokens = client.app.state.riskgraph.tokens
    assert {(n["type"], n["id"]) for n in masked} == {(n["type"], mask_value(n["id"], tokens)) for n in real}
    for node in masked:
        holder = next(e for e in hidden["subgraph"]["edges"] if e["target_id"] == node["id"])
        around = client.get(
            f"/v1/entities/{holder['source_type']}/{holder['source_id']}/neighbours", headers=headers("inspector")
        ).json()
        assert (node["type"], node["id"]) in {(n["type"], n["id"]) for n in around["nodes"]}
    assert not any(n["id"] in str(hidden) for n in real)  # no value leaks to inspectors


def test_docs_pages_load_vendored_assets_only(client: TestClient) -> None:
    """/docs and /redoc work offline: every script, stylesheet and icon they name is served here."""
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert urls and all(u.startswith("/static/vendor/") for u in urls), urls
        for url in urls:
            assert client.get(url).status_code == 200, url
        assert "cdn." not in r.text and "fonts.googleapis" not in r.text
    assert "/openapi.json" in client.get("/docs").text
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert "/docs" not in client.get("/openapi.json").json()["paths"]


def test_the_memory_store_builds_its_graph_before_the_first_query(served_home: Path) -> None:
    """The projection (about 10 s at 1M persons) is built in the graph pool as the results load,
    not in the first investigator's query, which would wait for it past the graph timeout."""
    import time

    with TestClient(create_app(make_settings(served_home))) as c:
        store = c.app.state.riskgraph.store
        deadline = time.monotonic() + 60
        while store._projection is None and time.monotonic() < deadline:
            time.sleep(0.05)
        built = store._projection
        assert built is not None and store._projection_id == store._current_id()
        person = str(store.dataset().table("persons")["person_id"].iloc[0])
        r = c.get(f"/v1/entities/person/{person}/neighbours", headers=H)
        assert r.status_code == 200, r.text
        assert store._projection is built  # the query used it, nothing was rebuilt
