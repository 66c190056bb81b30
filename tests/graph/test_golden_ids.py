"""Golden ids and each record's best link (graph/resolve/persons.py `_golden`), on hand-made
clusters: which member names the cluster, and which link explains a record."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.resolve.persons import _golden


def _links(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["left", "right", "match_probability", "matched_on"])


def test_the_cluster_is_named_by_its_previous_golden_then_a_seen_record_then_the_smallest_id() -> None:
    ids = np.array(["b", "a", "c", "e", "d", "f", "g"], dtype=object)
    labels = np.array([0, 0, 0, 1, 1, 2, 3])
    previous = pd.Series({"c": "c", "e": "x", "g": "g"})  # c was golden; e was seen, under another
    got = _golden(ids, labels, _links(), previous).set_index("person_id")["golden_id"]
    assert got.to_dict() == {"a": "c", "b": "c", "c": "c", "d": "e", "e": "e", "f": "f", "g": "g"}
    # without a previous run: the smallest id of each cluster
    fresh = _golden(ids, labels, _links(), None).set_index("person_id")["golden_id"]
    assert fresh.to_dict() == {"a": "a", "b": "a", "c": "a", "d": "d", "e": "d", "f": "f", "g": "g"}


def test_a_record_is_explained_by_its_strongest_link_inside_its_cluster() -> None:
    ids = np.array(["p1", "p2", "p3", "p4"], dtype=object)
    labels = np.array([0, 0, 0, 1])
    links = _links(
        ("p1", "p2", 0.99, "model"),
        ("p1", "p3", 0.60, "id_number"),  # an identical id number outranks any model probability
        ("p2", "p3", np.nan, "model"),  # a missing probability comes last
        ("p2", "p4", 1.0, "id_number"),  # across clusters (split by a rejected pair): not an explanation
        ("p3", "ghost", 1.0, "id_number"),  # a record not in this resolution
    )
    got = _golden(ids, labels, links, None).set_index("person_id")
    assert got["matched_on"].to_dict() == {"p1": "id_number", "p2": "model", "p3": "id_number", "p4": ""}
    assert got.loc["p2", "match_probability"] == 0.99
    assert np.isnan(got.loc["p4", "match_probability"])
    assert list(got.index) == ["p1", "p2", "p3", "p4"]  # rows in id order
