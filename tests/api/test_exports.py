"""CSV exports for spreadsheets: no cell starts with a formula character; numbers stay numbers."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from api.risk_lists import FORMULA_STARTS, safe_text
from tests.api.support import headers

FORMULAS = ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "=cmd|' /C calc'!A0")


def test_safe_text() -> None:
    for text in FORMULAS:
        assert safe_text(text) == "'" + text
    assert safe_text("R03") == "R03" and safe_text("") == ""
    assert safe_text(-1.5) == -1.5 and safe_text(-3) == -3  # numbers are not text


def test_export_cells_never_start_with_a_formula_character(private_client: TestClient) -> None:
    state = private_client.app.state.riskgraph
    frame = state.book.risk["person"]
    for row, text in enumerate(FORMULAS):  # hostile text where the export writes text
        frame.at[row, "region"] = text
        frame.at[row, "model_version"] = text
        frame.at[row, "grade_cap"] = "-D"
    r = private_client.get("/v1/risk/person", params={"format": "csv"}, headers=headers("inspector"))
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert len(body) == int(r.headers["X-Row-Count"]) == len(frame)
    for cells in body:
        for cell in cells:
            assert not cell.startswith(FORMULA_STARTS), cells
    by_id = {cells[header.index("entity_id")]: cells for cells in body}
    for row, text in enumerate(FORMULAS):
        cells = by_id[str(frame.at[row, "entity_id"])]
        assert cells[header.index("region")] == "'" + text
        assert cells[header.index("model_version")] == "'" + text
    for cells in body:  # numbers stay numbers
        float(cells[header.index("risk_score")])
        float(cells[header.index("credit_points")])
        int(cells[header.index("rank")])
