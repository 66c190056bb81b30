"""The data-quality rule on ID numbers: a finding with evidence, never a load error."""

from __future__ import annotations

from tests.factories import make_dataset
from tests.rules.support import hits_of


def test_invalid_id_numbers_fire_with_the_failed_check_and_never_the_number():
    ds = make_dataset(
        persons=[
            dict(person_id="P1", id_number="11010519491231002X", gender="F", birth_date="1949-12-31"),
            dict(person_id="P2", id_number="110105491231002", gender="F", birth_date="1949-12-31"),
            dict(person_id="P3", id_number="110105194912310021"),
            dict(person_id="P4", id_number="11010519491231002X", gender="M"),
            dict(person_id="P5", id_number="not a number"),
            dict(person_id="P6"),
        ]
    )
    hits = hits_of("dq_invalid_id_number", ds)
    assert sorted(hits) == ["P3", "P4", "P5"]
    assert [r["problem"] for r in hits["P3"]["records"]] == ["checksum"]
    assert [r["problem"] for r in hits["P4"]["records"]] == ["gender_mismatch"]
    assert hits["P5"]["records"][0]["id_form"] == "other"
    assert "11010519491231002" not in str(hits)
