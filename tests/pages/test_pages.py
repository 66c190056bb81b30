"""The pages in a real browser: risk list, entity page and graph explorer, rings, paths, masking,
languages and models, on the scored sample data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.pages.support import Shooter

GRAPH = "[data-testid=graph-canvas]"


def graph_counts(page: Any) -> dict[str, int]:
    return page.evaluate(f"() => document.querySelector('{GRAPH}').rgGraph.counts()")


def wait_graph(page: Any, more_than: int = 1) -> dict[str, int]:
    page.wait_for_function(
        f"n => {{ const c = document.querySelector('{GRAPH}');"
        " return c && c.rgGraph && c.rgGraph.counts().nodes > n; }",
        arg=more_than,
    )
    return graph_counts(page)


def node_screen_position(page: Any, key: str) -> dict[str, float]:
    """Where node `key` ("type:id") is drawn, in page coordinates."""
    return page.evaluate(
        """([sel, key]) => {
        const el = document.querySelector(sel); const n = el.rgGraph.cy.getElementById(key);
        const p = n.renderedPosition(); const r = el.getBoundingClientRect();
        return {x: r.left + p.x, y: r.top + p.y}; }""",
        [GRAPH, key],
    )


def test_top_risk_clinic_story(page: Any, shoot: Shooter, keys: dict[str, str], pages_home: Path, api_get: Any) -> None:
    """A first-time user: key from the dev keys file, the clinic list filtered, the top clinic's
    reasons, rule evidence and rings, then its graph walked (a node selected on the canvas, expanded)."""
    top = api_get("/v1/risk/clinic", limit=1)["items"][0]
    detail = api_get(f"/v1/entities/clinic/{top['entity_id']}")

    page.goto("/")
    hint = page.get_by_test_id("dev-keys-hint")
    expect(hint).to_contain_text(str(pages_home / "api_keys.json"))
    shoot("key-page")
    page.fill("#api-key", keys["investigator"])
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_test_id("risk-page")).to_be_visible()

    page.locator(".tabs a[data-type=clinic]").click()
    expect(page.get_by_test_id("risk-page")).to_have_attribute("data-type", "clinic")
    page.locator(f"input[name=grade][value={top['grade']}]").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(rf"grade={top['grade']}"))
    rows = page.locator(".risk-table tbody tr")
    expect(rows.first).to_have_attribute("data-id", top["entity_id"])
    for grade in rows.evaluate_all("rs => rs.map(r => r.dataset.grade)"):
        assert grade == top["grade"]
    expect(rows.first.locator("td.reasons .reason-line").first).to_be_visible()  # top reasons filled in
    shoot("clinic-list-filtered")

    rows.first.locator("td").nth(3).click()  # anywhere on the row opens it
    head = page.get_by_test_id("entity-head")
    expect(head).to_have_attribute("data-id", top["entity_id"])
    expect(head.locator(".grade-large")).to_have_text(re.compile(top["grade"]))
    reasons = page.get_by_test_id("reasons").locator("li")
    expect(reasons).to_have_count(len(detail["credit"]["reasons"]))
    expect(reasons.first).to_contain_text(detail["credit"]["reasons"][0]["text"])
    expect(page.get_by_test_id("to-improve")).to_contain_text(detail["credit"]["to_improve"]["text"])
    for hit in detail["rule_hits"]:
        expect(page.locator(f"[data-testid=rule-evidence] [data-rule={hit['rule_id']}]")).to_be_visible()
    rings = page.get_by_test_id("entity-rings")
    if detail["rings"]:
        for ring in detail["rings"]:
            expect(rings.locator(f"[data-ring='{ring['ring_id']}']")).to_be_visible()
    else:
        expect(rings).to_contain_text("Not a member")

    before = wait_graph(page)
    shoot("top-clinic")
    neighbour = page.evaluate(f"""() => document.querySelector('{GRAPH}').rgGraph.cy.nodes()
        .filter(n => !n.hasClass('root') && n.data('node').type === 'person')
        .sort((a, b) => b.degree() - a.degree())[0].id()""")
    page.locator(GRAPH).scroll_into_view_if_needed()
    selected = page.get_by_test_id("graph-selected")
    # A real click on the canvas; the layout may still be settling on a busy machine, so aim again.
    for _ in range(10):
        pos = node_screen_position(page, neighbour)
        page.mouse.click(pos["x"], pos["y"])
        if neighbour.split(":")[1] in selected.inner_text():
            break
        page.wait_for_timeout(400)
    expect(selected).to_contain_text(neighbour.split(":")[1])
    selected.locator("[data-action=expand]").click()
    expect(page.get_by_test_id("explorer")).to_have_attribute("data-expanded", "1")
    after = graph_counts(page)
    assert after["nodes"] > before["nodes"], (before, after)
    shoot("graph-expanded")


def test_ring_view_and_path(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    """The rings list, one ring's members and evidence graph, a member's page and a path between two members."""
    rings = api_get("/v1/rings")["items"]
    assert rings, "the sample data should give at least one ring"
    ring = api_get(f"/v1/rings/{rings[0]['ring_id']}")
    login("investigator", "#/rings")
    expect(page.get_by_test_id("rings-page")).to_be_visible()
    page.locator(f"tr[data-ring='{ring['ring_id']}']").click()
    view = page.get_by_test_id("ring-page")
    expect(view).to_have_attribute("data-ring", ring["ring_id"])
    expect(view.locator(".ring-members tbody tr")).to_have_count(len(ring["members"]))
    counts = wait_graph(page, 1)
    assert counts["nodes"] >= len(ring["members"])
    n_members = page.evaluate(f"() => document.querySelector('{GRAPH}').rgGraph.cy.nodes('.member').length")
    assert n_members == len(ring["members"])
    shoot("ring-view")

    first, second = ring["members"][0], ring["members"][-1]
    view.locator(".ring-members a.entity-link").first.click()
    expect(page.get_by_test_id("entity-head")).to_have_attribute("data-id", first["id"])
    entry = page.get_by_test_id("entity-rings").locator(f"[data-ring='{ring['ring_id']}']")
    expect(entry).to_be_visible()
    wait_graph(page)
    entry.locator("[data-action=show-ring]").click()
    page.wait_for_function(f"() => document.querySelector('{GRAPH}').rgGraph.cy.nodes('.member').length > 0")

    form = page.get_by_test_id("path-form")
    form.locator("select[name=target_type]").select_option(second["type"])
    form.locator("input[name=target_id]").fill(second["id"])
    form.get_by_role("button", name="Find path").click()
    found = page.get_by_test_id("path-result").locator("[data-found]")
    expect(found).to_have_attribute("data-found", "true")
    expected = api_get(
        "/v1/paths",
        source_type=first["type"],
        source_id=first["id"],
        target_type=second["type"],
        target_id=second["id"],
    )
    expect(found).to_have_attribute("data-hops", str(expected["hops"]))
    expect(page.get_by_test_id("path-result").locator(".path-steps li")).to_have_count(expected["hops"] + 1)
    shoot("ring-member-with-path")


def test_inspector_sees_masked_data(page: Any, shoot: Shooter, login: Any, keys: dict[str, str], api_get: Any) -> None:
    """Inspectors get '***' for personal data and masked identifier nodes; investigators see the values."""
    person = api_get("/v1/risk/person", limit=1)["items"][0]["entity_id"]
    real = api_get(f"/v1/entities/person/{person}")["attributes"]
    login("inspector", f"#/entity/person/{person}")
    expect(page.get_by_test_id("masked-banner")).to_be_visible()
    details = page.get_by_test_id("entity-details")
    for field in ("name", "id_number", "phone", "bank_account"):
        if real.get(field):
            expect(details.locator(f"dd[data-attr={field}]")).to_have_text("***")
    assert real["name"] not in page.content()
    wait_graph(page)
    identifiers = page.evaluate(f"""() => document.querySelector('{GRAPH}').rgGraph.cy.nodes()
        .map(n => n.data('node')).filter(n => ['phone', 'address', 'bank_account'].includes(n.type)).map(n => n.id)""")
    assert identifiers and all(i.startswith("tok-") for i in identifiers), identifiers
    shoot("inspector-masked")

    page.evaluate("k => localStorage.setItem('riskgraph.apiKey', k)", keys["investigator"])
    page.reload()
    expect(page.get_by_test_id("entity-details").locator("dd[data-attr=name]")).to_have_text(real["name"])
    expect(page.get_by_test_id("masked-banner")).to_have_count(0)
    shoot("investigator-unmasked")


def test_filters_pagination_and_csv(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    """Person list: pages of 20 forward and back, a rule filter, and the CSV export of the filtered list."""
    login("inspector", "#/risk/person?limit=20")
    rows = page.locator(".risk-table tbody tr")
    expect(rows).to_have_count(20)
    expect(rows.first).to_have_attribute("data-rank", "1")
    page.locator("[data-action=next]").first.click()
    expect(rows.first).to_have_attribute("data-rank", "21")
    page.locator("[data-action=prev]").first.click()
    expect(rows.first).to_have_attribute("data-rank", "1")

    hits = [i for i in api_get("/v1/risk/person", limit=500)["items"] if i["rule_hits"]]
    rule = hits[0]["rule_hits"][0]
    expected = api_get("/v1/risk/person", rule=rule, limit=1)["total"]
    page.locator("select[name=rule]").select_option(rule)
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("risk-summary")).to_have_attribute("data-total", str(expected))
    shoot("person-rule-filter")
    with page.expect_download() as dl:
        page.locator("[data-action=export]").click()
    raw = Path(dl.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the UTF-8 BOM Excel needs for Chinese
    lines = raw.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("rank,entity_type,entity_id")
    assert len(lines) - 1 == expected
    assert all(rule in line for line in lines[1:])
    assert dl.value.suggested_filename == "risk-person.csv"


def test_language_toggle(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    """中文: navigation, headings and reasons switch to Chinese, and the choice is remembered."""
    top = api_get("/v1/risk/clinic", limit=1)["items"][0]["entity_id"]
    reason = api_get(f"/v1/entities/clinic/{top}")["credit"]["reasons"][0]
    login("investigator", f"#/entity/clinic/{top}")
    expect(page.get_by_test_id("reasons")).to_be_visible()
    page.locator("#lang").click()
    expect(page.locator("#nav a[data-section=risk]")).to_have_text("风险清单")
    expect(page.get_by_test_id("reasons").locator("li").first).to_contain_text(reason["text_zh"])
    wait_graph(page)
    shoot("entity-zh")
    page.reload()
    expect(page.locator("#nav a[data-section=risk]")).to_have_text("风险清单")
    page.locator("#nav a[data-section=risk]").click()
    expect(page.get_by_test_id("risk-page").locator("h2")).to_contain_text("风险排名")
    page.locator("#lang").click()
    expect(page.locator("#nav a[data-section=risk]")).to_have_text("Risk lists")


def test_models_page(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    """Model owners see every version with its metrics; other roles are told they may not."""
    models = api_get("/v1/models", role="model_owner")
    login("model_owner", "#/models")
    rows = page.locator("tr[data-version]")
    expect(rows).to_have_count(len(models))
    champions = [m for m in models if m["champion"]]
    expect(page.locator("tr[data-champion=true]")).to_have_count(len(champions))
    rows.first.locator("button.linkish").click()
    detail = page.get_by_test_id("model-detail")
    expect(detail).to_contain_text(models[0]["version"])
    # metrics on fewer than 30 labels per class are withheld, saying why
    expect(detail).to_contain_text("roc_auc" if models[0]["metrics"] else "withheld")
    shoot("models")

    login("inspector", "#/models")
    expect(page.locator(".alert-error")).to_have_attribute("data-status", "403")


def test_person_review_page(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    """Investigators see the person pairs awaiting review (or that there are none); inspectors may not."""
    review = api_get("/v1/review/persons", role="investigator")
    login("investigator", "#/review")
    expect(page.get_by_role("heading", name="Person records to review")).to_be_visible()
    expect(page.locator("#nav a[data-section=review]")).to_be_visible()
    if review["total"]:
        expect(page.locator("tr[data-left]")).to_have_count(min(review["total"], 50))
    else:
        expect(page.get_by_test_id("review-empty")).to_be_visible()
    shoot("person-review")

    login("inspector", "#/review")
    expect(page.locator(".alert-error")).to_have_attribute("data-status", "403")
    expect(page.locator("#nav a[data-section=review]")).to_be_hidden()
