"""The objection and labels pages in a real browser: an inspector records an objection to a rule
hit on a person's behalf (the disputed records filled in from the rule's evidence), an
investigator corrects the data and the person is re-graded (the grade before and after shown);
the labels page shows decided cases as labels and where a case overrode labels.csv."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pandas as pd
from playwright.sync_api import expect

from tests.pages.conftest import SAMPLE
from tests.pages.support import Shooter

RULE = "ben_unemployment_while_contributing"


def ready(page: Any) -> None:
    page.wait_for_function("() => document.querySelector('#main').dataset.ready === location.hash")


def test_objection_correction_regrade_and_labels(
    page: Any, shoot: Shooter, login: Any, api_get: Any, server: str, keys: dict[str, str]
) -> None:
    person = api_get("/v1/risk/person", role="inspector", rule=RULE, limit=1)["items"][0]["entity_id"]
    # a labels.csv positive whose case is dismissed: the case is later-dated, so it wins at the next run
    file_labels = pd.read_csv(SAMPLE / "labels.csv", dtype=str)
    overridden = file_labels[(file_labels["entity_type"] == "person") & (file_labels["label"] == "1")][
        "entity_id"
    ].iloc[-1]

    def post(path: str, body: dict[str, Any], role: str = "inspector") -> Any:
        r = httpx.post(server + path, json=body, headers={"X-API-Key": keys[role]}, timeout=60)
        return r.raise_for_status().json()

    case = post("/v1/cases", {"entity_type": "person", "entity_id": overridden})
    post(f"/v1/cases/{case['case_id']}/status", {"status": "dismissed", "note": "re-checked: clean"})

    login("inspector", f"#/objections?entity_type=person&entity_id={person}")
    ready(page)
    form = page.get_by_test_id("objection-form")
    expect(form).to_be_visible()
    form.get_by_label("Rule").select_option(RULE)
    records = form.get_by_label(re.compile("Disputed records"))
    expect(records).to_have_value(re.compile('"table": "contributions"'))
    form.get_by_label("Statement").fill("the employer filed contributions for the wrong person")
    shoot("objection-form")
    form.locator("[data-action=record]").click()
    expect(page).to_have_url(re.compile(r"#/objection/OBJ-"))
    ready(page)
    head = page.get_by_test_id("objection-head")
    expect(head).to_have_attribute("data-status", "open")
    before = api_get(f"/v1/credit/person/{person}", role="investigator")
    expect(page.get_by_test_id("grade-before")).to_have_attribute("data-grade", before["grade"])
    objection_id = head.get_attribute("data-objection")

    login("investigator", f"#/objection/{objection_id}")
    ready(page)
    amendments = page.get_by_label(re.compile("Amendments"))
    expect(amendments).to_have_value(re.compile('"action": "delete"'))
    page.get_by_label("Note").fill("the payroll office confirmed the mix-up")
    page.locator("[data-action=correct]").click()
    expect(page.get_by_test_id("objection-head")).to_have_attribute("data-status", "corrected", timeout=120_000)
    done = api_get(f"/v1/objections/{objection_id}", role="investigator")
    assert RULE not in done["after"]["rule_hits"]
    expect(page.get_by_test_id("grade-after")).to_have_attribute("data-grade", done["after"]["grade"])
    expect(page.get_by_test_id("grade-after")).not_to_contain_text(RULE)
    expect(page.locator(".amendments-table tbody tr")).to_have_count(len(done["amendments"]))
    shoot("corrected-and-regraded")

    login("model_owner", "#/labels")
    ready(page)
    expect(page.locator(f".labels-table tr[data-case='{case['case_id']}']")).to_have_attribute("data-label", "0")
    conflict = page.locator(f".conflicts-table tr[data-entity='{overridden}']")
    expect(conflict).to_have_attribute("data-kept", "case")
    shoot("labels")
