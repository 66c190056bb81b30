"""Honest medical activity: visits (with referrals and inpatient stays) and drug purchases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synth.arrays import money
from synth.params import DAYS_IN_YEAR, INPATIENT, OUTPATIENT
from synth.world import World


def build_medical(w: World) -> None:
    """Visits at the home or a nearby clinic, referrals, acute and chronic purchases; none inside a stay."""
    n, m, rng = w.n, w.m, w.rng
    alive_days = np.minimum(w.death, DAYS_IN_YEAR)
    share_chronic = w.chronic.mean()
    base = (m.visits_per_person - m.busy_share * m.busy_visits) / (
        (1 - m.busy_share) * (1 + (m.chronic_visit_factor - 1) * share_chronic)
    )
    rate = rng.gamma(2.0, base / 2.0, n) * np.where(w.chronic, m.chronic_visit_factor, 1.0)
    busy = rng.random(n) < m.busy_share
    rate[busy] = m.busy_visits
    count = rng.poisson(rate * alive_days / DAYS_IN_YEAR)
    person = np.repeat(np.arange(n), count)
    day = (rng.random(len(person)) * alive_days[person]).astype(np.int64)
    # one clinic per person-day in normal activity: same-day multi-clinic is the fraud signal
    _, keep = np.unique(person * 400 + day, return_index=True)
    person, day = person[keep], day[keep]
    u = rng.random(len(person))
    second_home = w.clinic_sampler.pick(w.region, rng)
    home = np.where(busy[person] & (u > 0.5), second_home[person], w.home_clinic[person])
    clinic = np.where(u < m.home_clinic_share, home, w.clinic_sampler.pick(w.region[person], rng))
    kind = (rng.random(len(person)) < m.inpatient_share).astype(np.int64)
    w.add_visits(person, clinic, day, kind)
    # referrals: innocent persons seen at two clinics on one day
    p = w.pick_innocent(m.referral_share)
    d = (rng.random(len(p)) * alive_days[p]).astype(np.int64)
    second = w.clinic_sampler.pick(w.region[p], rng)
    second = np.where(second == w.home_clinic[p], (second + 1) % w.n_clinics, second)
    w.add_visits(np.r_[p, p], np.r_[w.home_clinic[p], second], np.r_[d, d], 0)
    # the pharmacy next door fills many of the big hospital's prescriptions, same day
    v = w.visits.concat()
    for c, h in w.next_door.items():
        sel = (v["clinic"] == c) & (v["kind"] == OUTPATIENT)
        sel &= rng.random(len(sel)) < m.next_door_purchase_share
        w.add_acute_purchases(v["person"][sel], np.full(sel.sum(), h), v["day"][sel], np.full(sel.sum(), c))
    # acute purchases
    count = rng.poisson(np.where(w.chronic, 0.6, m.acute_purchases) * alive_days / DAYS_IN_YEAR)
    person = np.repeat(np.arange(n), count)
    day = (rng.random(len(person)) * alive_days[person]).astype(np.int64)
    pharmacy = np.where(
        rng.random(len(person)) < m.home_pharmacy_share,
        w.home_pharmacy[person],
        w.pharmacy_sampler.pick(w.region[person], rng),
    )
    clinic = np.where(rng.random(len(person)) < m.prescribed_share, w.home_clinic[person], -1)
    w.add_acute_purchases(person, pharmacy, day, clinic)
    _add_chronic_purchases(w, alive_days)
    _drop_events_during_stays(w)


def _add_chronic_purchases(w: World, alive_days: np.ndarray) -> None:
    """Evenly spaced refills; 14- and 28-day supplies that never overlap (look-alike)."""
    m, rng = w.m, w.rng
    p = np.flatnonzero(w.chronic)
    count = rng.poisson(m.chronic_purchases * alive_days[p] / DAYS_IN_YEAR)
    keep = count > 0
    p, count = p[keep], count[keep]
    spacing = alive_days[p] / count
    supply = np.select([spacing >= 31, spacing >= 17], [28, 14], np.minimum(7, np.maximum(1, spacing - 3)))
    short = rng.random(len(p)) >= m.long_prescription_share
    supply = np.where(short, np.minimum(supply, 7), supply).astype(np.int64)
    offset = rng.random(len(p)) * np.maximum(spacing - supply - 1, 0)
    row = np.repeat(np.arange(len(p)), count)
    nth = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    day = np.floor(offset[row] + nth * spacing[row]).astype(np.int64)
    person = p[row]
    k = len(row)
    pharmacy = np.where(rng.random(k) < 0.9, w.home_pharmacy[person], w.pharmacy_sampler.pick(w.region[person], rng))
    w.purchases.add(
        person=person,
        pharmacy=pharmacy,
        day=day,
        amount=money(rng.lognormal(math.log(150), 0.4, k) * supply[row] / 14),
        drug=w.chronic_code(person),
        quantity=np.maximum(1, supply[row] // 7),
        days_supply=supply[row],
        clinic=np.where(rng.random(k) < 0.5, w.home_clinic[person], -1),
    )


def _drop_events_during_stays(w: World) -> None:
    """Normal activity never falls inside an inpatient stay (that is the phantom-stay signal)."""
    v = w.visits.concat()
    stays = pd.DataFrame(
        {"person": v["person"], "admit": v["day"], "out": v["day"] + v["stay"], "row": np.arange(len(v["day"]))}
    )[v["kind"] == INPATIENT]
    events = {"visits": v, "purchases": w.purchases.concat()}
    for name, e in events.items():
        df = pd.DataFrame({"person": e["person"], "day": e["day"], "row": np.arange(len(e["day"]))})
        hit = df.merge(stays, on="person", suffixes=("", "_stay"))
        inside = (hit["day"] >= hit["admit"]) & (hit["day"] <= hit["out"])
        if name == "visits":
            inside &= hit["row"] != hit["row_stay"]
        drop = np.zeros(len(df), dtype=bool)
        drop[hit.loc[inside, "row"].to_numpy()] = True
        rows = getattr(w, name)
        rows.parts = [{k: a[~drop] for k, a in e.items()}]
