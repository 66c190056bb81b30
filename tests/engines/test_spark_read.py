"""The Spark engine's reader against the pandas reader: the same problems (file, row, column,
message, in the same order, the same count), else the same typed tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from composer.engines import spark_read
from composer.engines.spark import SparkEngine
from graph.dataset import Dataset, load_dataset
from riskgraph.errors import InvalidDataset
from tests.factories import SAMPLE, tiny_frames, write_dataset

pytestmark = pytest.mark.spark
Frames = dict[str, pd.DataFrame]


def _both(spark_engine: SparkEngine, folder: Path) -> tuple[tuple[list[str], int], tuple[list[str], int]]:
    """Each reader's problems (as shown) and total."""
    got = []
    for read in (load_dataset, spark_engine.load_dataset):
        with pytest.raises(InvalidDataset) as exc:
            read(folder, lambda _: None)  # as the pipeline reads: the resolution's tables first
        got.append(([str(p) for p in exc.value.problems], exc.value.total))
    return got[0], got[1]


def _set(table: str, row: int, column: str, value: object) -> Callable[[Frames], None]:
    return lambda f: f[table].loc.__setitem__((row, column), value)


def _many_bad(f: Frames) -> None:
    for i in range(len(f["visits"])):  # every visit's date wrong, and some amounts: counted, capped
        f["visits"].loc[i, "date"] = f"2025-99-{i:02d}"
    f["visits"].loc[1, "amount"] = "-3"
    f["persons"].loc[2, "birth_date"] = "1990/01/01"


def _duplicate_key(f: Frames) -> None:
    """The second contribution with the first one's employer, person and month (a key of three)."""
    for c in ("employer_id", "person_id", "month"):
        f["contributions"].loc[1, c] = f["contributions"].loc[0, c]


def _all(*edits: Callable[[Frames], None]) -> Callable[[Frames], None]:
    return lambda f: [edit(f) for edit in edits]


