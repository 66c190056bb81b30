"""ColumnCodes (graph/codes.py): the projection's node indices are the id codes, one month epoch
for text and date months, closed vocabularies for the projection and extensible ones for rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graph.codes import MONTH_MIN, MONTH_NA, NAT, ColumnCodes, VocabularyChanged
from graph.dataset import Dataset, dataset_from_frames
from graph.projection import Projection
from tests.factories import tiny_frames


def test_projection_nodes_are_the_id_codes() -> None:
    dataset = dataset_from_frames(tiny_frames())
    proj = Projection(dataset)
    cols = proj.column_codes
    for kind in ("person", "clinic", "phone"):
        assert list(proj.ids[kind]) == sorted(proj.ids[kind])
        assert list(proj.ids[kind]) == list(cols.names(kind))
    codes = proj.codes("visits", "person_id", "person")
    assert codes is cols.codes("visits", "person_id", "person")
    assert codes is cols.sharing_ids().codes("visits", "person_id", "person")  # shared, computed once
    assert list(proj.ids["person"][codes]) == list(dataset.tables["visits"]["person_id"])
    assert not codes.flags.writeable


def test_one_month_epoch_for_text_and_date_months() -> None:
    frames = tiny_frames()
    frames["benefits"] = pd.DataFrame(
        {
            "person_id": ["P1", "P2", "P3"],
            "month": ["1969-12", "2025-03", "1970-01"],
            "benefit_type": "pension",
            "amount": "1",
        }
    )
    dataset = dataset_from_frames(frames)
    cols = ColumnCodes(dataset)
    months = cols.months("benefits", "month")
    assert list(months) == [-1, (2025 - 1970) * 12 + 2, 0]  # months since 1970-01
    assert list(months.astype("datetime64[M]").astype(str)) == ["1969-12", "2025-03", "1970-01"]
    death = cols.date_months("persons", "death_date")  # P3 died 2025-03-01
    assert death[2] == months[1]
    assert death[0] == MONTH_NA < MONTH_MIN  # missing: below every month
    assert cols.ns("persons", "death_date")[0] == NAT
    assert cols.days("persons", "death_date")[2] == np.datetime64("2025-03-01", "D").astype(np.int64)


def test_a_missing_month_is_not_a_month() -> None:
    benefits = pd.DataFrame(
        {"person_id": pd.Series(["P1", "P1"], dtype="str"), "month": pd.Series(["1969-12", None], dtype="str")}
    )
    months = ColumnCodes(Dataset(tables={"benefits": benefits})).months("benefits", "month")
    assert months[0] == -1 and months[1] == MONTH_NA


def test_unknown_ids_are_minus_one_or_extend_the_vocabulary() -> None:
    persons = pd.DataFrame({"person_id": pd.Series(["P2", "P1"], dtype="str")})  # unsorted, and no P0
    visits = pd.DataFrame({"person_id": pd.Series(["P1", "P0", None, "P2"], dtype="str")})
    ds = Dataset(tables={"persons": persons, "visits": visits})
    closed = ColumnCodes(ds)
    assert list(closed.names("person")) == ["P1", "P2"]  # sorted
    assert list(closed.codes("visits", "person_id", "person")) == [0, -1, -1, 1]
    assert list(closed.entity_rows("person")) == [1, 0] and not closed.in_id_order("person")
    open_ = ColumnCodes(ds, extend=True)
    assert list(open_.codes("visits", "person_id", "person")) == [1, 0, -1, 2]  # P0 joined before
    late = ColumnCodes(ds, extend=True)
    late.codes("persons", "person_id", "person")
    with pytest.raises(VocabularyChanged):  # codes handed out
        late.codes("visits", "person_id", "person")
    assert list(late.ids("person", late.codes("visits", "person_id", "person")[[0, 1, 3]])) == ["P1", "P0", "P2"]


def test_identifier_codes_point_at_their_holders_in_any_table_order() -> None:
    dataset = dataset_from_frames(tiny_frames())
    shuffled = Dataset(
        tables={k: (v.iloc[::-1].reset_index(drop=True) if k == "persons" else v) for k, v in dataset.tables.items()}
    )
    a, b = Projection(dataset), Projection(shuffled)
    assert all(a.ids[t].equals(b.ids[t]) for t in a.ids)
    for rel in ("HAS_PHONE", "HAS_ADDRESS", "VISITED"):
        assert (a.matrix(rel, "person") != b.matrix(rel, "person")).nnz == 0, rel
