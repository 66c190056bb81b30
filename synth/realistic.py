"""`riskgraph synth --difficulty realistic`: the standard world made harder to read, with its
parameters fixed here (docs/governance.md, "A harder synthetic world").

The standard world is generated first, with the same seed, and stays exactly what it is for
`--difficulty standard`. Then these changes are drawn from their own generator (seeded from the
same seed and a fixed tag), so they never disturb the standard stream:

- camouflage: each ring member buys and is seen elsewhere as much as in the ring: for every
  visit at a ring's clinic or purchase at its pharmacy, one more at an honest facility of the
  same region (half their facility links honest);
- collusion co-visits weakened: a ring member's purchase at the ring pharmacy on a clinic day
  is kept with probability 0.45 / 0.75 (the standard world attends 0.75 of sessions), so a
  co-visit happens with probability 0.45, not 0.75;
- 10% of the given labels are wrong (flipped);
- labels arrive 3 to 9 months after the act (the entity's median event date, else a day of the
  year): `as_of` is that date, and a label not yet arrived by the snapshot (2025-12-31) is not
  given at all (the truth keeps it);
- one pattern drifts in the second half of the year: multi-hospital fraudsters spread their
  extra clinic visits over consecutive days instead of one day, from July;
- lawful look-alikes of every pattern's signal: households sharing one phone and one bank
  account; same-day referrals to a second clinic; a benefit paid in the first month of a new job
  (one-month overlap of unemployment benefit and contributions); the pension of the death month
  paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SNAPSHOT = pd.Timestamp("2025-12-31")
DRIFT_FROM = pd.Timestamp("2025-07-01")


@dataclass(frozen=True)
class Realistic:
    """The realistic world's parameters (fixed; documented above)."""

    co_visit: float = 0.45
    standard_attendance: float = 0.75  # synth/rings.py: a collusion member attends 0.75 of sessions
    wrong_labels: float = 0.10
    delay_months: tuple[int, int] = (3, 9)
    drifting_pattern: str = "multi_hospital"
    shared_household_share: float = 0.01  # persons whose household shares one phone and bank account
    referral_share: float = 0.02  # persons with a same-day referral to a second clinic
    job_overlap_share: float = 0.3  # unemployment claimants whose new job starts in a benefit month
    death_month_paid_share: float = 0.5  # legitimately dead pensioners paid for their death month


REALISTIC = Realistic()
TAG = 18  # the realistic changes' own random stream: default_rng([seed, TAG])


def _read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)


def _write(out: Path, name: str, frame: pd.DataFrame) -> None:
    frame.to_csv(out / f"{name}.csv", index=False)


def harden(out: Path, seed: int, p: Realistic = REALISTIC) -> dict[str, int]:
    """Apply the realistic changes to the standard dataset written in `out`; rows per table."""
    rng = np.random.default_rng([seed, TAG])
    truth = _read(out / "truth", "truth")
    persons, visits, purchases = _read(out, "persons"), _read(out, "visits"), _read(out, "purchases")
    ring_members = truth[(truth["entity_type"] == "person") & (truth["ring_id"] != "")]
    ring_facilities = truth[truth["entity_type"].isin(["clinic", "pharmacy"]) & (truth["ring_id"] != "")]
    bad_clinics = set(truth.loc[truth["entity_type"] == "clinic", "entity_id"])
    bad_pharmacies = set(truth.loc[truth["entity_type"] == "pharmacy", "entity_id"])
    region = persons.set_index("person_id")["region"]

    purchases = _weaken_co_visits(rng, purchases, truth, p)
    visits, purchases = _camouflage(
        rng, visits, purchases, ring_members, ring_facilities, region, bad_clinics, bad_pharmacies
    )
    visits = _drift(visits, truth, p)
    persons = _shared_households(rng, persons, p)
    visits = _referrals(rng, visits, truth, bad_clinics, p)
    employment, contributions, benefits = _read(out, "employment"), _read(out, "contributions"), _read(out, "benefits")
    employment, contributions = _job_overlaps(rng, employment, contributions, benefits, truth, p)
    benefits = _death_month_paid(rng, benefits, persons, truth, p)
    labels = _late_noisy_labels(rng, _read(out, "labels"), visits, purchases, p)

    frames = {
        "persons": persons,
        "visits": visits,
        "purchases": purchases,
        "employment": employment,
        "contributions": contributions,
        "benefits": benefits,
        "labels": labels,
    }
    for name, frame in frames.items():
        _write(out, name, frame)
    return {name: len(frame) for name, frame in frames.items()}


