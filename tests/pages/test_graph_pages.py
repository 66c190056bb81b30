"""The API docs and the graph in a real browser with the network cut off: /docs and /redoc from the
vendored assets, progressive expansion of the explorer, and ring focus on an identity ring (the
shared phone or bank account by value for an investigator, as a masked token for an inspector)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from api.security import Tokens, mask_value
from tests.pages.support import Shooter

GRAPH = "[data-testid=graph-canvas]"
IDENTIFIERS = ("phone", "bank_account", "address")


@pytest.fixture
def offline(page: Any, server: str) -> list[dict[str, str]]:
    """Only the test server answers: every other request is aborted and listed."""
    blocked: list[dict[str, str]] = []

    def handle(route: Any) -> None:
        request = route.request
        if request.url.startswith(server):
            route.continue_()
        else:
            blocked.append({"url": request.url, "type": request.resource_type})
            route.abort("internetdisconnected")

    page.context.route("**/*", handle)
    return blocked


def graph(page: Any, script: str) -> Any:
    """Evaluate `script` (a function body) with `g`, the explorer's GraphView."""
    return page.evaluate(f"() => {{ const g = document.querySelector('{GRAPH}').rgGraph; {script} }}")


def wait_drawn(page: Any, more_than: int = 1) -> int:
    page.wait_for_function(
        f"n => {{ const c = document.querySelector('{GRAPH}'); return c && c.rgGraph && c.rgGraph.counts().nodes > n; }}",
        arg=more_than,
    )
    return int(graph(page, "return g.counts().nodes;"))


def label_overlaps(page: Any) -> tuple[int, int]:
    """(overlapping pairs of node label boxes, drawn nodes) in model coordinates."""
    return tuple(
        graph(
            page,
            """const boxes = g.cy.nodes().filter(n => !n.hasClass('hidden')).map(n => n.boundingBox({includeLabels: true}));
            let n = 0;
            for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
              const a = boxes[i], b = boxes[j];
              if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) n++;
            }
            return [n, boxes.length];""",
        )
    )


