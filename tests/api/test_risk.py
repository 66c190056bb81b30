"""Ranked risk lists: triage order, sorting with keyset cursors, filters, regions, the CSV export
(BOM, rule titles, reasons in the chosen language) and one audit row per list view."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.book import ResultsBook
from api.risk_lists import DEFAULT_ORDER, SORTS, RiskQuery, _encode, select
from tests.api.support import headers

H = headers("inspector")
OWNER = headers("admin")
NUMERIC = {"priority", "risk_score", "credit_points", "amount_at_stake"}

# 500 synthetic persons and their planted duplicate records (3%): every record has its row
PERSON_RECORDS = 515


def _all(client: TestClient, path: str = "/v1/risk/person", limit: int = 97, **params: Any) -> list[dict[str, Any]]:
    """Every row of a list, page by page, checking each page's offset and total on the way."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = client.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})}, headers=H)
        assert body.status_code == 200, body.text
        page = body.json()
        assert page["offset"] == len(seen)
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(seen) == page["total"]
            return seen


def _missing(item: dict[str, Any], sort: str) -> bool:
    value = item[sort]
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _in_order(a: dict[str, Any], b: dict[str, Any], sort: str, order: str) -> bool:
    """Whether row `a` may come before row `b`: values in `order`, missing last, ties by id."""
    ma, mb = _missing(a, sort), _missing(b, sort)
    if ma != mb:
        return mb
    if not ma and a[sort] != b[sort]:
        return a[sort] < b[sort] if order == "asc" else a[sort] > b[sort]
    return a["entity_id"] < b["entity_id"]


def test_default_list_is_in_triage_priority(client: TestClient) -> None:
    seen = _all(client)
    assert len(seen) == len({x["entity_id"] for x in seen}) == PERSON_RECORDS
    assert [x["priority"] for x in seen] == list(range(1, PERSON_RECORDS + 1))
    first = client.get("/v1/risk/person", params={"limit": 1}, headers=H).json()
    assert (first["sort"], first["order"]) == ("priority", "asc")


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("order", ["asc", "desc", None])
def test_every_sort_pages_through_the_list_in_order(client: TestClient, sort: str, order: str | None) -> None:
    params = {"sort": sort, **({"order": order} if order else {})}
    seen = _all(client, limit=37, **params)
    assert len(seen) == len({x["entity_id"] for x in seen}) == PERSON_RECORDS
    used = order or DEFAULT_ORDER[sort]
    bad = [(a["entity_id"], b["entity_id"]) for a, b in zip(seen, seen[1:]) if not _in_order(a, b, sort, used)]
    assert not bad, f"rows out of {sort} {used} order: {bad[:5]}"
    body = client.get("/v1/risk/person", params={**params, "limit": 1}, headers=H).json()
    assert (body["sort"], body["order"]) == (sort, used)


def test_default_orders_put_the_worst_first(client: TestClient) -> None:
    def first_two(sort: str) -> list[dict[str, Any]]:
        return client.get("/v1/risk/person", params={"sort": sort, "limit": 500}, headers=H).json()["items"]

    scores = [x["risk_score"] for x in first_two("risk_score")]
    assert scores == sorted(scores, reverse=True)
    points = [x["credit_points"] for x in first_two("credit_points")]
    assert points == sorted(points)
    grades = [x["grade"] for x in first_two("grade")]
    assert grades == sorted(grades, reverse=True)


def test_missing_values_come_last_in_both_orders(client: TestClient) -> None:
    for order in ("asc", "desc"):
        rows = _all(client, sort="amount_at_stake", order=order, limit=61)
        flags = [x["amount_at_stake"] is None for x in rows]
        assert flags == sorted(flags), order  # all known amounts, then the unknown ones
        unknown = [x["entity_id"] for x in rows if x["amount_at_stake"] is None]
        assert unknown == sorted(unknown)


def test_filters_and_sort_together(client: TestClient) -> None:
    rows = _all(client, grade="D", sort="credit_points", order="desc", limit=13)
    assert rows and all(x["grade"] == "D" for x in rows)
    total = client.get("/v1/risk/person", params={"grade": "D"}, headers=H).json()["total"]
    assert len(rows) == total


