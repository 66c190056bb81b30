"""The optional labour-supervision tables: inspections, wage_arrears, commitments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from graph.dataset import load_dataset
from riskgraph.errors import InvalidDataset
from tests.factories import tiny_frames, write_dataset


def supervision_frames() -> dict[str, pd.DataFrame]:
    frames = tiny_frames()
    frames["inspections"] = pd.DataFrame(
        {
            "inspection_id": ["I1", "I2"],
            "employer_id": ["E1", "E2"],
            "date": ["2025-03-01", "2025-04-01"],
            "finding": ["none", "wages"],
            "severity": ["1", "2"],
            "penalty_amount": [None, "5000"],
            "corrected_date": [None, "2025-04-20"],
        }
    )
    frames["wage_arrears"] = pd.DataFrame(
        {
            "employer_id": ["E2", "E2"],
            "month": ["2025-03", "2025-04"],
            "persons_affected": ["12", "12"],
            "amount_owed": ["50000", "50000"],
            "amount_repaid": ["0", None],
            "group_incident": ["0", "1"],
        }
    )
    frames["commitments"] = pd.DataFrame(
        {
            "commitment_id": ["K1", "K2"],
            "entity_type": ["employer", "person"],
            "entity_id": ["E1", "P1"],
            "date": ["2025-01-10", "2025-02-10"],
            "kind": ["credit_commitment", "correction_pledge"],
            "fulfilled": ["1", None],
        }
    )
    return frames


def test_the_tables_load_typed(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path, supervision_frames()))
    assert ds.tables["inspections"]["severity"].tolist() == [1.0, 2.0]
    assert str(ds.tables["inspections"]["corrected_date"].dtype) == "datetime64[ns]"
    assert ds.tables["wage_arrears"]["group_incident"].tolist() == [0, 1]
    assert ds.tables["commitments"]["fulfilled"].tolist() == [1, 0]


@pytest.mark.parametrize("subset", [("inspections",), ("wage_arrears",), ("commitments",), ()])
def test_any_subset_of_them_is_valid(tmp_path: Path, subset: tuple[str, ...]) -> None:
    frames = supervision_frames()
    for name in {"inspections", "wage_arrears", "commitments"} - set(subset):
        del frames[name]
    ds = load_dataset(write_dataset(tmp_path, frames))
    assert {"inspections", "wage_arrears", "commitments"} & set(ds.tables) == set(subset)


@pytest.mark.parametrize(
    ("table", "column", "row", "value", "expected"),
    [
        ("inspections", "severity", 1, "4", "inspections.csv row 2 column 'severity': must be one of 1, 2, 3"),
        ("inspections", "employer_id", 0, "E9", "inspections.csv row 1 column 'employer_id': unknown employer id"),
        ("inspections", "date", 0, None, "inspections.csv row 1 column 'date': required value is empty"),
        (
            "inspections",
            "corrected_date",
            1,
            "2025-03-31",
            "inspections.csv row 2 column 'corrected_date': corrected_date before date",
        ),
        ("wage_arrears", "month", 0, "2025-13", "wage_arrears.csv row 1 column 'month': not a month"),
        ("wage_arrears", "amount_owed", 1, "-5", "wage_arrears.csv row 2 column 'amount_owed': negative amount"),
        ("commitments", "kind", 0, "promise", "commitments.csv row 1 column 'kind': must be one of credit_commitment"),
        ("commitments", "entity_id", 1, "P9", "commitments.csv row 2 column 'entity_id': unknown person id"),
    ],
)
def test_bad_rows_are_named_and_nothing_loads(
    tmp_path: Path, table: str, column: str, row: int, value: str | None, expected: str
) -> None:
    frames = supervision_frames()
    frames[table].loc[row, column] = value
    with pytest.raises(InvalidDataset) as exc:
        load_dataset(write_dataset(tmp_path, frames))
    assert any(str(p).startswith(expected) for p in exc.value.problems), [str(p) for p in exc.value.problems]


def test_an_absent_flag_column_reads_as_zero(tmp_path: Path) -> None:
    frames = supervision_frames()
    frames["wage_arrears"] = frames["wage_arrears"].drop(columns=["group_incident"])
    frames["commitments"] = frames["commitments"].drop(columns=["fulfilled"])
    ds = load_dataset(write_dataset(tmp_path, frames))
    assert ds.tables["wage_arrears"]["group_incident"].tolist() == [0, 0]
    assert ds.tables["commitments"]["fulfilled"].tolist() == [0, 0]


def test_every_store_keeps_them_exactly(store, reopen) -> None:  # type: ignore[no-untyped-def]
    """The supervision tables through each GraphStore backend (memory, Neo4j; plain and keyed)."""
    from graph.dataset import dataset_from_frames

    ds = dataset_from_frames(supervision_frames())
    store.load(ds)
    back = reopen(store).dataset()
    for name in ("inspections", "wage_arrears", "commitments"):
        pd.testing.assert_frame_equal(back.tables[name], ds.tables[name], check_exact=True, obj=name)
