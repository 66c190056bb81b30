"""Amendments addressed by a row's key, applied on top of a load."""

from __future__ import annotations

import pandas as pd
import pytest

from composer.amendments import Amendment, InvalidAmendment, apply_amendments
from graph.dataset import dataset_from_frames
from tests.factories import small_frames


def test_amendments_by_id_and_by_natural_key() -> None:
    ds = dataset_from_frames(small_frames())
    out, notes = apply_amendments(
        ds,
        [
            Amendment("visits", {"visit_id": "v1"}, "update", {"date": "2024-03-03"}),
            Amendment(
                "benefits", {"person_id": "p2", "month": "2024-03", "benefit_type": "y"}, "update", {"amount": "7"}
            ),
            Amendment("contributions", {"employer_id": "e1", "person_id": "p1", "month": "2024-01"}, "delete"),
            Amendment("visits", {"visit_id": "gone"}, "delete"),
        ],
    )
    visits = out.table("visits").set_index("visit_id")
    assert visits.loc["v1", "date"] == pd.Timestamp("2024-03-03")
    benefits = out.table("benefits")
    assert benefits.loc[benefits["person_id"] == "p2", "amount"].tolist() == [7.0]
    assert out.table("contributions")["month"].tolist() == ["2024-02"]
    assert notes == ['amendment of visits row {"visit_id": "gone"}: no such row in this load']
    assert len(ds.table("contributions")) == 2  # the loaded dataset itself is untouched


@pytest.mark.parametrize(
    ("amendment", "message"),
    [
        (Amendment("labels", {"entity_id": "x"}), "cannot be amended"),
        (Amendment("benefits", {"person_id": "p1", "month": "2024-01"}, "delete"), "person_id, month, benefit_type"),
        (Amendment("visits", {"visit_id": "v1"}, "update", {"visit_id": "v9"}), "cannot be changed"),
        (Amendment("visits", {"visit_id": "v1"}, "update", {"amount": "-5"}), "non-negative amount"),
        (Amendment("visits", {"visit_id": "v1"}, "update", {"date": "soon"}), "valid date"),
        (
            Amendment(
                "benefits", {"person_id": "p", "month": "2024-01", "benefit_type": "x"}, "update", {"month": "x"}
            ),
            "cannot be changed",
        ),
    ],
)
def test_bad_amendments_are_refused_with_the_field_named(amendment: Amendment, message: str) -> None:
    with pytest.raises(InvalidAmendment, match=message):
        amendment.check()