def _weaken_co_visits(
    rng: np.random.Generator, purchases: pd.DataFrame, truth: pd.DataFrame, p: Realistic
) -> pd.DataFrame:
    """Drop ring-pharmacy purchases of collusion members so a co-visit happens with p.co_visit."""
    rings = truth[truth["pattern"] == "collusion"]
    members = set(rings.loc[rings["entity_type"] == "person", "entity_id"])
    pharmacies = set(rings.loc[rings["entity_type"] == "pharmacy", "entity_id"])
    ring_rows = purchases["person_id"].isin(members) & purchases["pharmacy_id"].isin(pharmacies)
    drop = ring_rows.to_numpy() & (rng.random(len(purchases)) >= p.co_visit / p.standard_attendance)
    return purchases[~drop].reset_index(drop=True)


def _honest_pick(rng: np.random.Generator, pool: pd.Series, regions: np.ndarray) -> np.ndarray:
    """One facility per row from `pool` (facility id -> region), in the row's region when it has one."""
    by_region = {r: ids.to_numpy() for r, ids in pool.groupby(pool).groups.items()}
    everyone = pool.index.to_numpy()
    out = np.empty(len(regions), dtype=object)
    for r in np.unique(regions):
        rows = np.flatnonzero(regions == r)
        choices = by_region.get(r)
        choices = everyone if choices is None or len(choices) == 0 else np.asarray(choices)
        out[rows] = choices[rng.integers(0, len(choices), len(rows))]
    return out


