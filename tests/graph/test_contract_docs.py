"""docs/data-contract.md names every table and column of graph/contract.py."""

from pathlib import Path

from graph.contract import TABLES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "data-contract.md").read_text()


def test_every_table_and_column_is_documented() -> None:
    for table in TABLES.values():
        assert f"## {table.name}" in DOC
        for column in table.columns:
            assert f"| {column.name} |" in DOC, f"{table.name}.{column.name} missing from the docs"
