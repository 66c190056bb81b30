"""Input contract validation: every failure names file, row and column, and loads nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graph.contract import REGISTRY_TABLES
from graph.dataset import Dataset, load_dataset
from graph.memory_store import MemoryGraphStore
from riskgraph.errors import InvalidDataset
from tests.factories import tiny_frames, write_dataset


def _problems(folder: Path) -> list[str]:
    with pytest.raises(InvalidDataset) as exc:
        load_dataset(folder)
    return [str(p) for p in exc.value.problems]


def test_valid_dataset_is_typed_and_sorted(tmp_path: Path) -> None:
    frames = tiny_frames()
    frames["persons"] = frames["persons"].iloc[::-1]
    ds = load_dataset(write_dataset(tmp_path, frames))
    persons = ds.tables["persons"]
    assert list(persons["person_id"]) == ["P1", "P2", "P3", "P4"]
    assert str(persons["birth_date"].dtype) == "datetime64[ns]"
    assert persons["chronic"].dtype == "float64"  # numeric extra column
    assert ds.tables["labels"]["entity_id"].tolist() == ["E2", "P1", "P2"]  # sorted by key
    assert ds.tables["labels"]["label"].tolist() == [1, 1, 0]
    assert ds.tables["contributions"]["paid"].dtype == "float64"
    assert len(ds.content_hash) == 16


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    frames = tiny_frames()
    write_dataset(tmp_path / "csv", frames)
    (tmp_path / "pq").mkdir()
    for name, df in frames.items():
        df.to_parquet(tmp_path / "pq" / f"{name}.parquet", index=False)
    a, b = load_dataset(tmp_path / "csv"), load_dataset(tmp_path / "pq")
    for name in frames:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])


def test_unknown_ids_name_the_rows_of_the_file_as_written_in_table_order(tmp_path: Path) -> None:
    """Each table is sorted as soon as it is checked (never held twice): the ids are checked
    first, so the rows named are the file's, and the tables are listed in file-name order."""
    frames = tiny_frames()
    for name in ("visits", "labels", "employment"):
        frames[name] = frames[name].iloc[::-1].reset_index(drop=True)  # against the sort order
    frames["visits"].loc[len(frames["visits"]) - 1, "clinic_id"] = "C9"
    person_label = int((frames["labels"]["entity_type"] == "person").to_numpy().argmax())
    frames["labels"].loc[person_label, "entity_id"] = "P99"
    frames["employment"].loc[1, "employer_id"] = "E77"
    problems = _problems(write_dataset(tmp_path, frames))
    assert problems == [
        "employment.csv row 2 column 'employer_id': unknown employer id (not in employers) (got 'E77')",
        f"labels.csv row {person_label + 1} column 'entity_id': unknown person id (not in persons) (got 'P99')",
        f"visits.csv row {len(frames['visits'])} column 'clinic_id': unknown clinic id (not in clinics) (got 'C9')",
    ]


