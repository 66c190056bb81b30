"""Person resolution (graph/resolve/): the hand-built hard pairs, golden ids, review decisions,
registry matching, and DuckDB's temporary files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from graph.dataset import dataset_from_frames, load_dataset
from graph.resolve.persons import resolve_persons
from graph.resolve.registry import match_registries
from riskgraph.errors import InvalidDataset
from synth.generator import generate

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A synthetic population (with its planted duplicates): EM estimates on the data itself."""
    out = tmp_path_factory.mktemp("synth")
    generate(persons=2_000, seed=5, out=out, progress=False)
    return pd.read_csv(out / "persons.csv", dtype=str)


@pytest.fixture(scope="module")
def hard(background: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    records = pd.read_csv(FIXTURES / "hard_pairs_records.csv", dtype=str)
    pairs = pd.read_csv(FIXTURES / "hard_pairs.csv", dtype=str)
    resolution = resolve_persons(
        pd.concat([background, records], ignore_index=True), temp_dir=tmp_path_factory.mktemp("duck") / "t"
    )
    return pairs, resolution


def test_the_fixture_has_sixty_pairs_half_matches(hard) -> None:
    pairs, _ = hard
    assert len(pairs) >= 60
    assert (pairs["expect"] == "match").sum() == (pairs["expect"] == "non_match").sum()
    kinds = " ".join(pairs["kind"])
    for needed in ("homophone", "pinyin-only", "15-digit", "transposed", "twins", "parent and child"):
        assert needed in kinds, needed


def test_every_hard_pair_is_decided_right(hard) -> None:
    pairs, resolution = hard
    golden = resolution.records.set_index("person_id")["golden_id"]
    wrong = [
        f"{p.pair} {p.expect} ({p.kind})"
        for p in pairs.itertuples()
        if (golden[p.left] == golden[p.right]) != (p.expect == "match")
    ]
    assert not wrong, wrong


def test_golden_id_is_the_oldest_record_and_outputs_cover_every_record(hard, background) -> None:
    _, resolution = hard
    r = resolution.records
    assert list(r.columns) == ["person_id", "golden_id", "match_probability", "matched_on"]
    assert r["person_id"].is_unique and len(r) == len(background) + 120
    # the golden id is the smallest person_id of its cluster when there is no previous run
    assert (r.groupby("golden_id")["person_id"].min() == r.groupby("golden_id")["person_id"].min().index).all()
    assert set(r["matched_on"]) <= {"", "id_number", "model", "review"}
    assert r.loc[r["matched_on"] == "", "match_probability"].isna().all()


def _pair(a: str, b: str, **kw: str) -> list[dict[str, str]]:
    base = dict(name="张伟", gender="M", birth_date="1975-03-14", phone="17700000001", address="南京市鼓楼区中山路12号")
    return [dict(base, person_id=a, id_number="320106197503142319"), dict(base, person_id=b, id_number="", **kw)]


def test_previous_golden_ids_are_kept_and_review_decisions_are_honoured(background, tmp_path) -> None:
    persons = pd.concat([background, pd.DataFrame(_pair("ZZ1", "AA1"))], ignore_index=True)
    first = resolve_persons(persons, temp_dir=tmp_path / "a")
    golden = first.records.set_index("person_id")["golden_id"]
    assert golden["ZZ1"] == golden["AA1"] == "AA1"  # the smaller id without a previous run
    # a previous run named ZZ1 the golden id: it stays
    again = resolve_persons(persons, temp_dir=tmp_path / "b", previous=pd.Series({"ZZ1": "ZZ1", "AA1": "ZZ1"}))
    assert set(again.records.set_index("person_id").loc[["ZZ1", "AA1"], "golden_id"]) == {"ZZ1"}
    # an investigator rejects the merge: the records split
    reject = pd.DataFrame({"left": ["AA1"], "right": ["ZZ1"], "decision": ["reject"]})
    split = resolve_persons(persons, temp_dir=tmp_path / "c", decisions=reject)
    golden = split.records.set_index("person_id")["golden_id"]
    assert golden["ZZ1"] != golden["AA1"]


def test_a_review_pair_accepted_by_an_investigator_links(background, tmp_path) -> None:
    # same name and birth date, nothing else in common: a review pair at most
    pair = _pair("RV1", "RV2", phone="17799999999", address="")
    pair[0]["id_number"] = ""
    persons = pd.concat([background, pd.DataFrame(pair)], ignore_index=True)
    low = resolve_persons(persons, temp_dir=tmp_path / "a", review_low=0.0, review_high=1.0)
    on_review = low.review[(low.review["left"] == "RV1") & (low.review["right"] == "RV2")]
    assert len(on_review) == 1
    accept = pd.DataFrame({"left": ["RV2"], "right": ["RV1"], "decision": ["accept"]})
    linked = resolve_persons(persons, temp_dir=tmp_path / "b", review_low=0.0, review_high=1.0, decisions=accept)
    golden = linked.records.set_index("person_id")
    assert golden.loc["RV1", "golden_id"] == golden.loc["RV2", "golden_id"]
    assert golden.loc["RV2", "matched_on"] == "review"
    assert linked.review[(linked.review["left"] == "RV1") & (linked.review["right"] == "RV2")].empty


def test_candidate_pairs_agree_on_two_fields_never_on_birth_date_alone(background, tmp_path) -> None:
    # GN1/GN2 share only name and birth date (no ID number, phone or address; gender unknown):
    # the name-and-birth-date rules pair them. BD1/BD2 share only birth date and gender: no rule
    # pairs them, which keeps the candidate pairs from growing with the square of the records.
    # TY1/TY2 are one person typed twice: a transposed ID number, a typo in the surname's pinyin
    # and a new phone; only birth date and address agree, and they link.
    pair = _pair("GN1", "GN2", phone="17799999999", address="", gender="")
    pair[0].update(id_number="", address="")
    apart = _pair("BD1", "BD2", phone="17799999998", address="", gender="F")
    apart[0].update(id_number="", phone="17799999997", name="李娜", address="Ping'an Rd No. 3")
    apart[1].update(id_number="", name="周敏", address="Heping Rd No. 9")
    typo = _pair("TY1", "TY2", phone="17799999996", address="Dongfeng Rd No. 45481", gender="F")
    typo[0].update(id_number="110500196203318503", name="liang liqing", birth_date="1962-03-31", gender="F")
    typo[1].update(id_number="110500196203318053", name="loang liqing", birth_date="1962-03-31", phone="14769469956")
    persons = pd.concat([background, pd.DataFrame(pair + apart + typo)], ignore_index=True)
    got = resolve_persons(persons, temp_dir=tmp_path / "a", review_low=0.0, review_high=1.0)
    compared = pd.concat([got.review[["left", "right"]], _linked_pairs(got.records)], ignore_index=True)
    pairs = set(zip(compared["left"], compared["right"]))
    assert ("GN1", "GN2") in pairs
    assert ("BD1", "BD2") not in pairs
    default = resolve_persons(persons, temp_dir=tmp_path / "b")
    golden = default.records.set_index("person_id")["golden_id"]
    assert golden["TY1"] == golden["TY2"]


def _linked_pairs(records: pd.DataFrame) -> pd.DataFrame:
    merged = records[records["person_id"] != records["golden_id"]]
    a, b = merged["person_id"].to_numpy(dtype=str), merged["golden_id"].to_numpy(dtype=str)
    return pd.DataFrame({"left": [min(x, y) for x, y in zip(a, b)], "right": [max(x, y) for x, y in zip(a, b)]})


def test_duckdb_temporary_files_are_removed(background, tmp_path) -> None:
    temp = tmp_path / "home" / "tmp" / "resolve"
    resolve_persons(background.head(300), temp_dir=temp)
    assert not temp.exists()


def test_registry_rows_match_with_the_same_model_and_a_nameless_row_is_low_confidence(background, tmp_path) -> None:
    resolution = resolve_persons(background, temp_dir=tmp_path / "a")
    people = background.sample(20, random_state=1).reset_index(drop=True)
    deaths = pd.DataFrame(
        {
            "registry_id": [f"D{i}" for i in range(20)],
            "name": people["name"],
            "id_number": people["id_number"],
            "birth_date": people["birth_date"],
            "death_date": "2025-03-01",
        }
    )
    deaths.loc[0, "name"] = None  # matched on the other fields, flagged
    deaths.loc[1, "name"] = deaths.loc[1, "name"][:-1] + "x"  # mistyped
    deaths.loc[2, "id_number"] = None
    deaths.loc[19, ["name", "id_number", "birth_date"]] = ["Nobody Here", "510101199001011234", "1990-01-01"]
    ds = dataset_from_frames({"persons": background, "deaths": deaths})
    m = match_registries(ds, resolution.prepared, resolution.model_json, temp_dir=tmp_path / "b", threshold=0.9)
    got = m.set_index("registry_id")
    humans = dict(zip(deaths["registry_id"][:19], people["person_id"][:19], strict=True))
    golden = resolution.records.set_index("person_id")["golden_id"]
    assert set(got.index) == set(humans)
    assert all(golden[got.loc[r, "person_id"]] == golden[p] for r, p in humans.items())
    assert got.loc["D0", "low_confidence"] and not got.loc["D1", "low_confidence"]


def test_a_registry_without_its_required_columns_is_refused_and_nothing_loads(tmp_path) -> None:
    (tmp_path / "persons.csv").write_text("person_id,name\nP1,张伟\n", encoding="utf-8")
    (tmp_path / "deaths.csv").write_text("registry_id,name\nD1,张伟\n", encoding="utf-8")
    with pytest.raises(InvalidDataset, match=r"deaths.csv.*death_date"):
        load_dataset(tmp_path)
    (tmp_path / "deaths.csv").write_text("registry_id,death_date\nD1,2025-13-01\n", encoding="utf-8")
    with pytest.raises(InvalidDataset, match=r"deaths.csv row 1 column 'death_date'"):
        load_dataset(tmp_path)


def test_incremental_resolution_gives_the_clusters_of_a_full_rerun_with_frozen_parameters(background, tmp_path) -> None:
    from graph.resolve.persons import resolve_incremental

    base_rows, new_rows = background.iloc[:-300], background.iloc[-300:]
    base = resolve_persons(base_rows, temp_dir=tmp_path / "a")
    step = resolve_incremental(base, new_rows, temp_dir=tmp_path / "b")
    full = resolve_persons(
        background, temp_dir=tmp_path / "c", frozen=base.model_json, frozen_tf=base.tf_tables, previous=base.golden
    )
    a = step.records.set_index("person_id")["golden_id"]
    b = full.records.set_index("person_id")["golden_id"]
    assert a.sort_index().equals(b.sort_index())
    assert (a.reindex(base.golden.index) == base.golden).all()  # golden ids of the base stay