def _camouflage(
    rng: np.random.Generator,
    visits: pd.DataFrame,
    purchases: pd.DataFrame,
    members: pd.DataFrame,
    facilities: pd.DataFrame,
    region: pd.Series,
    bad_clinics: set[str],
    bad_pharmacies: set[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For each ring member's visit at a ring clinic (purchase at a ring pharmacy), one more at an
    honest one of the same region, a few days later."""
    ring_ids = set(members["entity_id"])
    ring_fac = set(facilities["entity_id"])
    clinics = visits.drop_duplicates("clinic_id")[["clinic_id"]].copy()
    clinic_region = _facility_region(visits, "clinic_id", region)
    pharmacy_region = _facility_region(purchases, "pharmacy_id", region)
    honest_c = clinic_region[~clinic_region.index.isin(bad_clinics)]
    honest_h = pharmacy_region[~pharmacy_region.index.isin(bad_pharmacies)]
    del clinics
    v = visits[visits["person_id"].isin(ring_ids) & visits["clinic_id"].isin(ring_fac)].copy()
    u = purchases[purchases["person_id"].isin(ring_ids) & purchases["pharmacy_id"].isin(ring_fac)].copy()
    if len(v) and len(honest_c):
        v["clinic_id"] = _honest_pick(rng, honest_c, region.reindex(v["person_id"]).to_numpy())
        v = _later(rng, v, ["date", "discharge_date"])
        v["visit_id"] = [f"VR{i:08d}" for i in range(1, len(v) + 1)]
        visits = pd.concat([visits, v], ignore_index=True)
    if len(u) and len(honest_h):
        u["pharmacy_id"] = _honest_pick(rng, honest_h, region.reindex(u["person_id"]).to_numpy())
        u["clinic_id"] = ""
        u = _later(rng, u, ["date"])
        u["purchase_id"] = [f"UR{i:08d}" for i in range(1, len(u) + 1)]
        purchases = pd.concat([purchases, u], ignore_index=True)
    return visits, purchases


def _facility_region(events: pd.DataFrame, column: str, region: pd.Series) -> pd.Series:
    """Each facility's most common patient region (the facility tables are not read here)."""
    r = region.reindex(events["person_id"]).to_numpy()
    frame = pd.DataFrame({"f": events[column].to_numpy(), "r": r})
    return frame.groupby("f")["r"].agg(lambda s: s.mode().iloc[0])


def _later(rng: np.random.Generator, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Dates moved 2 to 20 days later, within 2025."""
    shift = pd.to_timedelta(rng.integers(2, 21, len(frame)), unit="D")
    for c in columns:
        dates = pd.to_datetime(frame[c].replace("", None), errors="coerce")
        moved = (dates + shift).where(dates + shift <= SNAPSHOT, dates)
        frame[c] = moved.dt.strftime("%Y-%m-%d").fillna("")
    return frame


def _drift(visits: pd.DataFrame, truth: pd.DataFrame, p: Realistic) -> pd.DataFrame:
    """From July, the drifting pattern's persons spread same-day clinic visits over following days."""
    who = set(truth.loc[(truth["pattern"] == p.drifting_pattern) & (truth["entity_type"] == "person"), "entity_id"])
    dates = pd.to_datetime(visits["date"])
    mine = visits["person_id"].isin(who).to_numpy() & (dates >= DRIFT_FROM).to_numpy()
    if not mine.any():
        return visits
    rank = visits[mine].groupby(["person_id", "date"]).cumcount().to_numpy()
    moved = (dates[mine] + pd.to_timedelta(rank, unit="D")).clip(upper=SNAPSHOT)
    visits.loc[mine, "date"] = moved.dt.strftime("%Y-%m-%d").to_numpy()
    return visits


def _shared_households(rng: np.random.Generator, persons: pd.DataFrame, p: Realistic) -> pd.DataFrame:
    """Lawful look-alike of identity rings: some households share one phone and one bank account."""
    by_address = persons.groupby("address").indices
    multi = [ix for ix in by_address.values() if len(ix) >= 2]
    if not multi:
        return persons
    k = min(len(multi), max(1, int(p.shared_household_share * len(persons) / 2)))
    for j in rng.choice(len(multi), size=k, replace=False):
        ix = multi[int(j)]
        persons.loc[persons.index[ix], "phone"] = persons["phone"].iloc[ix[0]]
        persons.loc[persons.index[ix], "bank_account"] = persons["bank_account"].iloc[ix[0]]
    return persons


def _referrals(
    rng: np.random.Generator, visits: pd.DataFrame, truth: pd.DataFrame, bad: set[str], p: Realistic
) -> pd.DataFrame:
    """Lawful look-alike of multi-hospital visits: a same-day referral to a second clinic."""
    fraud = set(truth.loc[truth["entity_type"] == "person", "entity_id"])
    pool = visits[~visits["person_id"].isin(fraud) & (visits["kind"] == "outpatient")]
    people = pool["person_id"].unique()
    if len(people) == 0:
        return visits
    chosen = rng.choice(people, size=max(1, int(p.referral_share * len(people))), replace=False)
    first = pool[pool["person_id"].isin(set(chosen))].drop_duplicates("person_id").copy()
    clinics = np.array(sorted(set(visits["clinic_id"]) - bad))
    other = clinics[rng.integers(0, len(clinics), len(first))]
    first["clinic_id"] = np.where(other == first["clinic_id"].to_numpy(), clinics[0], other)
    first["visit_id"] = [f"VF{i:08d}" for i in range(1, len(first) + 1)]
    return pd.concat([visits, first], ignore_index=True)


def _job_overlaps(
    rng: np.random.Generator,
    employment: pd.DataFrame,
    contributions: pd.DataFrame,
    benefits: pd.DataFrame,
    truth: pd.DataFrame,
    p: Realistic,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lawful look-alike of benefit-while-employed: a new job starting in the last benefit month,
    its first contribution paid that month (one month of overlap)."""
    fraud = set(truth.loc[truth["entity_type"] == "person", "entity_id"])
    unemp = benefits[(benefits["benefit_type"] == "unemployment") & ~benefits["person_id"].isin(fraud)]
    if unemp.empty or employment.empty:
        return employment, contributions
    last = unemp.sort_values("month").drop_duplicates("person_id", keep="last")
    last = last[last["month"] < "2025-12"]
    last = last[rng.random(len(last)) < p.job_overlap_share]
    employers = employment["employer_id"].unique()
    chosen = employers[rng.integers(0, len(employers), len(last))]
    wage = rng.integers(3000, 9000, len(last))
    jobs = pd.DataFrame(
        {
            "person_id": last["person_id"].to_numpy(),
            "employer_id": chosen,
            "start_date": (last["month"] + "-15").to_numpy(),
            "end_date": "",
            "monthly_wage": wage.astype(str),
            "agency_id": "",
        }
    )
    base = np.maximum(wage, 4500)
    paid = pd.DataFrame(
        {
            "employer_id": chosen,
            "person_id": last["person_id"].to_numpy(),
            "month": last["month"].to_numpy(),
            "base": base.astype(str),
            "due": (base * 24 // 100).astype(str),
            "paid": (base * 24 // 100).astype(str),
        }
    )
    return pd.concat([employment, jobs], ignore_index=True), pd.concat([contributions, paid], ignore_index=True)


def _death_month_paid(
    rng: np.random.Generator, benefits: pd.DataFrame, persons: pd.DataFrame, truth: pd.DataFrame, p: Realistic
) -> pd.DataFrame:
    """Lawful look-alike of pension after death: the pension of the death month itself paid."""
    fraud = set(truth.loc[truth["entity_type"] == "person", "entity_id"])
    dead = persons[(persons["death_date"] >= "2025-07-01") & ~persons["person_id"].isin(fraud)]
    pension = benefits[benefits["benefit_type"] == "pension"]
    amounts = pension.groupby("person_id")["amount"].first()
    dead = dead[dead["person_id"].isin(amounts.index)]
    dead = dead[rng.random(len(dead)) < p.death_month_paid_share]
    rows = pd.DataFrame(
        {
            "person_id": dead["person_id"].to_numpy(),
            "month": dead["death_date"].str[:7].to_numpy(),
            "benefit_type": "pension",
            "amount": amounts.reindex(dead["person_id"]).to_numpy(),
        }
    )
    have = set(zip(pension["person_id"], pension["month"]))
    rows = rows[[(a, b) not in have for a, b in zip(rows["person_id"], rows["month"])]]
    return pd.concat([benefits, rows], ignore_index=True)


def _late_noisy_labels(
    rng: np.random.Generator, labels: pd.DataFrame, visits: pd.DataFrame, purchases: pd.DataFrame, p: Realistic
) -> pd.DataFrame:
    """10% of labels flipped; each dated 3-9 months after its act; those not arrived by the snapshot dropped."""
    if labels.empty:
        return labels
    events = pd.concat([visits[["person_id", "date"]], purchases[["person_id", "date"]]], ignore_index=True)
    events = events[events["date"] != ""]
    median_day = pd.to_datetime(events["date"]).groupby(events["person_id"].to_numpy()).median()
    act = pd.to_datetime(labels["entity_id"].map(median_day))
    random_day = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, len(labels)), unit="D")
    act = act.where(act.notna() & (labels["entity_type"] == "person"), pd.Series(random_day, index=labels.index))
    lo, hi = p.delay_months
    as_of = act + pd.to_timedelta(rng.integers(lo * 30, hi * 30 + 1, len(labels)), unit="D")
    flip = rng.random(len(labels)) < p.wrong_labels
    out = labels.assign(
        label=np.where(flip, 1 - labels["label"].astype(int), labels["label"].astype(int)).astype(str),
        as_of=as_of.dt.strftime("%Y-%m-%d"),
    )
    return out[as_of <= SNAPSHOT].reset_index(drop=True)
