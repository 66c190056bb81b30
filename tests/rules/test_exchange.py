"""List exchange: the CSV/JSON layout round-trips losslessly; a malformed file is refused with
its row and column named, and nothing is imported; imported listings feed the schemes as evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from stdnum.cn import uscc

from composer.supervision import import_lists, imported_entries, supervise
from graph.dataset import dataset_from_frames
from riskgraph.results import ResultsDB
from rules.engine import RuleResult, empty_hits
from rules.exchange import COLUMNS, InvalidExchange, known_lists, read_exchange, valid_credit_code, write_exchange
from rules.schemes import load_schemes

LISTS = known_lists(load_schemes())


def code(body: str) -> str:
    """A unified social credit code with its GB 32100-2015 check character."""
    return body + uscc.calc_check_digit(body)


def entries() -> pd.DataFrame:
    rows = [
        (
            "employer",
            "E01",
            code("91110000600037341"),
            "wage_arrears",
            "listed",
            "拖欠十名以上劳动者劳动报酬",
            "人社部令第45号 第五条（一）",
            "2025-04-30",
            "",
            "北京市人社局",
        ),
        (
            "employer",
            "E02",
            code("91310000MA1FL1234"),
            "wage_arrears",
            "removed",
            "拖欠工资，已改正",
            "人社部令第45号 第十三条",
            "2024-03-01",
            "2024-09-01",
            "",
        ),
        (
            "employer",
            "E03",
            "",
            "labour_integrity",
            "C",
            "无理抗拒、阻挠劳动保障监察，含“引号”, 逗号",
            "人社部规〔2016〕1号 第七条（三）5",
            "2025-12-31",
            "",
            "",
        ),
        (
            "person",
            "P9",
            "",
            "social_insurance_discredit",
            "listed",
            "骗取社会保险待遇",
            "",
            "2025-01-10",
            "",
            "national platform",
        ),
        (
            "employer",
            "E04",
            code("9144030071526726X"[:17]),
            "wage_arrears",
            "expired",
            "",
            "",
            "2021-01-01",
            "2024-01-01",
            "",
        ),
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(object)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_round_trip_is_lossless(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lists{suffix}"
    write_exchange(entries(), path)
    back = read_exchange(path, LISTS)
    pd.testing.assert_frame_equal(back.astype(object), entries(), check_dtype=False)
    again = tmp_path / f"again{suffix}"
    write_exchange(back, again)
    assert again.read_bytes() == path.read_bytes()


def test_the_check_character_is_verified() -> None:
    good = code("91110000600037341")
    assert valid_credit_code(good) and good.endswith("L")
    assert not valid_credit_code(good[:-1] + "X") and not valid_credit_code("910000000000000001")


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        (
            "credit_code",
            0,
            "91110000600037341X",
            "lists.csv row 1 column 'credit_code': not a valid unified social credit code",
        ),
        ("list", 2, "blacklist_of_my_own", "lists.csv row 3 column 'list': unknown list"),
        ("removed_date", 1, "2023-01-01", "lists.csv row 2 column 'removed_date': removal before listing"),
        ("listed_date", 3, "2025-02-30", "lists.csv row 4 column 'listed_date': not a date"),
        ("status", 2, "listed", "lists.csv row 3 column 'status': status not taken by this list"),
        ("entity_type", 4, "company", "lists.csv row 5 column 'entity_type': entity type must be one of"),
        ("removed_date", 0, "2025-06-01", "lists.csv row 1 column 'removed_date': a listed entry has no removal date"),
        ("entity_id", 1, "", "lists.csv row 2 column 'entity_id': required value is empty"),
    ],
)
def test_a_malformed_file_is_refused_naming_row_and_column(
    tmp_path: Path, column: str, row: int, value: str, message: str
) -> None:
    bad = entries()
    bad.loc[row, column] = value
    path = tmp_path / "lists.csv"
    write_exchange(bad, path)
    with pytest.raises(InvalidExchange) as exc:
        read_exchange(path, LISTS)
    assert any(str(p).startswith(message) for p in exc.value.problems), [str(p) for p in exc.value.problems]
    assert "nothing was imported" in str(exc.value)


def test_a_bad_json_document_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lists.json"
    path.write_text(json.dumps({"format": "something", "entries": []}))
    with pytest.raises(InvalidExchange, match="not a riskgraph-list-exchange document"):
        read_exchange(path, LISTS)


def test_an_import_is_all_or_nothing_and_audited(tmp_path: Path) -> None:
    db = ResultsDB(
        f"sqlite:///{tmp_path / 'home' / 'results.db'}", home=tmp_path / "home", secret_key_file=tmp_path / "key"
    )
    bad = entries()
    bad.loc[4, "list"] = "unknown_list"
    write_exchange(bad, tmp_path / "bad.csv")
    with pytest.raises(InvalidExchange):
        import_lists(db, tmp_path / "bad.csv", actor="cli", role="admin")
    assert db.list_entries().empty and not [r for r in db.audit_rows() if r["action"] == "list_import"]
    write_exchange(entries(), tmp_path / "good.json")
    import_id, n = import_lists(db, tmp_path / "good.json", actor="cli", role="admin")
    assert n == 5 and [r["action"] for r in db.audit_rows()] == ["list_import"]
    stored = imported_entries(db)
    expected = entries().assign(authority=entries()["authority"])
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), expected.astype(str), check_dtype=False)
    write_exchange(stored, tmp_path / "out.json")
    assert (tmp_path / "out.json").read_bytes() == (tmp_path / "good.json").read_bytes()


def test_imported_listings_feed_the_schemes_as_evidence(tmp_path: Path) -> None:
    db = ResultsDB(
        f"sqlite:///{tmp_path / 'home' / 'results.db'}", home=tmp_path / "home", secret_key_file=tmp_path / "key"
    )
    write_exchange(entries(), tmp_path / "in.csv")
    import_lists(db, tmp_path / "in.csv", actor="cli", role="admin")
    ds = dataset_from_frames(
        {
            "persons": pd.DataFrame({"person_id": ["P9"]}),
            "employers": pd.DataFrame({"employer_id": ["E01", "E02", "E03", "E04"]}),
            "wage_arrears": pd.DataFrame(
                {"employer_id": ["E03"], "month": ["2025-06"], "persons_affected": [1], "amount_owed": [100.0]}
            ),
        }
    )
    result, outcomes, _ = supervise(ds, RuleResult(hits=empty_hits()), db, pd.Timestamp("2025-12-31"))
    listed = outcomes[(outcomes["scheme"] == "wage_arrears_list")].set_index("entity_id")
    assert listed.loc["E01", "status"] == "listed" and listed.loc["E01", "source"] == "import"
    assert json.loads(listed.loc["E01", "evidence"])[0]["authority"] == "北京市人社局"
    assert listed.loc["E02", "status"] == "not_listed"  # removed before the day evaluated
    hits = result.hits.set_index(["entity_type", "entity_id"])
    assert hits.loc[("employer", "E01"), "grade_cap"] == "D"
    assert hits.loc[("person", "P9"), "rule_id"] == "imported_social_insurance_discredit"
    assert "imported_social_insurance_discredit" in result.serious


def test_without_the_table_an_imported_listing_is_a_hit_of_its_own(tmp_path: Path) -> None:
    db = ResultsDB(
        f"sqlite:///{tmp_path / 'home' / 'results.db'}", home=tmp_path / "home", secret_key_file=tmp_path / "key"
    )
    write_exchange(entries(), tmp_path / "in.csv")
    import_lists(db, tmp_path / "in.csv", actor="cli", role="admin")
    ds = dataset_from_frames(
        {"persons": pd.DataFrame({"person_id": ["P9"]}), "employers": pd.DataFrame({"employer_id": ["E01"]})}
    )
    result, outcomes, _ = supervise(ds, RuleResult(hits=empty_hits()), db, pd.Timestamp("2025-12-31"))
    assert outcomes.empty  # no inspections, no wage arrears: no scheme grade at all (not an A)
    assert any("no inspections table" in note for note in ds.skipped)
    hits = result.hits.set_index(["entity_type", "entity_id"])
    assert hits.loc[("employer", "E01"), "rule_id"] == "imported_wage_arrears"
    assert hits.loc[("employer", "E01"), "grade_cap"] == "D"
