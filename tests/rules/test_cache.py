"""The per-evaluation cache: shared integer codes, and results independent of what ran before."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.dataset import Dataset
from rules import default_pack, evaluate
from rules.cache import Cache
from tests.factories import make_dataset


def test_codes_share_one_sorted_vocabulary_across_tables():
    ds = make_dataset(
        visits=[
            dict(visit_id=f"V{i}", person_id=p, clinic_id="C1", date="2024-03-01")
            for i, p in enumerate(["P3", "P1", "P3", "P2"])
        ],
        benefits=[dict(person_id=p, month="2024-03", benefit_type="pension", amount=1.0) for p in ["P1", "P2", "P3"]],
    )
    cx = Cache(ds)
    v = cx.codes("visits", "person_id", "person")
    b = cx.codes("benefits", "person_id", "person")  # sorted column: looked up once per run
    assert list(cx.ids("person", v)) == ["P3", "P1", "P3", "P2"]
    assert list(cx.ids("person", b)) == ["P1", "P2", "P3"]
    assert v[0] == b[2] and v[1] == b[0]  # same id, same code in both tables
    assert np.all(np.diff(cx.codes("persons", "person_id", "person")) > 0)  # codes sort like ids
    assert cx.codes("visits", "person_id", "person") is v  # computed once


def test_ids_missing_from_the_entity_table_extend_the_vocabulary():
    persons = pd.DataFrame({"person_id": pd.Series(["P2", "P1"], dtype="str")})  # unsorted, and no P0
    visits = pd.DataFrame({"person_id": pd.Series(["P1", "P0", None, "P2"], dtype="str")})
    cx = Cache(Dataset(tables={"persons": persons, "visits": visits}))
    codes = cx.codes("visits", "person_id", "person")
    assert codes[2] == -1
    assert list(cx.ids("person", codes[[0, 1, 3]])) == ["P1", "P0", "P2"]
    assert list(cx.ids("person", cx.codes("persons", "person_id", "person"))) == ["P2", "P1"]


def test_rules_give_the_same_hits_alone_as_in_a_full_run():
    ds = make_dataset(
        persons=[dict(person_id="P1", death_date="2024-01-01")],
        visits=[
            dict(visit_id=f"V{i}", person_id=p, clinic_id=c, date="2024-03-01", kind="outpatient", amount=10.0)
            for i, (p, c) in enumerate([("P1", "C1"), ("P1", "C2"), ("P2", "C1"), ("P2", "C2")])
        ],
        benefits=[
            dict(person_id="P1", month=m, benefit_type="pension", amount=3000.0)
            for m in ["2024-02", "2024-03", "2024-04", "2024-05"]
        ],
        purchases=[
            dict(purchase_id=f"R{i}", person_id="P2", pharmacy_id="H1", date=d, days_supply=30.0, drug_code="D1")
            for i, d in enumerate(["2024-02-01", "2024-02-10"])
        ],
    )
    pack = default_pack()
    full = evaluate(ds, pack).hits
    ids = [r.id for r in pack.rules]
    alone = pd.concat([evaluate(ds, pack, disabled=set(ids) - {rid}).hits for rid in ids], ignore_index=True)
    alone = alone.sort_values(["rule_id", "entity_type", "entity_id"], kind="mergesort").reset_index(drop=True)
    assert len(full) >= 5 and full.equals(alone)


def test_detectors_start_over_when_late_ids_extend_the_vocabulary():
    # A dataset built without validation: benefits name a person the persons table lacks, and
    # the detector meets benefits.person_id after persons codes were handed out.
    persons = pd.DataFrame(
        {"person_id": pd.Series(["P1"], dtype="str"), "death_date": pd.Series(["2024-01-01"], dtype="datetime64[ns]")}
    )
    benefits = pd.DataFrame(
        {
            "person_id": pd.Series(["P1", "P9"], dtype="str"),
            "month": pd.Series(["2024-03", "2024-03"], dtype="str"),
            "benefit_type": pd.Series(["pension", "pension"], dtype="str"),
            "amount": [1.0, 1.0],
        }
    )
    ds = Dataset(tables={"persons": persons, "benefits": benefits})
    pack = default_pack()
    ids = {r.id for r in pack.rules}
    hits = evaluate(ds, pack, disabled=ids - {"ben_pension_after_death"}).hits
    assert hits["entity_id"].tolist() == ["P1"]