def test_a_cursor_only_continues_its_own_sort(client: TestClient) -> None:
    page = client.get("/v1/risk/person", params={"sort": "risk_score", "limit": 10}, headers=H).json()
    cursor = page["next_cursor"]
    assert cursor
    ok = client.get("/v1/risk/person", params={"sort": "risk_score", "limit": 10, "cursor": cursor}, headers=H)
    assert ok.status_code == 200 and ok.json()["offset"] == 10
    for params in ({}, {"sort": "grade"}, {"sort": "risk_score", "order": "asc"}):
        r = client.get("/v1/risk/person", params={**params, "limit": 10, "cursor": cursor}, headers=H)
        assert r.status_code == 422, params
        err = r.json()["error"]
        assert err["code"] == "invalid_parameter" and "risk_score desc" in err["message"]


def test_filters(client: TestClient) -> None:
    first = _all(client)  # more rows than one page holds
    region = next(x["region"] for x in first if x["region"])
    got = client.get("/v1/risk/person", params={"region": region, "limit": 500}, headers=H).json()
    assert got["total"] == sum(x["region"] == region for x in first) and all(
        x["region"] == region for x in got["items"]
    )
    got = client.get("/v1/risk/person", params=[("grade", "A"), ("grade", "B"), ("limit", 500)], headers=H).json()
    assert all(x["grade"] in "AB" for x in got["items"]) and got["total"] == sum(x["grade"] in "AB" for x in first)
    rule = next(r for x in first for r in x["rule_hits"])
    got = client.get("/v1/risk/person", params={"rule": rule, "limit": 500}, headers=H).json()
    assert got["total"] and all(rule in x["rule_hits"] for x in got["items"])
    ring = next(r for x in first for r in x["rings"])
    got = client.get("/v1/risk/person", params={"ring": ring, "limit": 500}, headers=H).json()
    assert got["total"] and all(ring in x["rings"] for x in got["items"])
    got = client.get("/v1/risk/person", params={"min_score": 0.2, "max_score": 0.5, "limit": 500}, headers=H).json()
    assert all(0.2 <= x["risk_score"] <= 0.5 for x in got["items"])
    got = client.get("/v1/risk/person", params={"rule": "no_such_rule"}, headers=H).json()
    assert (got["items"], got["total"], got["offset"], got["next_cursor"]) == ([], 0, 0, None)


def test_items_carry_priority_and_amount_at_stake(client: TestClient) -> None:
    items = client.get("/v1/risk/person", params={"limit": 500}, headers=H).json()["items"]
    assert all(isinstance(x["priority"], int) and x["priority"] >= 1 for x in items)
    assert all(x["amount_at_stake"] is None or x["amount_at_stake"] >= 0 for x in items)
    assert all(len(x["top_reasons"]) <= 3 for x in items)


def test_regions(client: TestClient) -> None:
    rows = _all(client)
    regions = client.get("/v1/risk/person/regions", headers=H).json()["regions"]
    assert regions == sorted({x["region"] for x in rows if x["region"]})
    assert len(regions) > 1
    for region in regions:
        got = client.get("/v1/risk/person", params={"region": region, "limit": 500}, headers=H).json()
        assert got["total"] == sum(x["region"] == region for x in rows)
    assert client.get("/v1/risk/person/regions", headers=headers("approval_system")).status_code == 403
    assert client.get("/v1/risk/martian/regions", headers=H).status_code == 422


def test_bad_parameters_are_422(client: TestClient) -> None:
    for params in (
        {"grade": "E"},
        {"min_score": 2},
        {"min_score": "x"},
        {"limit": 0},
        {"limit": 501},
        {"min_score": 0.9, "max_score": 0.1},
        {"cursor": "garbage"},
        {"format": "xml"},
        {"sort": "name"},
        {"order": "up"},
        {"format": "csv", "lang": "fr"},
    ):
        r = client.get("/v1/risk/person", params=params, headers=H)
        assert r.status_code == 422, params
        assert r.json()["error"]["code"] in ("invalid_request", "invalid_parameter")
    assert client.get("/v1/risk/martian", headers=H).status_code == 422


def _csv(client: TestClient, **params: Any) -> tuple[bytes, list[dict[str, str]]]:
    r = client.get("/v1/risk/person", params={"format": "csv", **params}, headers=H)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese right
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert int(r.headers["x-row-count"]) == len(rows)
    return r.content, rows