# A Spark read of even a tiny dataset takes 10-15 s (about 95 small jobs), so problems that do not
# hide one another share a dataset: each table collects its own, and both readers must list them
# in the same order. Unknown references are looked for only once every table is clean, and a
# missing header column or table stops its table, so those keep a dataset of their own.
CASES: dict[str, Callable[[Frames], None]] = {
    "missing column": lambda f: f.__setitem__("persons", f["persons"].drop(columns=["person_id"])),
    "no persons": lambda f: f.pop("persons"),
    "bad values in six tables": _all(
        _set("persons", 3, "person_id", "P1"),  # a duplicate id
        _duplicate_key,  # a key of three columns repeated
        _set("visits", 0, "date", "2025-02-30"),  # an impossible date ...
        _set("visits", 0, "amount", "abc"),  # ... and not a number, in one row
        _set("contributions", 2, "month", "2025-13"),
        _set("purchases", 0, "amount", "-5"),
        _set("labels", 1, "label", "yes"),
        _set("benefits", 0, "amount", None),  # an empty required value
    ),
    "unknown ids in three tables": _all(
        _set("visits", 1, "clinic_id", "C9"),
        _set("labels", 0, "entity_id", "P99"),
        _set("contributions", 0, "person_id", "P98"),
    ),
    "many, capped": _many_bad,
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_the_same_messages(spark_engine: SparkEngine, tmp_path: Path, case: str) -> None:
    frames = tiny_frames()
    CASES[case](frames)
    want, got = _both(spark_engine, write_dataset(tmp_path, frames))
    assert got == want
    assert want[0]
    if case == "bad values in six tables":
        assert want[1] == 8  # one problem per bad value: none hides another


def test_duplicates_found_by_the_precheck_of_large_tables(
    spark_engine: SparkEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every table as if large: a hash aggregate asks first whether any key repeats (a repeated
    id in persons, a repeated key of three in contributions)."""
    monkeypatch.setattr(spark_read, "PRECHECK_BYTES", 0)
    frames = tiny_frames()
    _set("persons", 3, "person_id", "P1")(frames)
    _duplicate_key(frames)
    want, got = _both(spark_engine, write_dataset(tmp_path, frames))
    assert got == want
    assert len(want[0]) == 2


def test_files_that_cannot_be_read(spark_engine: SparkEngine, tmp_path: Path) -> None:
    """An empty file, a header without rows, a malformed record and bytes that are not UTF-8, one
    table each, in one dataset: each table's own problem, in table order."""
    folder = write_dataset(tmp_path, {"persons": tiny_frames()["persons"]})
    (folder / "clinics.csv").write_bytes(b"")
    (folder / "pharmacies.csv").write_bytes(b"pharmacy_id,region\n")
    (folder / "agencies.csv").write_bytes(b"agency_id,region\nA1,south\nA2,north,extra\n")
    (folder / "employers.csv").write_bytes(b"employer_id,name\nE1,\xff\xfe\n")
    want, got = _both(spark_engine, folder)
    assert got == want
    assert [p.split(":")[0] for p in want[0]] == ["agencies.csv", "clinics.csv", "employers.csv", "pharmacies.csv"]


def test_a_partitioned_parquet_table_numbers_rows_across_its_parts(spark_engine: SparkEngine, tmp_path: Path) -> None:
    frames = tiny_frames()
    frames["visits"].loc[len(frames["visits"]) - 1, "amount"] = "-7"  # in the second part
    folder = write_dataset(tmp_path, {k: v for k, v in frames.items() if k != "visits"})
    parts = folder / "visits"
    parts.mkdir()
    half = len(frames["visits"]) // 2
    frames["visits"].iloc[:half].to_parquet(parts / "part-00000.parquet", index=False)
    frames["visits"].iloc[half:].to_parquet(parts / "part-00001.parquet", index=False)
    (parts / "_SUCCESS").write_text("")
    want, got = _both(spark_engine, folder)
    assert got == want
    assert f"visits row {len(frames['visits'])} column 'amount': negative amount" in want[0][0]


def _same(a: Dataset, b: Dataset) -> None:
    assert set(a.tables) == set(b.tables) and a.content_hash == b.content_hash
    for name, want in a.tables.items():
        pd.testing.assert_frame_equal(b.tables[name], want, check_dtype=True, obj=name)


def test_a_valid_dataset_reads_the_same(spark_engine: SparkEngine) -> None:
    _same(load_dataset(SAMPLE), spark_engine.load_dataset(SAMPLE))


def test_parquet_and_folders_read_the_same(spark_engine: SparkEngine, tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "mixed")
    frames = tiny_frames()
    (folder / "visits.csv").unlink()
    (folder / "persons.csv").unlink()
    frames["persons"].to_parquet(folder / "persons.parquet", index=False)
    (folder / "visits.parquet").mkdir()
    frames["visits"].to_parquet(folder / "visits.parquet" / "part-0.parquet", index=False)
    _same(load_dataset(folder), spark_engine.load_dataset(folder))


def test_the_strip_shortcut_knows_every_character_python_strips() -> None:
    """`_stripped` runs its regular expression only on values that begin or end with one of
    SPACES, so SPACES must be exactly the characters str.strip() removes."""
    assert set(spark_read.SPACES) == {c for c in map(chr, range(0x110000)) if c.isspace()}


def test_values_are_stripped_as_python_strips_them(spark_engine: SparkEngine, tmp_path: Path) -> None:
    """White space at both ends as str.strip() removes it: Unicode spaces, and the information
    separators U+001C-U+001F (white space to Python, not to Java's regex \\s)."""
    frames = tiny_frames()
    frames["persons"].loc[0, "name"] = "\x1fLi Lei\x1c"
    frames["persons"].loc[1, "name"] = "\u3000Han Meimei\x85"
    frames["persons"].loc[2, "person_id"] = "\x1eP3\u2009"
    folder = write_dataset(tmp_path, frames)
    want = load_dataset(folder)
    assert list(want.tables["persons"]["name"][:2]) == ["Li Lei", "Han Meimei"]
    _same(want, spark_engine.load_dataset(folder))


def test_a_valid_dataset_reads_the_same_through_the_precheck(
    spark_engine: SparkEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key repeats, so no table's duplicates are ranked: the same tables."""
    monkeypatch.setattr(spark_read, "PRECHECK_BYTES", 0)
    _same(load_dataset(SAMPLE), spark_engine.load_dataset(SAMPLE))


def test_the_resolution_tables_are_handed_over_first_as_the_pandas_reader_does(
    spark_engine: SparkEngine, tmp_path: Path
) -> None:
    """Persons and registries go to resolution once checked, typed as in the final dataset; not
    when they have a problem; still when only a later table has one (the load then fails)."""
    for case, called in (("valid", True), ("bad person", False), ("bad visit", True)):
        frames = tiny_frames()
        if case == "bad person":
            frames["persons"].loc[2, "birth_date"] = "1990/01/01"
        if case == "bad visit":
            frames["visits"].loc[0, "date"] = "2025-02-30"
        folder = write_dataset(tmp_path / case, frames)
        handed: dict[str, list[Dataset]] = {"pandas": [], "spark": []}
        results = []
        for name, read in (("pandas", load_dataset), ("spark", spark_engine.load_dataset)):
            try:
                results.append(read(folder, handed[name].append))
            except InvalidDataset:
                assert case != "valid"
        assert [len(h) for h in handed.values()] == [int(called)] * 2, case
        if called:
            assert set(handed["spark"][0].tables) == {"persons", "deaths", "custody"} & set(frames)
            _same(handed["pandas"][0], handed["spark"][0])
        if case == "valid":
            for name, table in handed["spark"][0].tables.items():
                pd.testing.assert_frame_equal(results[1].tables[name], table, obj=name)
