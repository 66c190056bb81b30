"""The synthetic supervision tables: every planted case (truth/supervision.csv) gets the scheme
outcome it was planted for, and the other tables do not depend on them (their own generator)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from graph.dataset import load_dataset
from rules.schemes import evaluate_schemes, load_schemes
from synth.generator import generate

EXPECTED = {
    "c_repeat": ("labour_integrity", "C"),
    "c_child_labour": ("labour_integrity", "C"),
    "c_forced_labour": ("labour_integrity", "C"),
    "c_mass_incident": ("labour_integrity", "C"),
    "c_order_ignored": ("labour_integrity", "C"),
    "c_obstruction": ("labour_integrity", "C"),
    "c_criminal": ("labour_integrity", "C"),
    "arrears_listed": ("wage_arrears_list", "listed"),
    "arrears_group": ("wage_arrears_list", "listed"),
    "arrears_repaired": ("wage_arrears_list", "removed"),
    "arrears_expired": ("wage_arrears_list", "expired"),
    "arrears_below": ("wage_arrears_list", "not_listed"),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate(persons=3000, seed=2, out=out, progress=False)
    return out


def test_every_planted_case_gets_its_outcome(folder: Path) -> None:
    truth = pd.read_csv(folder / "truth" / "supervision.csv", dtype=str)
    assert set(truth["pattern"]) == set(EXPECTED)
    out = evaluate_schemes(load_dataset(folder), load_schemes(), pd.Timestamp("2025-12-31"))
    status = out.set_index(["scheme", "entity_id"])["status"]
    wrong = [
        (row.employer_id, row.pattern, status.get((EXPECTED[row.pattern][0], row.employer_id)))
        for row in truth.itertuples()
        if status.get((EXPECTED[row.pattern][0], row.employer_id)) != EXPECTED[row.pattern][1]
    ]
    assert not wrong


def test_most_employers_are_not_found_in_violation(folder: Path) -> None:
    out = evaluate_schemes(load_dataset(folder), load_schemes(), pd.Timestamp("2025-12-31"))
    grades = out.loc[out["scheme"] == "labour_integrity", "status"].value_counts(normalize=True)
    assert grades.get("A", 0) > 0.6 and grades.get("C", 0) < 0.2


def test_the_other_tables_do_not_depend_on_them(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import synth.writer

    monkeypatch.setattr(synth.writer, "write_supervision", lambda w, out: {})
    generate(persons=3000, seed=2, out=tmp_path / "without", progress=False)
    for path in sorted((tmp_path / "without").rglob("*.csv")):
        assert path.read_bytes() == (folder / path.relative_to(tmp_path / "without")).read_bytes(), path.name
