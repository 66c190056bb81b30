"""Ring detection on small hand-made datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.rings import detect_rings
from features.rings.evaluation import evaluate_by_type, evaluate_rings, louvain_baseline
from graph.dataset import Dataset, dataset_from_frames
from riskgraph.settings import RingSettings, Settings
from rules import default_pack, evaluate

RING = [f"P{i:03d}" for i in range(1, 7)]
IDENTITY = [f"P{i:03d}" for i in range(10, 14)]
HOSPITAL_ADDRESS = "1 hospital road"


def _frames(seed: int = 0) -> dict[str, pd.DataFrame]:
    """A collusion ring, a busy hospital with the pharmacy next door, a shared hospital address,
    an identity ring and a family sharing only an address."""
    rng = np.random.default_rng(seed)
    n = 200
    pid = [f"P{i:03d}" for i in range(n)]
    phone = [f"139{i:05d}" for i in range(n)]
    bank = [f"6222{i:06d}" for i in range(n)]
    address = [f"{i} side street" for i in range(n)]
    for i in range(100, 140):  # 40 strangers registered at the hospital's address
        address[i] = HOSPITAL_ADDRESS
    for i in range(10, 14):  # identity ring: one phone, one bank account
        phone[i], bank[i] = "13900000999", "62220000999"
    for i in range(20, 23):  # a family: same address only
        address[i] = "7 family lane"
    persons = pd.DataFrame({"person_id": pid, "phone": phone, "bank_account": bank, "address": address})
    clinics = pd.DataFrame({"clinic_id": ["C_HOSP", "C_RING", "C_OTHER"], "beds": [800.0, 5.0, 20.0]})
    pharmacies = pd.DataFrame({"pharmacy_id": ["F_NEXT", "F_RING", "F_OTHER"]})
    visits, purchases = [], []
    base = pd.Timestamp("2024-01-01")
    ring_days = [base + pd.Timedelta(days=int(d)) for d in (10, 40, 70, 100, 130, 160)]
    for p in RING:  # ring members co-visit on the same six days
        for d in ring_days:
            visits.append((p, "C_RING", d, 300.0))
            purchases.append((p, "F_RING", d, 200.0))
    for i in range(30, n):  # hospital patients: monthly, on their own days
        days = rng.choice(365, size=8, replace=False)
        for d in days:
            day = base + pd.Timedelta(days=int(d))
            visits.append((pid[i], "C_HOSP", day, 360.0))
            purchases.append((pid[i], "F_NEXT", day, 80.0))
    for p in RING:  # camouflage: ring members also use the hospital
        for d in rng.choice(365, size=3, replace=False):
            day = base + pd.Timedelta(days=int(d))
            visits.append((p, "C_HOSP", day, 360.0))
            purchases.append((p, "F_NEXT", day, 80.0))
    v = pd.DataFrame(visits, columns=["person_id", "clinic_id", "date", "claimed"])
    v.insert(0, "visit_id", [f"V{i:05d}" for i in range(len(v))])
    pu = pd.DataFrame(purchases, columns=["person_id", "pharmacy_id", "date", "claimed"])
    pu.insert(0, "purchase_id", [f"U{i:05d}" for i in range(len(pu))])
    labels = pd.DataFrame({"entity_type": ["person"], "entity_id": ["P001"], "label": [1]})
    return {
        "persons": persons,
        "clinics": clinics,
        "pharmacies": pharmacies,
        "visits": v,
        "purchases": pu,
        "labels": labels,
    }


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return dataset_from_frames(_frames())


@pytest.fixture(scope="module")
def result(dataset):
    return detect_rings(dataset)


def _sets(members: pd.DataFrame) -> dict[str, set[tuple[str, str]]]:
    return {rid: set(zip(g["entity_type"], g["entity_id"])) for rid, g in members.groupby("ring_id")}


def test_collusion_ring_found_with_clinic_pharmacy_and_persons(result):
    coll = result.rings[result.rings["ring_type"] == "collusion"]
    assert len(coll) == 1
    members = _sets(result.members)[coll["ring_id"].iloc[0]]
    expected = {("person", p) for p in RING} | {("clinic", "C_RING"), ("pharmacy", "F_RING")}
    assert members == expected
    row = coll.iloc[0]
    assert 0 < row["ring_score"] <= 1 and row["money_at_stake"] == pytest.approx(6 * 6 * 500.0)
    assert row["why"]


def test_busy_hospital_and_next_door_pharmacy_is_not_a_ring(result):
    hospital = result.members[result.members["entity_id"].isin(["C_HOSP", "F_NEXT"])]
    assert hospital.empty


def test_common_address_does_not_chain_strangers(result):
    strangers = {f"P{i:03d}" for i in range(100, 140)} | {"P020", "P021", "P022"}
    ident = result.members[result.members["ring_type"] == "identity"]
    assert not set(ident["entity_id"]) & strangers
    assert list(_sets(ident).values()) == [{("person", p) for p in IDENTITY}]


def test_evidence_subgraph(result):
    rid = result.rings.loc[result.rings["ring_type"] == "collusion", "ring_id"].iloc[0]
    ev = result.evidence(rid)
    assert ev["ring_type"] == "collusion"
    covisit = [e for e in ev["edges"] if e["relation"] == "covisit_days" and e["target_type"] == "clinic"]
    assert len(covisit) == 6 and all(e["count"] == 6 for e in covisit)
    with pytest.raises(KeyError):
        result.evidence("nope")


def test_deterministic_under_row_shuffling(result):
    frames = _frames()
    shuffled = {k: v.sample(frac=1.0, random_state=3).reset_index(drop=True) for k, v in frames.items()}
    again = detect_rings(dataset_from_frames(shuffled))
    pd.testing.assert_frame_equal(again.members, result.members)
    pd.testing.assert_frame_equal(again.rings, result.rings)


def test_size_cap_respected():
    frames = _frames()
    # 30 persons sharing one phone, chained pairwise by bank accounts: one big component.
    p = frames["persons"].copy()
    for i in range(140, 170):
        p.loc[i, "bank_account"] = f"chain{(i - 140) // 2}"
        p.loc[i, "phone"] = f"chainphone{(i - 139) // 2}"
    frames["persons"] = p
    s = RingSettings(max_ring_size=5)
    res = detect_rings(dataset_from_frames(frames), settings=s)
    assert (res.rings["size"] <= 5).all()
    assert (res.members.groupby("ring_id").size() <= 5).all()


def test_evaluate_rings_toy():
    truth = pd.DataFrame(
        {
            "entity_type": ["person"] * 7 + ["clinic"],
            "entity_id": ["a", "b", "c", "d", "e", "f", "z", "c1"],
            "pattern": ["collusion"] * 3 + ["identity_ring"] * 3 + ["lone"] + ["collusion"],
            "ring_id": ["R1", "R1", "R1", "R2", "R2", "R2", "", "R1"],
        }
    )
    members = pd.DataFrame(
        {
            "ring_id": ["x", "x", "x", "y", "y", "w", "w"],
            "entity_type": ["person", "person", "clinic", "person", "person", "person", "person"],
            "entity_id": ["a", "b", "c1", "d", "q", "z", "e"],
        }
    )
    out = evaluate_rings(members, truth)
    # x vs R1: 3/4 = 0.75 (found); y vs R2: 1/4 (not); w vs R2: 1/4 (not).
    assert out["n_planted"] == 2 and out["n_detected"] == 3
    assert out["recall"] == pytest.approx(0.5)
    assert out["precision"] == pytest.approx(1 / 3)


def test_louvain_baseline_runs(dataset):
    base = louvain_baseline(dataset)
    assert list(base.columns[:5]) == ["ring_id", "ring_type", "ring_score", "entity_type", "entity_id"]
    assert len(base) > 0


def _enrolment_broker_frames() -> dict[str, pd.DataFrame]:
    n = 100
    pid = [f"P{i:03d}" for i in range(n)]
    phone = [f"139{i:05d}" for i in range(n)]
    for i in range(60, 66):  # broker: six cards on one phone
        phone[i] = "13800000001"
    persons = pd.DataFrame({"person_id": pid, "phone": phone})
    employers = pd.DataFrame({"employer_id": ["E1", "E2", "E3", "E9"]})
    agencies = pd.DataFrame({"agency_id": ["A1", "A2"]})
    links = pd.DataFrame(
        {"agency_id": ["A1", "A1", "A1", "A2"], "entity_type": "employer", "entity_id": ["E1", "E2", "E3", "E9"]}
    )
    shell = [(p, f"E{1 + k % 3}", "2023-01-01", "2023-05-31") for k, p in enumerate(pid[40:52])]
    honest = [(p, "E9", "2015-01-01", None) for p in pid[0:20]]
    employment = pd.DataFrame(shell + honest, columns=["person_id", "employer_id", "start_date", "end_date"])
    benefits = pd.DataFrame(
        {"person_id": pid[40:52] + pid[0:2], "month": "2023-07", "benefit_type": "unemployment", "amount": 1800.0}
    )
    pharmacies = pd.DataFrame({"pharmacy_id": [f"F{i}" for i in range(8)]})
    rows = [
        (p, f"F{(j + k // 3) % 8}", f"2024-0{1 + j}-10", 150.0)  # cards in pairs, same days
        for k, p in enumerate(pid[60:66])
        for j in range(6)
    ]
    rows += [(p, "F0", "2024-03-03", 50.0) for p in pid[70:90]]
    purchases = pd.DataFrame(rows, columns=["person_id", "pharmacy_id", "date", "claimed"])
    purchases.insert(0, "purchase_id", [f"U{i:04d}" for i in range(len(purchases))])
    return {
        "persons": persons,
        "employers": employers,
        "agencies": agencies,
        "agency_links": links,
        "employment": employment,
        "benefits": benefits,
        "pharmacies": pharmacies,
        "purchases": purchases,
    }


def test_enrolment_and_broker_rings():
    res = detect_rings(dataset_from_frames(_enrolment_broker_frames()))
    sets = _sets(res.members)
    by_type = dict(zip(res.rings["ring_id"], res.rings["ring_type"]))
    enrol = [sets[r] for r, t in by_type.items() if t == "enrolment"]
    assert enrol == [
        {("agency", "A1"), ("employer", "E1"), ("employer", "E2"), ("employer", "E3")}
        | {("person", f"P{i:03d}") for i in range(40, 52)}
    ]
    broker = [sets[r] for r, t in by_type.items() if t == "broker"]
    assert broker == [{("person", f"P{i:03d}") for i in range(60, 66)}]
    assert "identity" not in set(by_type.values())  # the broker's phone is not reported twice


def _facility_frames() -> dict[str, pd.DataFrame]:
    """A split-admission clinic, a phantom-stay clinic and an over-prescribing pharmacy, among
    look-alikes: a big hospital with a few legitimate readmissions, ordinary clinics with one
    each, chronic patients on regular 28-day refills and over-supplied persons who shop around."""
    n = 600
    pid = [f"P{i:03d}" for i in range(n)]
    persons = pd.DataFrame(
        {
            "person_id": pid,
            "phone": [f"139{i:05d}" for i in range(n)],
            "chronic": [1 if 300 <= i < 400 else 0 for i in range(n)],
        }
    )
    others = [f"C_OTHER{k}" for k in range(8)]
    clinics = pd.DataFrame(
        {"clinic_id": ["C_HOSP", "C_SPLIT", "C_PHANTOM"] + others, "beds": [800.0, 30.0, 4.0] + [40.0] * 8}
    )
    pharmacies = pd.DataFrame({"pharmacy_id": ["F_RING", "F_HOME"] + [f"F_OTHER{k}" for k in range(4)]})
    base = pd.Timestamp("2025-01-01")
    day = lambda d: base + pd.Timedelta(days=int(d))  # noqa: E731
    visits, purchases = [], []

    def stay(p, clinic, admit, length, dx="I63"):
        visits.append((p, clinic, day(admit), "inpatient", day(admit + length), dx, 9000.0))

    for i in range(200):  # big hospital: 200 inpatients, 3 readmitted
        stay(pid[i], "C_HOSP", i, 8)
        if i < 3:
            stay(pid[i], "C_HOSP", i + 20, 6)
    for k, c in enumerate(others):  # ordinary clinics: 30 inpatients, one readmitted
        for j in range(30):
            p = pid[200 + k * 30 + j] if k * 30 + j < 100 else pid[400 + (k * 30 + j) % 200]
            stay(p, c, 10 * k + j, 5, dx="J18")
        stay(pid[200 + k], c, 10 * k + 12, 5, dx="J18")
    split = pid[500:505]  # split-admission ring: 5 patients, 3 stays each
    for j, p in enumerate(split):
        for r in range(3):
            stay(p, "C_SPLIT", 40 + j + r * 12, 6, dx="K35")
    for j in range(6):  # the clinic's ordinary inpatients
        stay(pid[510 + j], "C_SPLIT", 100 + j * 20, 4, dx="S72")
    phantom = pid[520:526]  # phantom stays: 6 "inpatients", 4 beds
    for j, p in enumerate(phantom):
        stay(p, "C_PHANTOM", 200 + j, 15)
        visits.append((p, "C_OTHER0", day(205 + j), "outpatient", pd.NaT, "J06", 300.0))
        purchases.append((p, "F_OTHER1", day(207 + j), "D020", 5.0, 80.0))
    for i in range(n):  # everybody buys acute drugs now and then
        for d in (30 + i % 50, 150 + i % 70):
            purchases.append((pid[i], "F_HOME" if i % 2 else f"F_OTHER{i % 4}", day(d), "D030", 5.0, 60.0))
    for i in range(300, 400):  # chronic patients: 28-day refills, never overlapping
        for r in range(10):
            purchases.append((pid[i], "F_HOME", day(5 + i % 3 + 30 * r), "D001", 28.0, 300.0))
    for p in pid[530:535]:  # over-prescribing ring: all at F_RING
        for r in range(6):
            purchases.append((p, "F_RING", day(20 + 10 * r), "D002", 60.0, 600.0))
    for j, p in enumerate(pid[540:546]):  # over-supplied persons shopping around
        shops = ["F_HOME", f"F_OTHER{j % 4}", "F_RING"] if j < 2 else ["F_HOME", f"F_OTHER{j % 4}"]
        for r in range(6):
            purchases.append((p, shops[r % len(shops)], day(50 + 10 * r), "D003", 30.0, 400.0))
    v = pd.DataFrame(
        visits, columns=["person_id", "clinic_id", "date", "kind", "discharge_date", "diagnosis", "claimed"]
    )
    v.insert(0, "visit_id", [f"V{i:05d}" for i in range(len(v))])
    pu = pd.DataFrame(purchases, columns=["person_id", "pharmacy_id", "date", "drug_code", "days_supply", "claimed"])
    pu.insert(0, "purchase_id", [f"U{i:05d}" for i in range(len(pu))])
    return {"persons": persons, "clinics": clinics, "pharmacies": pharmacies, "visits": v, "purchases": pu}


def _with_rules(dataset: Dataset, settings: RingSettings | None = None, **rule_options):
    """Rings found after the default rule pack ran (facility rings read its hits)."""
    hits = evaluate(dataset, default_pack(), **rule_options).hits
    return detect_rings(dataset, hits, settings)


@pytest.fixture(scope="module")
def facility_result():
    return _with_rules(dataset_from_frames(_facility_frames()))


def _facility_sets(res) -> dict[str, set[tuple[str, str]]]:
    fac = res.rings.loc[res.rings["ring_type"] == "facility", "ring_id"]
    return {rid: m for rid, m in _sets(res.members).items() if rid in set(fac)}


def test_facility_rings_found(facility_result):
    got = sorted(_facility_sets(facility_result).values(), key=lambda m: sorted(m))
    split = {("clinic", "C_SPLIT")} | {("person", f"P{i:03d}") for i in range(500, 505)}
    phantom = {("clinic", "C_PHANTOM")} | {("person", f"P{i:03d}") for i in range(520, 526)}
    pharmacy = {("pharmacy", "F_RING")} | {("person", f"P{i:03d}") for i in range(530, 535)}
    assert got == sorted([split, phantom, pharmacy], key=lambda m: sorted(m))
    rows = facility_result.rings[facility_result.rings["ring_type"] == "facility"]
    assert (rows["ring_score"] > 0).all() and (rows["money_at_stake"] > 0).all()
    assert rows["why"].str.contains("expected at the population rate").all()
    rid = rows.loc[rows["n_pharmacies"] == 1, "ring_id"].iloc[0]
    ev = facility_result.evidence(rid)
    assert {e["relation"] for e in ev["edges"]} == {"over_prescribing"}
    assert all(e["target_id"] == "F_RING" for e in ev["edges"])


def test_big_hospital_and_regular_refills_are_not_facility_rings(facility_result):
    members = facility_result.members[facility_result.members["ring_type"] == "facility"]
    assert not set(members["entity_id"]) & {"C_HOSP", "F_HOME", *(f"C_OTHER{k}" for k in range(8))}
    chronic = {f"P{i:03d}" for i in range(300, 400)}
    shoppers = {f"P{i:03d}" for i in range(540, 546)}
    assert not set(members["entity_id"]) & (chronic | shoppers)


def test_facility_ring_needs_enough_persons():
    frames = _facility_frames()
    s = RingSettings(facility_min_persons=7)
    res = _with_rules(dataset_from_frames(frames), s)
    assert "facility" not in set(res.rings["ring_type"])


def test_facility_rings_deterministic_under_row_shuffling(facility_result):
    frames = _facility_frames()
    shuffled = {k: v.sample(frac=1.0, random_state=5).reset_index(drop=True) for k, v in frames.items()}
    again = _with_rules(dataset_from_frames(shuffled))
    pd.testing.assert_frame_equal(again.members, facility_result.members)
    pd.testing.assert_frame_equal(again.rings, facility_result.rings)
    pd.testing.assert_frame_equal(again.edges, facility_result.edges)


def test_facility_rings_read_the_rule_hits_and_nothing_else():
    dataset = dataset_from_frames(_facility_frames())
    hits = evaluate(dataset, default_pack()).hits
    assert "facility" not in set(detect_rings(dataset).rings["ring_type"])  # no hits: no facility rings
    without = hits[hits["rule_id"] != "med_split_admission"]
    clinics = set(detect_rings(dataset, without).members.query("entity_type == 'clinic'")["entity_id"])
    assert clinics == {"C_PHANTOM"}  # the split-admission clinic came from the hits
    # The rule's thresholds decide: readmissions 6 days apart are no split admission within 3 days.
    strict = _with_rules(dataset, overrides={"med_split_admission": {"max_gap_days": 3}})
    assert "C_SPLIT" not in set(strict.members["entity_id"])
    # The rule a kind reads is a setting; "" reads none.
    off = detect_rings(dataset, hits, RingSettings(over_prescribing_rule=""))
    assert "F_RING" not in set(off.members["entity_id"])
    renamed = hits.replace({"rule_id": {"med_overlapping_long_supply": "local_long_supply"}})
    found = detect_rings(dataset, renamed, RingSettings(over_prescribing_rule="local_long_supply"))
    assert "F_RING" in set(found.members["entity_id"])


def test_facility_rings_skip_a_rule_whose_evidence_lacks_the_facility(caplog):
    dataset = dataset_from_frames(_facility_frames())
    hits = evaluate(dataset, default_pack()).hits
    ev = hits["rule_id"] == "med_activity_during_stay"
    hits.loc[ev, "evidence"] = '{"n_records": 1, "records": [{"date": "2025-07-25"}]}'
    res = detect_rings(dataset, hits)
    assert "C_PHANTOM" not in set(res.members["entity_id"])
    assert "lacks source, record_id, stay_visit_id, stay_clinic_id" in caplog.text


def test_ring_settings_come_from_settings_and_the_environment(monkeypatch):
    monkeypatch.setenv("RISKGRAPH_RINGS__FACILITY_MIN_PERSONS", "7")
    settings = Settings()
    assert settings.rings.facility_min_persons == 7 and settings.rings.max_ring_size == 250
    dataset = dataset_from_frames(_facility_frames())
    hits = evaluate(dataset, default_pack()).hits
    assert "facility" not in set(detect_rings(dataset, hits, settings).rings["ring_type"])  # Settings or RingSettings
    monkeypatch.setenv("RISKGRAPH_RINGS__NO_SUCH_THRESHOLD", "1")
    with pytest.raises(ValueError):
        Settings()


def test_evaluate_by_type_toy():
    truth = pd.DataFrame(
        {
            "entity_type": ["person"] * 6 + ["clinic"],
            "entity_id": ["a", "b", "c", "d", "e", "f", "c1"],
            "pattern": ["collusion"] * 3 + ["split_admission"] * 3 + ["split_admission"],
            "ring_id": ["R1"] * 3 + ["R2"] * 3 + ["R2"],
        }
    )
    members = pd.DataFrame(
        {
            "ring_id": ["x"] * 3 + ["y"] * 4 + ["z"] * 2,
            "ring_type": ["collusion"] * 3 + ["facility"] * 4 + ["facility"] * 2,
            "entity_type": ["person"] * 3 + ["clinic"] + ["person"] * 5,
            "entity_id": ["a", "b", "c", "c1", "d", "e", "f", "q", "r"],
        }
    )
    out = evaluate_by_type(members, truth)
    assert out["collusion"]["recall"] == 1.0 and out["collusion"]["precision"] == 1.0
    assert out["facility"]["recall"] == 1.0 and out["facility"]["precision"] == pytest.approx(0.5)
    assert out["broker"]["n_planted"] == 0 and out["broker"]["n_detected"] == 0


def test_an_admission_during_another_stay_is_pinned_on_neither_clinic():
    frames = _facility_frames()
    v = frames["visits"]
    p520 = v[(v["person_id"] == "P520") & (v["clinic_id"] == "C_PHANTOM")].iloc[0]
    other = p520.copy()  # a stay elsewhere, around the phantom stay's admission day only
    other["visit_id"], other["clinic_id"] = "V_OVERLAP", "C_OTHER1"
    other["date"] = p520["date"] - pd.Timedelta(days=5)
    other["discharge_date"] = p520["date"] + pd.Timedelta(days=5)
    frames["visits"] = pd.concat([v, other.to_frame().T.astype(v.dtypes.to_dict())], ignore_index=True)
    dataset = dataset_from_frames(frames)
    hits = evaluate(dataset, default_pack()).hits
    stay = hits[(hits["rule_id"] == "med_activity_during_stay") & (hits["entity_id"] == "P520")]
    assert "V_OVERLAP" in stay["evidence"].iloc[0]  # the rule reports the overlapping admission
    res = detect_rings(dataset, hits)
    phantom = [m for m in _facility_sets(res).values() if ("clinic", "C_PHANTOM") in m]
    assert phantom == [{("clinic", "C_PHANTOM")} | {("person", f"P{i:03d}") for i in range(520, 526)}]
