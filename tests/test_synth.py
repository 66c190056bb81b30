"""The synthetic generator: contract-valid, deterministic, every pattern planted, sane magnitudes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from graph.contract import TABLES
from graph.dataset import Dataset, load_dataset
from graph.dictionary import load_dictionary
from synth.generator import ALL_PATTERNS, PATTERNS, generate

PERSONS = 2_000


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    generate(persons=PERSONS, seed=11, out=out, progress=False)
    return out


@pytest.fixture(scope="module")
def dataset(folder: Path) -> Dataset:
    return load_dataset(folder)


@pytest.fixture(scope="module")
def truth(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "truth" / "truth.csv", dtype=str, keep_default_na=False)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.csv"))}


def test_every_table_is_written_and_passes_the_contract(folder: Path, dataset: Dataset) -> None:
    assert set(dataset.tables) == set(TABLES)
    assert all(len(df) > 0 for df in dataset.tables.values())
    assert len(dataset.table("persons")) == PERSONS + round(0.03 * PERSONS)  # planted duplicate records
    assert (folder / "truth" / "truth.csv").is_file()


def test_returned_counts_match_the_files(tmp_path: Path, dataset: Dataset) -> None:
    counts = generate(persons=PERSONS, seed=11, out=tmp_path, progress=False)
    assert {k: v for k, v in counts.items() if k != "truth"} == dataset.row_counts()


def test_same_seed_gives_identical_files_and_another_seed_differs(folder: Path, tmp_path: Path) -> None:
    generate(persons=PERSONS, seed=11, out=tmp_path / "same", progress=False)
    generate(persons=PERSONS, seed=12, out=tmp_path / "other", progress=False)
    reference = _files(folder)
    assert _files(tmp_path / "same") == reference
    other = _files(tmp_path / "other")
    assert other.keys() == reference.keys()
    assert other["visits.csv"] != reference["visits.csv"]
    assert other["truth/truth.csv"] != reference["truth/truth.csv"]


def test_truth_covers_every_pattern_with_known_ids(truth: pd.DataFrame, dataset: Dataset) -> None:
    assert list(truth.columns) == ["entity_type", "entity_id", "pattern", "ring_id"]
    assert set(truth["pattern"]) == set(ALL_PATTERNS)
    assert not truth.duplicated(["entity_type", "entity_id", "pattern"]).any()
    for etype, ids in truth.groupby("entity_type")["entity_id"]:
        assert set(ids) <= set(dataset.entity_ids(etype)), etype
    lone = truth["ring_id"] == ""
    assert set(truth.loc[lone, "pattern"]) >= {"multi_hospital", "pension_after_death", "arrears"}
    rings = truth.loc[~lone].groupby("ring_id")["entity_type"].agg(set)
    assert any({"clinic", "pharmacy", "person"} <= r for r in rings)  # collusion
    assert any({"agency", "employer", "person"} <= r for r in rings)  # fake enrolment


def test_person_fraud_share_and_ring_share_are_plausible(truth: pd.DataFrame) -> None:
    persons = truth[truth["entity_type"] == "person"]
    share = persons["entity_id"].nunique() / PERSONS
    assert 0.005 <= share <= 0.04  # small populations need a floor of one ring per pattern
    in_ring = persons.groupby("entity_id")["ring_id"].agg(lambda r: (r != "").any())
    assert 0.2 <= in_ring.mean() <= 0.8


def test_labels_are_truth_positives_and_clean_negatives(dataset: Dataset, truth: pd.DataFrame) -> None:
    labels = dataset.table("labels")
    truth = truth[truth["pattern"].isin(PATTERNS)]  # labels are drawn before duplicates are planted
    fraud = set(zip(truth["entity_type"], truth["entity_id"]))
    keys = list(zip(labels["entity_type"], labels["entity_id"]))
    assert all((k in fraud) == bool(y) for k, y in zip(keys, labels["label"]))
    assert set(labels.loc[labels["label"] == 1, "entity_type"]) == set(truth["entity_type"])
    assert (labels["as_of"] == pd.Timestamp("2025-12-31")).all()
    n_person_fraud = truth.loc[truth["entity_type"] == "person", "entity_id"].nunique()
    positives = int(((labels["entity_type"] == "person") & (labels["label"] == 1)).sum())
    assert abs(positives - 0.3 * n_person_fraud) <= 1


def test_magnitudes_are_roughly_realistic(dataset: Dataset) -> None:
    visits = dataset.table("visits")
    assert 2.5 <= len(visits) / PERSONS <= 4.5
    assert 1.2 <= len(dataset.table("purchases")) / PERSONS <= 3.0
    assert 0.015 <= (visits["kind"] == "inpatient").mean() <= 0.06
    size = dataset.table("contributions").groupby("employer_id")["person_id"].nunique()
    assert 3 <= size.median() <= 8
    assert size.mean() > size.median()  # lognormal: a long tail of large employers
    relationships = sum(
        len(dataset.table(t))
        for t in ("employment", "contributions", "benefits", "visits", "purchases", "agency_links")
    )
    assert 7 <= relationships / PERSONS <= 14
    persons = dataset.table("persons")
    age = (pd.Timestamp("2025-12-31") - persons["birth_date"]).dt.days / 365.25
    assert age.dropna().between(18, 91).all()  # a few duplicate records lack a birth date


def test_planted_signals_show_in_the_records(dataset: Dataset, truth: pd.DataFrame) -> None:
    def persons_of(pattern: str) -> set[str]:
        rows = truth[(truth["entity_type"] == "person") & (truth["pattern"] == pattern)]
        return set(rows["entity_id"])

    visits = dataset.table("visits")
    per_day = visits.groupby(["person_id", "date"])["clinic_id"].nunique()
    assert persons_of("multi_hospital") <= set(per_day[per_day >= 2].index.get_level_values(0))
    persons = dataset.table("persons").dropna(subset=["death_date"])
    benefits = dataset.table("benefits").merge(persons[["person_id", "death_date"]], on="person_id")
    after = benefits[pd.to_datetime(benefits["month"] + "-01") > benefits["death_date"]]
    assert set(after["person_id"]) == persons_of("pension_after_death")
    ring = persons_of("identity_ring")
    shared = dataset.table("persons").set_index("person_id").loc[sorted(ring), "bank_account"]
    assert shared.duplicated(keep=False).all()


def test_rejects_tiny_populations(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(persons=10, seed=1, out=tmp_path, progress=False)


def test_data_dictionary_names_every_extra_column(folder: Path, dataset: Dataset) -> None:
    """columns.yaml labels each extra column in both languages, so reasons show no raw names."""
    labels = load_dictionary(folder)
    extras = {
        str(c) for name, table in dataset.tables.items() for c in table.columns if TABLES[name].column(str(c)) is None
    }
    assert extras and extras <= set(labels)
    assert all(labels[c].label_en != c and labels[c].label_zh for c in extras)
    assert labels["chronic"].protected


def test_duplicate_records_and_registries_have_their_truth(folder: Path, dataset: Dataset) -> None:
    clusters = pd.read_csv(folder / "truth" / "person_clusters.csv", dtype=str)
    assert list(clusters.columns) == ["person_id", "human_id"]
    assert sorted(clusters["person_id"]) == sorted(dataset.table("persons")["person_id"])
    assert clusters["human_id"].nunique() == PERSONS
    matches = pd.read_csv(folder / "truth" / "registry_matches.csv", dtype=str)
    assert list(matches.columns) == ["table", "registry_id", "person_id"]
    assert set(matches["person_id"]) <= set(clusters["person_id"])
    for table in ("deaths", "custody"):
        ids = set(dataset.table(table)["registry_id"])
        assert set(matches.loc[matches["table"] == table, "registry_id"]) < ids  # some are outsiders


def test_without_duplicates_the_tables_are_as_before(tmp_path: Path, folder: Path) -> None:
    generate(persons=PERSONS, seed=11, out=tmp_path, progress=False, duplicates=0)
    assert not (tmp_path / "deaths.csv").exists()
    for name in ("visits.csv", "purchases.csv", "employment.csv", "labels.csv"):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes()
    before = (tmp_path / "persons.csv").read_text().splitlines()
    assert (folder / "persons.csv").read_text().splitlines()[: len(before)] == before
