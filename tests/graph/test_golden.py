"""The golden persons table: one row per human, the golden record's fields first, its empty
fields filled from the other records, the earliest death date of the records and of the deaths
registry; the short cut for persons sorted by id (as loaded) gives what the long way gives."""

from __future__ import annotations

import pandas as pd

from graph.resolve.golden import golden_dataset
from tests.factories import make_dataset

GOLDEN = pd.Series({"P1": "P2", "P2": "P2", "P3": "P3", "P4": "P4", "P5": "P4", "P6": "P6"})


def dataset(order: list[int]) -> object:
    persons = [
        dict(person_id="P1", name="Old Name", phone="111", death_date="2024-05-01"),
        dict(person_id="P2", name="Zhang San", phone=None, death_date=None),
        dict(person_id="P3", name="Li Si", phone="333", death_date=None),
        dict(person_id="P4", name=None, phone="444", death_date="2024-09-01"),
        dict(person_id="P5", name="Wang Wu", phone="555", death_date="2024-08-01"),
        dict(person_id="P6", name="Zhao Liu", phone=None, death_date="2024-03-01"),
    ]
    ds = make_dataset(
        persons=[persons[i] for i in order],
        deaths=[dict(registry_id="D1", id_number="x", name="Li Si", death_date="2024-02-01")],
    )
    if order != sorted(order):  # the factory sorts by id, as loading does: undo it
        ds.tables["persons"] = ds.tables["persons"].iloc[::-1].reset_index(drop=True)
    return ds


MATCHES = pd.DataFrame(
    {
        "table": ["deaths"],
        "registry_id": ["D1"],
        "person_id": ["P3"],
        "match_probability": [0.99],
        "low_confidence": [False],
    }
)


def test_golden_persons_merge_fill_and_take_the_earliest_death():
    persons = golden_dataset(dataset([0, 1, 2, 3, 4, 5]), GOLDEN, MATCHES).tables["persons"].set_index("person_id")
    assert [p for p in persons.index if p != "P0"] == ["P2", "P3", "P4", "P6"]  # P0: the factory's own
    assert persons.loc["P2", "name"] == "Zhang San" and persons.loc["P2", "phone"] == "111"  # filled from P1
    assert persons.loc["P4", "name"] == "Wang Wu" and persons.loc["P4", "phone"] == "444"  # the golden record first
    assert str(persons.loc["P2", "death_date"].date()) == "2024-05-01"
    assert str(persons.loc["P4", "death_date"].date()) == "2024-08-01"  # the earlier of the two records
    assert str(persons.loc["P3", "death_date"].date()) == "2024-02-01"  # from the registry
    assert str(persons.loc["P6", "death_date"].date()) == "2024-03-01"


def test_the_short_cut_for_sorted_persons_gives_what_the_long_way_gives():
    sorted_in = golden_dataset(dataset([0, 1, 2, 3, 4, 5]), GOLDEN, MATCHES).tables["persons"]
    shuffled_in = golden_dataset(dataset([4, 2, 5, 0, 3, 1]), GOLDEN, MATCHES).tables["persons"]  # the long way
    pd.testing.assert_frame_equal(sorted_in, shuffled_in)
