"""The risk list and model pages in a real browser: sorting by column headers (across pages), the
region drop-down, the footer's row range, the CSV export opened as bytes (BOM, Chinese titles), one
audit row per list view, the header search default, and every role's landing page."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.pages.support import Shooter

ROWS = ".risk-table tbody tr"


def row_ids(page: Any) -> list[str]:
    return page.locator(ROWS).evaluate_all("rs => rs.map(r => r.dataset.id)")


def wait_list(page: Any, url_part: str = "") -> None:
    """Until the risk list for the current address is drawn."""
    if url_part:
        expect(page).to_have_url(re.compile(re.escape(url_part)))
    page.wait_for_function("() => document.querySelector('#main').dataset.ready === location.hash")
    expect(page.locator(ROWS).first).to_be_visible()


def test_sorting_by_header_uses_the_api_sort_across_pages(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    login("inspector", "#/risk/person?limit=20")
    wait_list(page)
    default = api_get("/v1/risk/person", limit=20)
    assert row_ids(page) == [x["entity_id"] for x in default["items"]]
    expect(page.locator("th[data-sort=priority]")).to_have_attribute("aria-sort", "ascending")

    page.locator("th[data-sort=risk_score] button").click()
    wait_list(page, "sort=risk_score")
    by_risk = api_get("/v1/risk/person", limit=20, sort="risk_score")
    assert by_risk["order"] == "desc"
    assert row_ids(page) == [x["entity_id"] for x in by_risk["items"]]
    header = page.locator("th[data-sort=risk_score]")
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(header).to_contain_text("▼")
    expect(page.locator("th[data-sort=priority]")).to_have_attribute("aria-sort", "none")
    shoot("sorted-by-risk")

    page.locator("[data-action=next]").first.click()  # the sort holds on the next page
    wait_list(page, "cursor=")
    second = api_get("/v1/risk/person", limit=20, sort="risk_score", cursor=by_risk["next_cursor"])
    assert row_ids(page) == [x["entity_id"] for x in second["items"]]
    expect(page.get_by_test_id("risk-footer")).to_contain_text(f"{second['total']} matching · rows 21–40")

    page.locator("th[data-sort=risk_score] button").click()  # again: the other order, from the first page
    wait_list(page, "order=asc")
    ascending = api_get("/v1/risk/person", limit=20, sort="risk_score", order="asc")
    assert row_ids(page) == [x["entity_id"] for x in ascending["items"]]
    assert row_ids(page) != [x["entity_id"] for x in by_risk["items"]]
    expect(page.locator("th[data-sort=risk_score]")).to_have_attribute("aria-sort", "ascending")
    scores = [x["risk_score"] for x in ascending["items"]]
    assert scores == sorted(scores)

    page.locator("th[data-sort=region] button").click()
    wait_list(page, "sort=region")
    regions = page.locator(ROWS).evaluate_all("rs => rs.map(r => r.dataset.region)")
    assert regions == sorted(regions)
    shoot("sorted-by-region")


def test_region_drop_down_filters_the_rows(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    regions = api_get("/v1/risk/person/regions")["regions"]
    assert len(regions) > 1, "the sample data has several regions"
    login("inspector", "#/risk/person")
    wait_list(page)
    select = page.get_by_test_id("region-filter")
    options = select.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["", *regions]  # "all regions" first, then the data's regions
    expect(select.locator("option").first).to_have_text("All regions")

    region = regions[-1]
    select.select_option(region)
    page.get_by_role("button", name="Apply").click()
    wait_list(page, f"region={region}")
    expected = api_get("/v1/risk/person", region=region, limit=1)["total"]
    expect(page.get_by_test_id("risk-summary")).to_have_attribute("data-total", str(expected))
    shown = page.locator(ROWS).evaluate_all("rs => rs.map(r => r.dataset.region)")
    assert shown and set(shown) == {region}
    expect(page.get_by_test_id("region-filter")).to_have_value(region)
    shoot("region-filtered")

    page.get_by_test_id("region-filter").select_option("")
    page.get_by_role("button", name="Apply").click()
    wait_list(page)
    expect(page.get_by_test_id("risk-summary")).to_have_attribute(
        "data-total", str(api_get("/v1/risk/person", limit=1)["total"])
    )


def test_footer_counts_the_rows_shown(page: Any, login: Any, api_get: Any) -> None:
    rules = [r for r in api_get("/v1/rules") if r["entity_type"] == "person"]
    totals = {r["rule_id"]: api_get("/v1/risk/person", rule=r["rule_id"], limit=1)["total"] for r in rules}
    rule = min((rid for rid, n in totals.items() if n), key=lambda rid: totals[rid])
    login("inspector", f"#/risk/person?rule={rule}&limit=50")
    wait_list(page)
    shown = min(totals[rule], 50)
    expect(page.locator(ROWS)).to_have_count(shown)
    for where in ("risk-summary", "risk-footer"):
        expect(page.get_by_test_id(where)).to_contain_text(f"{totals[rule]} matching · rows 1–{shown} ·")


def test_csv_export_from_the_page_opens_with_chinese(page: Any, shoot: Shooter, login: Any, api_get: Any) -> None:
    rules = {r["rule_id"]: r for r in api_get("/v1/rules")}
    hit = next(x for x in api_get("/v1/risk/person", limit=500)["items"] if x["rule_hits"])
    rule = hit["rule_hits"][0]
    expected = api_get("/v1/risk/person", rule=rule, limit=500)
    page.goto("/")
    page.evaluate("() => localStorage.setItem('riskgraph.lang', 'zh')")
    login("inspector", f"#/risk/person?rule={rule}")
    wait_list(page)
    with page.expect_download() as dl:
        page.locator("[data-action=export]").click()
    raw = Path(dl.value.path()).read_bytes()
    assert dl.value.suggested_filename == "risk-person.csv"
    assert raw.startswith(b"\xef\xbb\xbf"), raw[:20]  # the BOM that makes Excel read UTF-8
    text = raw.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == expected["total"]
    assert [r["entity_id"] for r in rows] == [x["entity_id"] for x in expected["items"]]
    title_zh = rules[rule]["title_zh"]
    assert re.search(r"[\u4e00-\u9fff]", title_zh)
    assert all(title_zh in r["rule_hits"].split("; ") for r in rows)
    assert all(rule in r["rule_ids"].split(";") for r in rows)
    assert {"priority", "amount_at_stake", "reasons"} <= set(rows[0])
    with_reasons = [r for r in rows if r["reasons"]]
    assert with_reasons and all(re.search(r"[\u4e00-\u9fff]", r["reasons"]) for r in with_reasons)
    expect(page.get_by_test_id("export-status")).to_contain_text(str(len(rows)))
    shoot("exported-zh")


def test_a_list_view_is_one_audit_row(page: Any, login: Any, api_get: Any) -> None:
    def last_id() -> int:
        items = api_get("/v1/audit", role="admin", limit=1)["items"]
        return items[0]["id"] if items else 0

    login("inspector", "#/risk/person?limit=50")  # the key set, the list drawn once
    wait_list(page)
    before = last_id()
    page.reload()
    wait_list(page)
    expect(page.locator(".risk-table td.reasons .reason-line").first).to_be_visible()  # reasons come with the list
    rows = [r for r in api_get("/v1/audit", role="admin", limit=200)["items"] if r["id"] > before]
    mine = [r for r in rows if r["role"] == "inspector"]
    assert [r["action"] for r in mine] == ["risk_list"], [r["action"] for r in mine]
    assert '"ids":' in mine[0]["detail"] and row_ids(page)[0] in mine[0]["detail"]


def test_header_search_defaults_to_person(page: Any, login: Any) -> None:
    login("inspector", "#/rings")
    expect(page.locator("#search-type")).to_have_value("person")


def test_every_role_lands_on_a_page_it_may_use(page: Any, shoot: Shooter, keys: dict[str, str], api_get: Any) -> None:
    def sign_in(role: str) -> None:
        page.goto("/")
        page.evaluate("() => localStorage.clear()")
        page.goto("/")
        page.fill("#api-key", keys[role])
        page.get_by_role("button", name="Save and continue").click()
        page.wait_for_function(
            "() => location.hash && location.hash !== '#/' && document.querySelector('#main').dataset.ready === location.hash"
            " || document.querySelector('[data-testid=no-pages]')"
        )

    for role in ("inspector", "investigator", "admin"):
        sign_in(role)
        expect(page).to_have_url(re.compile(r"#/risk/person$"))
        expect(page.get_by_test_id("risk-page")).to_be_visible()
        expect(page.locator("[data-status='403']")).to_have_count(0)

    sign_in("model_owner")
    expect(page).to_have_url(re.compile(r"#/models$"))
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    expect(page.locator("[data-status='403']")).to_have_count(0)
    expect(page.locator("#nav a[data-section=rings]")).to_be_hidden()
    expect(page.locator("#nav a[data-section=models]")).to_be_visible()
    models = api_get("/v1/models", role="model_owner")
    withheld = [m for m in models if m["metrics"] is None]
    assert withheld, "the sample data has too few labels for some type"
    for m in withheld:
        note = page.locator(f"tr[data-version='{m['version']}'] [data-testid=metrics-withheld]")
        fraud = m["label_counts"]["fraud"]
        if fraud < 30:
            expect(note).to_have_text(
                f"Metrics withheld: only {fraud} confirmed-fraud labels; at least 30 per class are needed."
            )
        else:
            expect(note).to_contain_text("Metrics withheld")
    shoot("model-owner-landing")

    sign_in("approval_system")
    expect(page.get_by_test_id("no-pages")).to_contain_text("approval_system")
    expect(page.locator("[data-status='403']")).to_have_count(0)
    shoot("approval-system-landing")
