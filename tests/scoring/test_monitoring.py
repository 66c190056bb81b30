"""PSI, bins and grade migration (scoring/monitoring.py), PSI checked against optbinning's."""

from __future__ import annotations

import numpy as np
import pandas as pd
from optbinning.binning.metrics import jeffrey

from scoring import monitoring
from scoring.monitoring import (
    band,
    column_counts,
    column_profile,
    frame_profile,
    frame_psi,
    grade_migration,
    psi,
    rule_changes,
    rule_hit_rates,
    shares,
)


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n) + shift,
            "visits": rng.poisson(2, n).astype(np.float64),
            "flag": (rng.random(n) < 0.1).astype(np.int32),
            "wage": np.where(rng.random(n) < 0.3, np.nan, rng.normal(5000, 800, n)),
            "region": pd.Categorical(rng.choice(["R01", "R02", "R03"], n)),
        }
    )


def test_psi_matches_optbinning_on_the_same_bins() -> None:
    reference, current = _frame(5000, 1), _frame(4000, 2, shift=4.0)
    profile = frame_profile(reference)
    ours = frame_psi(profile, current)
    for name, p in profile.items():
        expected = shares(np.asarray(p["counts"]))
        actual = shares(column_counts(p, current[name]))
        assert abs(ours[name] - float(jeffrey(expected, actual, return_sum=True))) < 1e-6, name
    assert ours["amount"] > 0.1  # the shifted column moved; the others did not
    assert max(ours["visits"], ours["flag"], ours["wage"], ours["region"]) < 0.1


def test_bins_are_right_closed_deciles_with_a_missing_bin() -> None:
    values = pd.Series([0.0] * 70 + list(np.arange(1, 31, dtype=float)) + [np.nan] * 10)
    p = column_profile(values)
    assert p["kind"] == "numeric" and p["edges"][0] == 0.0
    counts = np.asarray(p["counts"])
    assert counts[0] == 70 and counts[-1] == 10 and counts.sum() == len(values)
    # every zero moved off zero is seen, even by less than a bin's width
    assert psi(counts, column_counts(p, values + 0.01)) > 0.25


def test_new_categories_and_bands() -> None:
    p = column_profile(pd.Series(pd.Categorical(["a", "b", "a", None])))
    assert p["categories"] == ["a", "b"] and p["counts"] == [2, 1, 0, 1]
    assert column_counts(p, pd.Series(["c", "a"])).tolist() == [1, 0, 1, 0]
    assert [band(v) for v in (0.05, 0.1, 0.24, 0.25, None)] == ["stable", "watch", "watch", "alert", "n/a"]


def test_grade_migration_and_rule_rates() -> None:
    before = pd.DataFrame({"entity_type": "person", "entity_id": ["1", "2", "3"], "grade": ["A", "B", "D"]})
    after = pd.DataFrame({"entity_type": "person", "entity_id": ["1", "2", "4"], "grade": ["A", "D", "C"]})
    m = grade_migration(before, after)
    assert m["A"]["A"] == 1 and m["B"]["D"] == 1 and m["D"]["gone"] == 1 and m["new"]["C"] == 1
    hits = pd.DataFrame({"rule_id": ["r1", "r1", "r2"], "entity_type": "person", "entity_id": ["1", "1", "2"]})
    rates = rule_hit_rates(hits, {"person": 4})
    assert rates["r1"] == {"entity_type": "person", "entities": 1, "rate": 0.25}
    changes = rule_changes({"r1": {"entity_type": "person", "rate": 0.5}}, rates)
    assert changes[0]["rule_id"] == "r1" and changes[0]["change"] == -0.25


def test_counting_edge_by_edge_places_every_value_as_the_binary_search_does(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    values = pd.Series(rng.choice([0.0, 1.0, 2.5, np.inf, -np.inf, np.nan, 7.0], 3000))
    values[:500] = rng.normal(size=500)
    for edges in ([], [1.0], [0.0, 1.0, 2.5], sorted(rng.normal(size=9).tolist()), [-1.0, 0.0, 2.5, 7.0]):
        profile = {"kind": "numeric", "edges": edges}
        each_edge = column_counts(profile, values)
        monkeypatch.setattr(monitoring, "FEW_EDGES", -1)  # every row placed by np.searchsorted
        searched = column_counts(profile, values)
        monkeypatch.undo()
        assert each_edge.tolist() == searched.tolist() and each_edge.sum() == len(values), edges
        # right-closed bins: a value equal to an edge falls in the bin that edge closes
        assert column_counts(profile, pd.Series(edges)).tolist() == [1] * len(edges) + [0, 0]


def test_grade_migration_keys_on_type_and_id_together() -> None:
    before = pd.DataFrame(
        {"entity_type": ["person", "employer", "person"], "entity_id": ["1", "1", None], "grade": ["A", "B", "C"]}
    )
    after = pd.DataFrame(
        {"entity_type": ["employer", "person", "person"], "entity_id": ["1", "1", None], "grade": ["D", None, "C"]}
    )
    m = grade_migration(before, after)
    # person 1 lost its grade (a row without a grade now reads "gone"); employer 1 went B -> D;
    # the id-less rows meet each other, as the join's missing keys do
    assert m == {"A": {"C": 0, "D": 0, "gone": 1}, "B": {"C": 0, "D": 1, "gone": 0}, "C": {"C": 1, "D": 0, "gone": 0}}
