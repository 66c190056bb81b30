"""Ring lineage: which earlier ring id a new ring inherits."""

from __future__ import annotations

import pandas as pd

from features.rings.lineage import inherit_ids


def members(rings: dict[str, list[str]], ring_type: str = "collusion") -> pd.DataFrame:
    rows = [(rid, ring_type, "person", p) for rid, ps in rings.items() for p in ps]
    return pd.DataFrame(rows, columns=["ring_id", "ring_type", "entity_type", "entity_id"])


def ids(new: pd.DataFrame, old: pd.DataFrame | None) -> dict[str, str]:
    lin = inherit_ids(new, old)
    return dict(zip(lin["fresh_id"], lin["ring_id"]))


def test_first_run_keeps_its_own_ids() -> None:
    assert ids(members({"a": ["1", "2", "3"]}), None) == {"a": "a"}


def test_a_ring_losing_a_member_keeps_its_id() -> None:
    old = members({"R1": ["1", "2", "3", "4"]})
    assert ids(members({"x": ["1", "2", "3"]}), old) == {"x": "R1"}


def test_below_the_threshold_is_a_new_ring() -> None:
    old = members({"R1": ["1", "2", "3", "4", "5"]})
    assert ids(members({"x": ["1", "2", "9"]}), old) == {"x": "x"}  # 2 / 6


def test_on_a_split_the_larger_part_keeps_the_id() -> None:
    old = members({"R1": [str(i) for i in range(10)]})
    new = members({"small": ["0", "1", "2", "3"], "big": ["4", "5", "6", "7", "8", "9"]})
    assert ids(new, old) == {"big": "R1", "small": "small"}


def test_ids_are_one_to_one_best_overlap_first() -> None:
    old = members({"R1": ["1", "2", "3", "4"], "R2": ["5", "6", "7"]})
    # both new rings overlap R1 by >= 0.5, the better one takes it; R2 goes to the ring matching it
    new = members({"x": ["1", "2", "3", "4"], "y": ["1", "2", "3", "9"], "z": ["5", "6", "7", "8"]})
    assert ids(new, old) == {"x": "R1", "y": "y", "z": "R2"}


def test_a_ring_changing_type_keeps_its_id_and_same_type_wins_a_tie() -> None:
    old = pd.concat(
        [members({"B1": ["1", "2", "3", "4"]}, "broker"), members({"I1": ["5", "6", "7", "8"]}, "identity")]
    )
    new = pd.concat(
        [members({"x": ["1", "2", "3"]}, "identity"), members({"y": ["5", "6", "7"]}, "identity")],
    )
    assert ids(new, old) == {"x": "B1", "y": "I1"}
    tie = members({"z": ["1", "2", "5", "6"]}, "identity")
    both = pd.concat([members({"B1": ["1", "2"]}, "broker"), members({"I1": ["5", "6"]}, "identity")])
    assert ids(tie, both) == {"z": "I1"}


def test_a_new_ring_never_takes_an_id_an_earlier_ring_had() -> None:
    # R1 continued under its old id; a new ring whose own hash happens to be an earlier id is renamed
    old = members({"R1": ["1", "2", "3"], "x": ["7", "8", "9"]})
    new = members({"R1": ["1", "2", "3"], "x": ["20", "21", "22"]})
    assert ids(new, old) == {"R1": "R1", "x": "x-n"}