def test_csv_export_rows_and_order(client: TestClient) -> None:
    _, rows = _csv(client, grade="D", sort="risk_score")
    listed = _all(client, grade="D", sort="risk_score")
    assert [r["entity_id"] for r in rows] == [x["entity_id"] for x in listed]
    assert all(x["grade"] == "D" for x in rows)
    assert "name" not in rows[0]
    for row, item in zip(rows, listed):
        assert int(row["priority"]) == item["priority"]
        amount = item["amount_at_stake"]
        assert (row["amount_at_stake"] == "") if amount is None else math.isclose(float(row["amount_at_stake"]), amount)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_csv_export_speaks_the_chosen_language(client: TestClient, lang: str) -> None:
    raw, rows = _csv(client, lang=lang)
    rules = {r["rule_id"]: r for r in client.get("/v1/rules", headers=H).json()}
    items = {x["entity_id"]: x for x in _all(client, limit=500)}
    title = "title_zh" if lang == "zh" else "title_en"
    text = "text_zh" if lang == "zh" else "text"
    hit = [r for r in rows if r["rule_ids"]]
    assert hit, "the synthetic data has rule hits"
    for row in rows:
        item = items[row["entity_id"]]
        ids = row["rule_ids"].split(";") if row["rule_ids"] else []
        assert ids == item["rule_hits"]
        expected = [rules[i][title] if i in rules else i for i in ids]
        assert (row["rule_hits"].split("; ") if row["rule_hits"] else []) == expected
        reasons = [r[text] or r["text"] for r in item["top_reasons"][:3]]
        assert row["reasons"] == "; ".join(reasons)
    if lang == "zh":
        some_title = rules[hit[0]["rule_ids"].split(";")[0]]["title_zh"]
        assert some_title.encode("utf-8") in raw
        assert any("\u4e00" <= ch <= "\u9fff" for ch in "".join(r["reasons"] for r in rows))


def test_csv_export_of_nothing_is_a_header(client: TestClient) -> None:
    raw, rows = _csv(client, rule="no_such_rule")
    assert rows == [] and raw.decode("utf-8-sig").startswith("rank,entity_type,entity_id")


def _audit_since(client: TestClient, after_id: int) -> list[dict[str, Any]]:
    items = client.get("/v1/audit", params={"limit": 500}, headers=OWNER).json()["items"]
    return [x for x in items if x["id"] > after_id]


def _last_audit_id(client: TestClient) -> int:
    items = client.get("/v1/audit", params={"limit": 1}, headers=OWNER).json()["items"]
    return items[0]["id"] if items else 0


def test_one_audit_row_per_list_page(client: TestClient) -> None:
    before = _last_audit_id(client)
    page = client.get("/v1/risk/person", params={"grade": "D", "sort": "risk_score", "limit": 20}, headers=H).json()
    rows = _audit_since(client, before)
    assert [r["action"] for r in rows] == ["risk_list"]
    row = rows[0]
    assert row["role"] == "inspector" and row["entity_type"] == "person"
    detail = json.loads(row["detail"])
    assert detail["ids"] == [x["entity_id"] for x in page["items"]]
    assert detail["filters"] == {"grade": ["D"]}
    assert (detail["sort"], detail["order"], detail["total"]) == ("risk_score", "desc", page["total"])

    before = _last_audit_id(client)
    nxt = client.get(
        "/v1/risk/person",
        params={"grade": "D", "sort": "risk_score", "limit": 20, "cursor": page["next_cursor"]},
        headers=H,
    ).json()
    rows = _audit_since(client, before)
    assert [r["action"] for r in rows] == ["risk_list"]
    assert json.loads(rows[0]["detail"])["ids"] == [x["entity_id"] for x in nxt["items"]]


def test_one_audit_row_per_export(client: TestClient) -> None:
    before = _last_audit_id(client)
    _, rows = _csv(client, grade="D", lang="zh")
    audit = _audit_since(client, before)
    assert [r["action"] for r in audit] == ["risk_export"]
    detail = json.loads(audit[0]["detail"])
    assert detail["count"] == len(rows) and detail["ids"] == [r["entity_id"] for r in rows]
    assert detail["lang"] == "zh" and detail["filters"] == {"grade": ["D"]}


def test_empty_types_answer_empty(client: TestClient) -> None:
    body = client.get("/v1/risk/agency", headers=H).json()
    assert body["total"] == len(body["items"])