@pytest.mark.parametrize("tables", [("persons", "labels"), ("persons", "clinics", "visits")])
def test_few_tables_are_enough(tmp_path: Path, tables: tuple[str, ...]) -> None:
    frames = {k: v for k, v in tiny_frames().items() if k in tables}
    if "labels" in frames:
        frames["labels"] = frames["labels"][frames["labels"]["entity_type"] == "person"]
    if "visits" in frames:  # no dates nor amounts at all
        frames["visits"] = frames["visits"][["visit_id", "person_id", "clinic_id"]]
    ds = load_dataset(write_dataset(tmp_path, frames))
    assert set(ds.tables) == set(tables)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda f: f.__setitem__("persons", f["persons"].drop(columns=["person_id"])),
            "persons.csv column 'person_id': required column is missing",
        ),
        (
            lambda f: f["persons"].loc.__setitem__((3, "person_id"), "P1"),
            "persons.csv row 4 column 'person_id': duplicate id (got 'P1')",
        ),
        (
            lambda f: f["visits"].loc.__setitem__((1, "clinic_id"), "C9"),
            "visits.csv row 2 column 'clinic_id': unknown clinic id (not in clinics) (got 'C9')",
        ),
        (
            lambda f: f["visits"].loc.__setitem__((0, "date"), "2025-02-30"),
            "visits.csv row 1 column 'date': not a date in YYYY-MM-DD form (got '2025-02-30')",
        ),
        (
            lambda f: f["contributions"].loc.__setitem__((2, "month"), "2025-13"),
            "contributions.csv row 3 column 'month': not a month in YYYY-MM form (got '2025-13')",
        ),
        (
            lambda f: f["purchases"].loc.__setitem__((0, "amount"), "-5"),
            "purchases.csv row 1 column 'amount': negative amount (got '-5')",
        ),
        (
            lambda f: f["labels"].loc.__setitem__((1, "label"), "yes"),
            "labels.csv row 2 column 'label': label must be 0 or 1 (got 'yes')",
        ),
        (
            lambda f: f["labels"].loc.__setitem__((0, "entity_id"), "P99"),
            "labels.csv row 1 column 'entity_id': unknown person id (not in persons) (got 'P99')",
        ),
        (
            lambda f: f["benefits"].loc.__setitem__((0, "amount"), None),
            "benefits.csv row 1 column 'amount': required value is empty",
        ),
        (
            lambda f: f["visits"].loc.__setitem__((0, "amount"), "abc"),
            "visits.csv row 1 column 'amount': not a number (got 'abc')",
        ),
        (lambda f: f.pop("persons"), "persons.csv: the persons table is required (persons.csv or persons.parquet)"),
    ],
)
def test_bad_input_is_named_and_nothing_loads(tmp_path: Path, mutate, expected: str) -> None:
    store = MemoryGraphStore(tmp_path / "store")
    before = store.load(load_dataset(write_dataset(tmp_path / "good")))
    frames = tiny_frames()
    mutate(frames)
    folder = write_dataset(tmp_path / "bad", frames)
    assert expected in _problems(folder)
    after = store.snapshot()
    assert after is not None and after.content_hash == before.content_hash
    assert store.dataset().row_counts() == before.row_counts


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, {k: v for k, v in tiny_frames().items() if k in ("persons", "clinics")})
    (folder / "clinics.csv").write_text("")
    assert "clinics.csv: file is empty; remove it if the table does not apply" in _problems(folder)
    (folder / "clinics.csv").write_text("clinic_id,level\n")
    assert any("clinics.csv: file has a header but no rows" in p for p in _problems(folder))


def test_csv_and_parquet_of_one_table_conflict(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, {"persons": tiny_frames()["persons"]})
    tiny_frames()["persons"].to_parquet(folder / "persons.parquet")
    assert any("both persons.csv and persons.parquet exist" in p for p in _problems(folder))


def test_many_problems_are_counted(tmp_path: Path) -> None:
    persons = pd.DataFrame({"person_id": [f"P{i}" for i in range(200)], "birth_date": ["bad"] * 200})
    folder = write_dataset(tmp_path, {"persons": persons})
    with pytest.raises(InvalidDataset) as exc:
        load_dataset(folder)
    assert exc.value.total == 200
    assert "and 150 more problems" in str(exc.value)


def test_missing_folder(tmp_path: Path) -> None:
    assert "dataset folder does not exist" in _problems(tmp_path / "nope")[0]


def test_malformed_csv_and_bad_encoding_are_named(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, {"persons": tiny_frames()["persons"]})
    (folder / "clinics.csv").write_text("clinic_id,level\nC1,3\nC2,1,extra\n")
    assert any(p.startswith("clinics.csv: malformed CSV") and "C2,1,extra" in p for p in _problems(folder))
    (folder / "clinics.csv").write_bytes(b"clinic_id,level\nC1,\xff\xfe\n")
    assert any(p.startswith("clinics.csv: not UTF-8 text") for p in _problems(folder))


