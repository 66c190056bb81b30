"""The entity page shows an employer's official scheme grades beside the model's grade, the
treatments the approval system gets and the policy version they come from (credit supervision)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.pages.support import Shooter


def test_entity_page_shows_schemes_treatments_and_policy(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    employers = api_get("/v1/risk/employer", limit=200)["items"]
    answers = {e["entity_id"]: api_get(f"/v1/credit/employer/{e['entity_id']}") for e in employers}
    graded = [
        (eid, a)
        for eid, a in answers.items()
        if any(s["scheme"] == "labour_integrity" and s["status"] == "C" for s in a["schemes"])
    ]
    assert graded, "the sample data plants integrity grade C employers"
    eid, credit = graded[0]
    login("investigator", f"#/entity/employer/{eid}")
    panel = page.get_by_test_id("credit-supervision")
    expect(panel).to_be_visible()
    item = panel.locator("li[data-scheme=labour_integrity]")
    expect(item).to_have_attribute("data-status", "C")
    expect(item).to_contain_text("第七条（三）")
    expect(item).to_contain_text("cap D")
    treatments = page.get_by_test_id("treatments")
    tr = credit["treatments"]
    expect(treatments.locator("dd[data-treatment=online_scope]")).to_have_text(tr["online_scope"])
    expect(treatments.locator("dd[data-treatment=commitment_procedure]")).to_have_text(
        "yes" if tr["commitment_procedure"] else "no"
    )
    policy = page.get_by_test_id("policy-version")
    expect(policy).to_have_attribute("data-version", credit["policy"]["version"])
    expect(policy).to_contain_text(f"credit_treatments {credit['policy']['version']}")
    shoot("employer-schemes-and-treatments")

    page.locator("#lang").click()
    expect(page.get_by_test_id("credit-supervision").locator("h3")).to_have_text("官方评价与处理措施")
    expect(page.get_by_test_id("credit-supervision").locator("li[data-scheme=labour_integrity]")).to_contain_text(
        "企业劳动保障守法诚信等级"
    )
    shoot("employer-schemes-zh")