def test_a_cursor_continues_after_its_row_when_the_rows_change() -> None:
    """Keyset, not offset: rows removed before the cursor, or the cursor's own row, skip nothing."""
    n = 40
    frame = pd.DataFrame(
        {
            "entity_id": [f"P{i:03d}" for i in range(n)],
            "risk_score": np.round(np.linspace(0.9, 0.1, n), 1),  # many ties
            "region": [None if i % 5 == 0 else f"R{i % 3}" for i in range(n)],
            "amount_at_stake": [np.nan if i % 2 else float(i % 7) for i in range(n)],
        }
    )
    frame["priority"] = frame["rank"] = np.arange(1, n + 1)
    for sort in ("risk_score", "region", "amount_at_stake"):
        for order in ("asc", "desc"):
            q = RiskQuery(entity_type="person", sort=sort, order=order)
            book = ResultsBook(risk={"person": frame})
            whole = select(book=book, q=q)
            ids = [frame["entity_id"].iloc[p] for p in whole.positions]
            cut = 17
            cursor = _encode(q, whole.key, int(whole.positions[cut]))
            gone = {ids[3], ids[cut]}  # one row before the cursor, and the cursor's own row
            smaller = ResultsBook(risk={"person": frame[~frame["entity_id"].isin(gone)].reset_index(drop=True)})
            rest = select(book=smaller, q=q, cursor=cursor)
            got = [smaller.risk["person"]["entity_id"].iloc[p] for p in rest.positions]
            assert got == ids[cut + 1 :], (sort, order)
            assert rest.offset == cut - 1


def test_no_list_or_export_leaves_without_its_audit_row(private_client: TestClient) -> None:
    """Like a credit answer, a list page or an export is withheld (503) when its row cannot be written."""
    audit = private_client.app.state.riskgraph.audit
    audit.fault = "audit_write:enospc"
    try:
        for params in ({"limit": 5}, {"format": "csv"}):
            r = private_client.get("/v1/risk/person", params=params, headers=H)
            assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable", params
            assert "P0" not in r.text
    finally:
        audit.fault = ""
    assert private_client.get("/v1/risk/person", params={"limit": 5}, headers=H).status_code == 200


def test_region_and_grade_filters_match_comparing_the_values() -> None:
    """The filters compare codes factorised once per frame: the same rows as comparing the text,
    with missing and empty regions never matching, and a value absent from the frame matching none."""
    import numpy as np
    import pandas as pd

    from api.risk_lists import _one_of

    frame = pd.DataFrame(
        {
            "entity_id": [f"P{i}" for i in range(8)],
            "region": ["R1", None, "R2", "", "R1", np.nan, "R3", "R2"],
            "grade": ["A", "D", "D", "C", "B", "D", "A", "E"],
        }
    )
    for region in ("R1", "R2", "R9", ""):
        expected = (frame["region"] == region).to_numpy(dtype=bool, na_value=False)
        assert (_one_of(frame, "region", (region,)) == expected).all(), region
    for grades in (("D",), ("A", "E"), ("Z",), ("D", "Z")):
        assert (_one_of(frame, "grade", grades) == frame["grade"].isin(grades).to_numpy()).all(), grades


def test_each_row_lists_its_rule_hits_and_rings() -> None:
    """The served frames' rule and ring lists, built without parsing the many empty ones."""
    import pandas as pd

    from api.book import _risk_frames

    scores = pd.DataFrame(
        {
            "entity_type": ["person", "person", "employer", "person", "employer"],
            "entity_id": ["P1", "P2", "E1", "P3", "E2"],
            "risk_score": [0.9, 0.1, 0.5, 0.4, 0.2],
            "priority": [1, 3, 1, 2, 2],
            "rule_hits": ['["r1", "r2"]', "[]", '["r3"]', "[]", "[]"],
        }
    )
    members = pd.DataFrame(
        {
            "entity_type": ["person", "person", "employer", "person", "clinic"],
            "entity_id": ["P3", "P3", "E2", "P1", "C1"],
            "ring_id": ["ring-b", "ring-a", "ring-a", "ring-b", "ring-c"],
        }
    )
    frames = _risk_frames(scores, members, None)
    person = frames["person"].set_index("entity_id")
    assert person.loc["P1", "rule_list"] == ["r1", "r2"] and person.loc["P2", "rule_list"] == []
    assert person.loc["P3", "ring_list"] == ["ring-a", "ring-b"] and person.loc["P2", "ring_list"] == []
    assert list(frames["person"]["entity_id"]) == ["P1", "P3", "P2"]  # in priority order
    employer = frames["employer"].set_index("entity_id")
    assert employer.loc["E2", "ring_list"] == ["ring-a"] and employer.loc["E1", "ring_list"] == []
    assert employer.loc["E1", "rule_list"] == ["r3"]
    assert frames["clinic"].empty
    lists = list(frames["person"]["ring_list"])
    assert len({id(x) for x in lists}) == len(lists)  # no list shared between rows