def test_byte_order_mark_and_spaces_are_tolerated(tmp_path: Path) -> None:
    folder = tmp_path / "bom"
    folder.mkdir()
    (folder / "persons.csv").write_bytes("\ufeffperson_id, region\n P1 ,north\nP2,\n".encode("utf-8"))
    ds = load_dataset(folder)
    assert ds.tables["persons"]["person_id"].tolist() == ["P1", "P2"]
    assert ds.tables["persons"]["region"].isna().tolist() == [False, True]


def test_resolution_tables_are_handed_over_as_soon_as_they_are_valid(tmp_path: Path) -> None:
    frames = tiny_frames()
    frames["persons"] = frames["persons"].iloc[::-1]
    handed: list[Dataset] = []
    ds = load_dataset(write_dataset(tmp_path / "ok", frames), on_resolvable=handed.append)
    assert len(handed) == 1
    early = handed[0]
    assert set(early.tables) == {"persons", *REGISTRY_TABLES} & set(ds.tables)
    for name, table in early.tables.items():
        pd.testing.assert_frame_equal(table, ds.tables[name])  # typed and sorted as the whole load

    # a problem in a later table: handed over, and the load still fails as a whole
    frames["visits"].loc[0, "amount"] = "lots"
    handed.clear()
    with pytest.raises(InvalidDataset, match="visits"):
        load_dataset(write_dataset(tmp_path / "late", frames), on_resolvable=handed.append)
    assert len(handed) == 1

    # a problem in the persons table: never handed over
    bad = tiny_frames()
    bad["persons"].loc[0, "birth_date"] = "yesterday"
    handed.clear()
    with pytest.raises(InvalidDataset):
        load_dataset(write_dataset(tmp_path / "bad", bad), on_resolvable=handed.append)
    assert handed == []


def test_resolution_tables_are_read_first_and_problems_still_listed_in_table_order(tmp_path: Path) -> None:
    """The persons and registries are read before the event tables (resolution starts sooner),
    yet the problems are listed as a load in file-name order lists them."""
    frames = tiny_frames()
    frames["benefits"].loc[0, "amount"] = "lots"  # benefits.csv sorts before persons.csv
    frames["persons"].loc[0, "birth_date"] = "yesterday"
    frames["visits"].loc[0, "amount"] = "many"
    folder = write_dataset(tmp_path, frames)
    handed: list[Dataset] = []
    with pytest.raises(InvalidDataset) as exc:
        load_dataset(folder, on_resolvable=handed.append)
    files = [p.file for p in exc.value.problems]
    assert files == sorted(files) and {"benefits.csv", "persons.csv", "visits.csv"} <= set(files)
    assert handed == []
    assert [str(p) for p in exc.value.problems] == _problems(folder)  # the same without early hand-over


@pytest.mark.parametrize("seed", range(20))
def test_key_order_and_repeated_keys_match_pandas(seed: int) -> None:
    """The tables' order and their duplicate keys come from one Arrow sort: the same rows as a
    stable pandas sort (missing values last) and `duplicated(keep="first")` (two missing values
    are one key), on keys with repeats, missing values and non-ASCII text."""
    from graph.contract import TABLES
    from graph.dataset import _key_order, _repeated_keys

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    words = np.array(["a", "b", "ab", "B", "é", "z ", "10", "9"], dtype=object)

    def column() -> pd.Series:
        values = pd.Series(words[rng.integers(0, len(words), n)], dtype="str")
        return values.mask(rng.random(n) < 0.2)

    table = TABLES["contributions"]  # a three-column key
    df = pd.DataFrame({k: column() for k in table.key} | {"paid": rng.random(n)})
    order = _key_order(table, df)
    expected = df.sort_values(list(table.key), kind="mergesort")
    assert order.tolist() == expected.index.tolist()
    repeated = _repeated_keys(df, list(table.key), order)
    assert repeated.tolist() == np.flatnonzero(df.duplicated(list(table.key), keep="first")).tolist()
