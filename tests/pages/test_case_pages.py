"""The case pages in a real browser: the raised alerts open a case, the case page shows the
alert, its evidence and graph, and takes the case through its statuses, with the second person's
approval (four eyes: the one who asked cannot approve); the case list filters and assigns in bulk."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.pages.support import Shooter


@pytest.fixture
def api_post(server: str, keys: dict[str, str]) -> Any:
    def post(path: str, body: dict[str, Any], role: str = "inspector") -> Any:
        r = httpx.post(server + path, json=body, headers={"X-API-Key": keys[role]}, timeout=60)
        r.raise_for_status()
        return r.json()

    return post


def ready(page: Any) -> None:
    page.wait_for_function("() => document.querySelector('#main').dataset.ready === location.hash")


def test_alert_to_confirmed_case_with_four_eyes(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    login("inspector", "#/cases")
    ready(page)
    expect(page.get_by_test_id("alerts-panel")).to_be_visible()
    raised = api_get("/v1/alerts", role="inspector", raised="true", limit=20)["alerts"]
    shown = page.locator(".alerts-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.alert)")
    assert shown == [a["alert_id"] for a in raised]
    shoot("case-list-with-alerts")
    first = page.locator(".alerts-table tbody tr").first
    alert_id = first.get_attribute("data-alert")
    first.locator("[data-action=open-case]").click()
    expect(page).to_have_url(re.compile(r"#/case/CASE-"))
    ready(page)
    head = page.get_by_test_id("case-head")
    expect(head).to_have_attribute("data-status", "new")
    case_id = head.get_attribute("data-case")
    detail = api_get(f"/v1/cases/{case_id}", role="inspector")
    assert detail["alert_id"] == alert_id
    expect(page.get_by_test_id("case-alert")).to_contain_text("new")
    expect(page.get_by_test_id("case-evidence").locator(".rule-hit").first).to_be_visible()  # the alert's rule evidence
    expect(page.get_by_test_id("graph-canvas")).to_be_visible()
    page.wait_for_function("() => document.querySelector('[data-testid=graph-status]').textContent.length > 0")
    shoot("case-new")

    page.locator("[data-action=start]").click()
    expect(page.get_by_test_id("case-head")).to_have_attribute("data-status", "in_progress")
    page.locator("[data-action=confirm]").click()  # no note: refused, and said so
    expect(page.get_by_test_id("case-message")).to_contain_text("needs a note")
    page.get_by_label("Note").fill("records and visits match the alert")
    page.locator("[data-action=confirm]").click()
    expect(page.get_by_test_id("case-head")).to_have_attribute("data-status", "awaiting_approval")
    page.locator("[data-action=approve]").click()  # the same person: four eyes refuse it
    expect(page.get_by_test_id("case-message")).to_contain_text("four eyes")
    expect(page.get_by_test_id("case-head")).to_have_attribute("data-status", "awaiting_approval")
    shoot("four-eyes-refused")

    login("investigator", f"#/case/{case_id}")
    ready(page)
    page.locator("[data-action=approve]").click()
    expect(page.get_by_test_id("case-head")).to_have_attribute("data-status", "confirmed")
    expect(page.get_by_test_id("case-disposition")).to_contain_text("investigator:")
    kinds = page.locator("[data-testid=case-history] li").evaluate_all("ls => ls.map(l => l.dataset.kind)")
    assert kinds == ["created", "status", "confirmation_requested", "approved"]
    shoot("case-confirmed")
    labels = api_get("/v1/cases/dispositions", role="model_owner")
    assert [x["label"] for x in labels if x["case_id"] == case_id] == [1]


def test_case_list_filters_and_bulk_assignment(
    page: Any, shoot: Shooter, login: Any, api_get: Any, api_post: Any
) -> None:
    persons = api_get("/v1/risk/person", role="inspector", limit=40)["items"]
    made = [
        api_post("/v1/cases", {"entity_type": "person", "entity_id": p["entity_id"], "typology": "bulktest"})
        for p in persons[-3:]
    ]
    login("inspector", "#/cases?open=true&typology=bulktest")
    ready(page)
    rows = page.locator(".cases-table tbody tr")
    expect(rows).to_have_count(3)
    for c in made[:2]:
        page.get_by_label(c["case_id"]).check()
    page.get_by_test_id("bulk-assign").get_by_label("Assignee").fill("investigator:bulk")
    page.get_by_test_id("bulk-assign").locator("button").click()
    ready(page)
    assigned = page.locator(".cases-table tbody tr", has_text="investigator:bulk")
    expect(assigned).to_have_count(2)
    shoot("bulk-assigned")

    page.locator(f"tr[data-case='{made[2]['case_id']}'] a.case-link").click()
    ready(page)
    page.locator("[data-action=assign-me]").click()
    expect(page.get_by_test_id("case-assignee")).to_contain_text("inspector:")
    page.goto("/#/cases?open=true&mine=true&typology=bulktest")
    ready(page)
    expect(page.locator(".cases-table tbody tr")).to_have_count(1)
    expect(page.locator(f"tr[data-case='{made[2]['case_id']}']")).to_be_visible()
    shoot("mine")