def test_api_docs_work_offline(page: Any, offline: list[dict[str, str]], shoot: Shooter) -> None:
    """Swagger UI lists the operations and ReDoc renders them, with nothing loaded from the internet."""
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("RiskGraph API")
    expect(page.locator(".opblock-summary-path", has_text="/v1/credit").first).to_be_visible()
    assert page.locator(".opblock").count() > 10
    expect(page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()  # X-API-Key scheme
    shoot("swagger-ui")

    page.goto("/redoc")
    expect(page.locator("h1")).to_contain_text("RiskGraph API")
    expect(page.locator("h2", has_text="Credit grade of one entity (audited)")).to_be_visible()
    expect(page.get_by_text("/v1/credit/{entity_type}/{entity_id}").first).to_be_attached()
    shoot("redoc")
    # ReDoc's "powered by" logo is an image on its CDN; nothing else may have been asked for
    needed = [b for b in offline if b["type"] in ("script", "stylesheet", "font", "fetch", "xhr")]
    assert not needed, needed


def test_progressive_expansion(
    page: Any, offline: list[dict[str, str]], login: Any, api_get: Any, shoot: Shooter
) -> None:
    """The busiest clinic: its direct neighbours a batch at a time, the rest counted as hidden; "show
    more" and expanding a person draw more; labels of the drawn nodes do not pile up."""
    clinics = api_get("/v1/risk/clinic", limit=50)["items"]
    sizes = {
        c["entity_id"]: len(api_get(f"/v1/entities/clinic/{c['entity_id']}/neighbours", limit=1000)["nodes"])
        for c in clinics[:10]
    }
    clinic = max(sizes, key=lambda k: sizes[k])
    assert sizes[clinic] > 30, sizes
    login("investigator", f"#/entity/clinic/{clinic}")
    status = page.get_by_test_id("graph-status")
    expect(status).to_have_attribute("data-hidden", re.compile(r"^[1-9]\d*$"))
    first = wait_drawn(page)
    hidden = int(status.get_attribute("data-hidden") or 0)
    assert first + hidden == sizes[clinic], (first, hidden, sizes[clinic])  # all of them drawn or counted
    assert first <= 26  # the clinic and one batch, not a hairball
    expect(status).to_contain_text(f"{hidden} more not drawn")
    page.locator(GRAPH).scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    overlaps, drawn = label_overlaps(page)
    assert overlaps <= drawn // 20, (overlaps, drawn)  # labels pushed apart after the layout
    shoot("clinic-first-batch")

    page.locator("[data-action=more]").click()
    expect(status).not_to_have_attribute("data-hidden", str(hidden))
    second = int(graph(page, "return g.counts().nodes;"))
    assert second > first and int(status.get_attribute("data-hidden") or 0) == hidden - (second - first)

    # a person: selected from the node list, expanded with the button, then its own neighbours are drawn
    person = graph(
        page,
        "return g.cy.nodes().filter(n => n.data('node').type === 'person').map(n => n.data('node').id)[0];",
    )
    page.get_by_test_id("graph-node-list").locator(f"button[data-key='person:{person}']").click()
    expect(page.get_by_test_id("graph-selected")).to_contain_text(person)
    before = int(graph(page, "return g.counts().nodes;"))
    page.get_by_test_id("graph-selected").locator("[data-action=expand]").click()
    expect(page.get_by_test_id("explorer")).to_have_attribute("data-expanded", "1")
    page.wait_for_function(f"n => document.querySelector('{GRAPH}').rgGraph.counts().nodes > n", arg=before)
    own = api_get(f"/v1/entities/person/{person}/neighbours")
    drawn_keys = set(graph(page, "return g.cy.nodes().map(n => n.id());"))
    assert {f"{n['type']}:{n['id']}" for n in own["nodes"]} <= drawn_keys  # a person has few: all drawn
    expect(page.get_by_test_id("node-hidden")).to_contain_text("All its neighbours are drawn")

    # double-clicking another drawn person on the canvas expands it too
    other = graph(
        page,
        f"""return g.cy.nodes().filter(n => n.data('node').type === 'person' && n.id() !== 'person:{person}'
            && !n.hasClass('has-hidden')).map(n => n.id())[0];""",
    )
    page.locator(GRAPH).scroll_into_view_if_needed()
    for _ in range(10):  # the layout may still be settling on a busy machine: aim again
        box = page.locator(GRAPH).bounding_box()
        pos = graph(page, f"return g.cy.getElementById('{other}').renderedPosition();")
        page.mouse.dblclick(box["x"] + pos["x"], box["y"] + pos["y"])
        try:
            page.wait_for_function(
                "() => document.querySelector('[data-testid=explorer]').dataset.expanded !== '1'", timeout=3000
            )
            break
        except PlaywrightTimeout:
            pass
    expect(page.get_by_test_id("explorer")).to_have_attribute("data-expanded", "2")
    shoot("expanded")


def _identity_ring(api_get: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An identity ring with a shared phone (else bank account), and that identifier's node."""
    rings = api_get("/v1/rings", ring_type="identity", limit=500)["items"]
    assert rings, "the sample data should have an identity ring"
    for kind in ("phone", "bank_account"):
        for r in rings:
            detail = api_get(f"/v1/rings/{r['ring_id']}")
            shared = [n for n in detail["subgraph"]["nodes"] if n["type"] == kind]
            if shared:
                return detail, shared[0]
    raise AssertionError("no identity ring shares a phone or bank account")


def test_ring_focus_shows_shared_identifier_by_role(
    page: Any,
    offline: list[dict[str, str]],
    login: Any,
    keys: dict[str, str],
    api_get: Any,
    shoot: Shooter,
    pages_home: Path,
) -> None:
    """Ring focus on an identity ring: the ring stands out (members marked, the rest dimmed), and the
    shared phone or bank account is drawn with its value for an investigator, its token for an inspector."""
    ring, ident = _identity_ring(api_get)
    value, key = ident["id"], f"{ident['type']}:{ident['id']}"
    member = ring["members"][0]
    attrs = api_get(f"/v1/entities/{member['type']}/{member['id']}")["attributes"]
    assert attrs[ident["type"]] == value  # the member's own phone / bank account, not a pseudonym

    login("investigator", f"#/ring/{ring['ring_id']}")
    explorer = page.get_by_test_id("explorer")
    expect(explorer).to_have_attribute("data-focus", "on")
    shared = page.get_by_test_id("ring-shared")
    expect(shared.locator(f"tr[data-type={ident['type']}] code")).to_have_text(value)
    expect(shared.locator(f"tr[data-type={ident['type']}] td.num")).to_have_text(str(ident["attributes"]["shared_by"]))
    node = graph(
        page,
        f"""const n = g.cy.getElementById('{key}');
        return {{label: n.data('label'), shared: n.hasClass('shared'), dim: n.hasClass('dim')}};""",
    )
    assert node["shared"] and not node["dim"] and value in node["label"], node
    marks = graph(
        page,
        """return {members: g.cy.nodes('.member').map(n => n.id()),
                dim: g.cy.nodes('.dim').length, ring: g.cy.edges('.ring').length};""",
    )
    assert sorted(marks["members"]) == sorted(f"{m['type']}:{m['id']}" for m in ring["members"])
    assert marks["dim"] > 0 and marks["ring"] >= len(ring["subgraph"]["edges"]), marks  # context drawn, dimmed
    shoot("investigator-ring-focus")

    page.locator("[data-action=focus]").click()  # "Show all" lifts the dimming, "Ring focus" brings it back
    expect(explorer).to_have_attribute("data-focus", "off")
    assert graph(page, "return g.cy.nodes('.dim').length;") == 0
    page.locator("[data-action=focus]").click()
    expect(explorer).to_have_attribute("data-focus", "on")

    token = mask_value(value, Tokens.of(pages_home))
    page.evaluate("k => localStorage.setItem('riskgraph.apiKey', k)", keys["inspector"])
    page.reload()
    expect(page.get_by_test_id("explorer")).to_have_attribute("data-focus", "on")
    expect(page.get_by_test_id("ring-shared").locator(f"tr[data-type={ident['type']}] code")).to_have_text(token)
    label = graph(page, f"return g.cy.getElementById('{ident['type']}:{token}').data('label');")
    assert token in label
    assert value not in page.content()
    assert graph(page, "return JSON.stringify(g.cy.nodes().map(n => n.data('node')));").find(value) < 0
    shoot("inspector-ring-focus")


def test_entity_page_ring_focus(page: Any, offline: list[dict[str, str]], login: Any, api_get: Any) -> None:
    """On an entity page, "Show in graph" puts one of its rings in focus over the neighbourhood."""
    ring, ident = _identity_ring(api_get)
    member = ring["members"][0]
    login("investigator", f"#/entity/{member['type']}/{member['id']}")
    wait_drawn(page)
    page.get_by_test_id("entity-rings").locator(f"[data-ring='{ring['ring_id']}'] [data-action=show-ring]").click()
    expect(page.get_by_test_id("explorer")).to_have_attribute("data-focus", "on")
    members = graph(page, "return g.cy.nodes('.member').map(n => n.id());")
    assert sorted(members) == sorted(f"{m['type']}:{m['id']}" for m in ring["members"])
    assert graph(page, f"return g.cy.getElementById('{ident['type']}:{ident['id']}').hasClass('shared');")
    assert graph(page, "return g.cy.nodes('.dim').length;") > 0  # the member's other links, dimmed


def test_two_records_of_one_person_are_drawn_with_same_person(
    page: Any, offline: list[dict[str, str]], login: Any, pages_home: Path, api_get: Any, shoot: Shooter
) -> None:
    """A person record merged into another record's golden person (issue 16): its entity page draws
    the SAME_PERSON edge to the golden record, labelled with how they matched, and the relationship
    filter can hide it."""
    from riskgraph.results import ResultsDB
    from tests.pages.conftest import page_settings

    settings = page_settings(pages_home)
    run_id = ResultsDB.of(settings).served_run_id()
    resolved = pd.read_csv(
        settings.home / "runs" / str(run_id) / "out" / "resolved_persons.csv", dtype=str, keep_default_na=False
    )
    record, golden = resolved[resolved["person_id"] != resolved["golden_id"]].iloc[0][["person_id", "golden_id"]]
    edge = next(
        e for e in api_get(f"/v1/entities/person/{record}/neighbours")["edges"] if e["relation"] == "SAME_PERSON"
    )
    login("investigator", f"#/entity/person/{record}")
    wait_drawn(page)
    edge_id = f"person:{record}|SAME_PERSON|person:{golden}"
    page.wait_for_function(
        f"id => document.querySelector('{GRAPH}').rgGraph.cy.getElementById(id).nonempty()", arg=edge_id
    )
    label = graph(page, f"return g.cy.getElementById('{edge_id}').data('label');")
    assert label.startswith("SAME_PERSON (") and edge["properties"]["matched_on"] in label, label
    box = page.locator("label.rel-box", has_text="SAME_PERSON").locator("input")
    page.locator("details.rel-filter summary").click()
    box.uncheck()
    page.wait_for_function(
        f"id => document.querySelector('{GRAPH}').rgGraph.cy.getElementById(id).hasClass('hidden')", arg=edge_id
    )
    shoot("same-person")
