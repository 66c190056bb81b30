"""`riskgraph synth --difficulty realistic` (synth/realistic.py): the standard world untouched,
and each realistic change present in the files."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pandas as pd

from synth.generator import generate


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def test_realistic_world(tmp_path: Path) -> None:
    std, real = tmp_path / "std", tmp_path / "real"
    generate(persons=3000, seed=4, out=std, label_share=0.6, progress=False)
    generate(persons=3000, seed=4, out=real, label_share=0.6, progress=False, difficulty="realistic")
    again = tmp_path / "again"
    generate(persons=3000, seed=4, out=again, label_share=0.6, progress=False)
    assert filecmp.cmp(std / "visits.csv", again / "visits.csv", shallow=False)  # standard stays standard
    assert filecmp.cmp(std / "truth" / "truth.csv", real / "truth" / "truth.csv", shallow=False)

    truth = _read(real, "truth/truth")
    fraud = set(zip(truth["entity_type"], truth["entity_id"]))
    labels = _read(real, "labels")
    dates = pd.to_datetime(labels["as_of"])
    assert dates.max() <= pd.Timestamp("2025-12-31") and dates.min() >= pd.Timestamp("2025-04-01")  # 3+ months late
    assert len(labels) < len(_read(std, "labels"))  # labels not yet arrived are not given
    wrong = [
        (t, i) in fraud and lab == "0" or (t, i) not in fraud and lab == "1"
        for t, i, lab in labels[["entity_type", "entity_id", "label"]].itertuples(index=False)
    ]
    assert 0.03 < sum(wrong) / len(labels) < 0.2

    visits, purchases = _read(real, "visits"), _read(real, "purchases")
    assert visits["visit_id"].str.startswith("VR").any() and purchases["purchase_id"].str.startswith("UR").any()
    assert visits["visit_id"].is_unique and purchases["purchase_id"].is_unique
    # drift: from July the multi-hospital fraudsters no longer see two clinics on one day
    who = set(truth.loc[truth["pattern"] == "multi_hospital", "entity_id"])
    late = visits[visits["person_id"].isin(who) & (visits["date"] >= "2025-07-01")]
    assert late.groupby(["person_id", "date"])["clinic_id"].nunique().max() == 1
    # lawful look-alikes: honest households sharing one phone and one bank account
    persons = _read(real, "persons")
    honest = persons[~persons["person_id"].isin(set(truth.loc[truth["entity_type"] == "person", "entity_id"]))]
    shared = honest[honest.duplicated("phone", keep=False) & honest.duplicated("bank_account", keep=False)]
    assert len(shared) >= 2
    assert len(_read(real, "employment")) > len(_read(std, "employment"))  # jobs starting in a benefit month
