"""Planted fraud rings: facilities with their persons, identity and card-broker groups, fake enrolment.

Each ring gets a ring_id in the truth; its members are drawn mostly from the facility's region.
"""

from __future__ import annotations

import math

import numpy as np

from synth.arrays import money
from synth.fraud import multi_hospital, over_supply
from synth.params import (
    ACUTE_DIAGNOSES,
    CHRONIC_DIAGNOSES,
    DAYS_IN_YEAR,
    EXPENSIVE_DRUGS,
    FIRST_WINDOW_MONTH,
    INDUSTRIES,
    INPATIENT,
    INPATIENT_DIAGNOSES,
    MONTH_STARTS,
    N_DRUGS,
    OUTPATIENT,
    UNEMPLOYMENT,
)
from synth.world import World


def plant_rings(w: World) -> None:
    """Facility rings in proportion to facilities, then identity and card-broker rings up to the budget."""
    m, rng = w.m, w.rng
    n_fc = max(3, round(w.n_clinics * m.facility_fraud_share))
    n_split = max(1, round(0.2 * n_fc))
    n_phantom = max(1, round(0.2 * n_fc))
    n_collusion = max(1, n_fc - n_split - n_phantom)
    n_fp = max(n_collusion + 1, round(w.n_pharmacies * m.facility_fraud_share))
    ring_persons = 0
    for _ in range(n_collusion):
        ring_persons += _collusion_ring(w)
    for _ in range(n_split):
        ring_persons += _split_admission_ring(w)
    for _ in range(n_phantom):
        ring_persons += _phantom_stay_ring(w)
    for _ in range(n_fp - n_collusion):
        ring_persons += _over_prescribing_ring(w)
    kinds = 0
    while kinds < 2 or ring_persons < w.ring_budget:
        if kinds == 0 or (kinds > 1 and rng.random() < 0.55):
            ring_persons += _identity_ring(w)
        else:
            ring_persons += _card_broker_ring(w)
        kinds += 1
    # some ring members also act alone (one entity, several patterns)
    members = np.concatenate([i for t, i, pat, _ in w.truth if t == "person" and pat == "collusion"])
    both = rng.choice(members, size=max(1, len(members) // 10), replace=False)
    multi_hospital(w, both)
    w.add_truth("person", both, "multi_hospital")


def plant_fake_enrolment(w: World) -> None:
    """One fake-enrolment scheme per persons_per_fake_scheme persons (at least one)."""
    n_schemes = max(1, round(w.n / w.m.persons_per_fake_scheme))
    for _ in range(n_schemes):
        _fake_enrolment_scheme(w)


def plant_back_payments(w: World) -> None:
    """Fake enrolment near retirement: a lump-sum back payment of 10-15 years in the first month."""
    c = w.contrib
    back = np.isin(c["person"], w.back_payment) & c["opening"]
    c["paid"][back] = money(c["due"][back] * 12 * w.rng.uniform(10, 15, back.sum()))


def _free_facility(
    w: World, used: np.ndarray, allowed: np.ndarray, region: np.ndarray | None = None, in_region: int | None = None
) -> int:
    ok = ~used & allowed
    if in_region is not None and region is not None and np.any(ok & (region == in_region)):
        ok &= region == in_region
    options = np.flatnonzero(ok)
    if len(options) == 0:
        options = np.flatnonzero(allowed)
    idx = int(w.rng.choice(options))
    used[idx] = True
    return idx


def _members(w: World, size: int, region: int) -> np.ndarray:
    return w.pick(w.alive, size, prefer=w.region == region)


def _collusion_ring(w: World) -> int:
    rng = w.rng
    clinic = _free_facility(w, w.c_used, w.c_level < 2)
    region = int(w.c_region[clinic])
    pharmacy = _free_facility(w, w.h_used, np.ones(w.n_pharmacies, bool), w.h_region, region)
    members = _members(w, w.ring_size(minimum=3) + 2, region)
    sessions = int(rng.integers(6, 13))
    days = np.sort(rng.choice(DAYS_IN_YEAR, size=sessions, replace=False))
    attend = rng.random((sessions, len(members))) < 0.75
    s, j = np.nonzero(attend)
    person, day = members[j], days[s]
    k = len(person)
    w.add_visits(person, np.full(k, clinic), day, OUTPATIENT, cost_factor=1.8)
    w.purchases.add(
        person=person,
        pharmacy=pharmacy,
        day=day,
        amount=money(rng.lognormal(math.log(400), 0.4, k)),
        drug=rng.integers(0, N_DRUGS, k),
        quantity=rng.integers(2, 6, k),
        days_supply=rng.integers(5, 8, k),
        clinic=clinic,
    )
    ring = w.new_ring()
    w.add_truth("clinic", clinic, "collusion", ring)
    w.add_truth("pharmacy", pharmacy, "collusion", ring)
    w.add_truth("person", members, "collusion", ring)
    return len(members)


def _split_admission_ring(w: World) -> int:
    rng = w.rng
    clinic = _free_facility(w, w.c_used, w.c_level >= 1)
    members = _members(w, w.ring_size(minimum=3), int(w.c_region[clinic]))
    for p in members:
        admissions = int(rng.integers(2, 4))
        stay = rng.integers(4, 11, admissions)
        gap = rng.integers(1, 15, admissions)
        admit = int(rng.integers(0, 250)) + np.r_[0, np.cumsum(stay + gap)[:-1]]
        diag = len(CHRONIC_DIAGNOSES) + len(ACUTE_DIAGNOSES) + int(rng.integers(0, len(INPATIENT_DIAGNOSES)))
        w.add_visits(
            np.full(admissions, p),
            np.full(admissions, clinic),
            admit,
            INPATIENT,
            stay=stay,
            diag=np.full(admissions, diag),
        )
    ring = w.new_ring()
    w.add_truth("clinic", clinic, "split_admission", ring)
    w.add_truth("person", members, "split_admission", ring)
    return len(members)


def _phantom_stay_ring(w: World) -> int:
    rng = w.rng
    clinic = _free_facility(w, w.c_used, w.c_level == 0)
    members = _members(w, w.ring_size(minimum=4), int(w.c_region[clinic]))
    w.c_beds[clinic] = max(2, len(members) - 2)  # a small clinic, more "inpatients" than beds
    k = len(members)
    start = int(rng.integers(0, 330))
    admit = start + rng.integers(0, 5, k)
    stay = rng.integers(12, 21, k)
    w.add_visits(members, np.full(k, clinic), admit, INPATIENT, stay=stay)
    elsewhere = w.clinic_sampler.pick(w.region[members], rng)
    elsewhere = np.where(elsewhere == clinic, (clinic + 1) % w.n_clinics, elsewhere)
    w.add_visits(members, elsewhere, admit + rng.integers(2, stay - 1), OUTPATIENT)
    w.add_acute_purchases(members, w.home_pharmacy[members], admit + rng.integers(1, stay), np.full(k, -1))
    ring = w.new_ring()
    w.add_truth("clinic", clinic, "phantom_stay", ring)
    w.add_truth("person", members, "phantom_stay", ring)
    return k


def _over_prescribing_ring(w: World) -> int:
    pharmacy = _free_facility(w, w.h_used, np.ones(w.n_pharmacies, bool))
    members = _members(w, w.ring_size(minimum=3), int(w.h_region[pharmacy]))
    over_supply(w, members, pharmacy)
    ring = w.new_ring()
    w.add_truth("pharmacy", pharmacy, "over_prescribing", ring)
    w.add_truth("person", members, "over_prescribing", ring)
    return len(members)


def _identity_ring(w: World) -> int:
    rng = w.rng
    members = w.pick(w.jobless & w.alive, w.ring_size())
    w.phone[members] = w.phone[members[0]]
    w.bank[members] = w.bank[members[0]]
    length = rng.integers(3, 7, len(members))
    first = rng.integers(FIRST_WINDOW_MONTH, 13 - length)
    w.monthly_benefit(members, first, first + length - 1, UNEMPLOYMENT, w.unemployment_amount(members))
    w.add_truth("person", members, "identity_ring", w.new_ring())
    return len(members)


def _card_broker_ring(w: World) -> int:
    rng = w.rng
    group = w.pick(w.alive, w.ring_size(minimum=4))
    broker, cards = group[0], group[1:]
    share_phone = rng.random(len(cards)) < 0.7
    share_bank = ~share_phone | (rng.random(len(cards)) < 0.4)
    w.phone[cards[share_phone]] = w.phone[broker]
    w.bank[cards[share_bank]] = w.bank[broker]
    pharmacies = rng.choice(w.n_pharmacies, size=min(w.n_pharmacies, int(rng.integers(4, 13))), replace=False)
    n_days = int(rng.integers(8, 21))
    days = rng.choice(DAYS_IN_YEAR, size=n_days, replace=False)
    use = rng.random((n_days, len(group))) < 0.5
    use[:, 0] |= rng.random(n_days) < 0.3
    s, j = np.nonzero(use)
    k = len(s)
    w.purchases.add(
        person=group[j],
        pharmacy=pharmacies[rng.integers(0, len(pharmacies), n_days)][s],
        day=days[s],
        amount=money(rng.uniform(300, 1500, k)),
        drug=rng.choice(EXPENSIVE_DRUGS, size=k),
        quantity=rng.integers(2, 8, k),
        days_supply=rng.integers(7, 31, k),
        clinic=np.where(rng.random(k) < 0.5, rng.integers(0, w.n_clinics, k), -1),
    )
    w.add_truth("person", group, "card_broker", w.new_ring())
    return len(group)


def _fake_enrolment_scheme(w: World) -> None:
    m, rng = w.m, w.rng
    cap = int(np.clip(w.n / 1000, m.fake_scheme_size_min, m.fake_scheme_size_max))
    size = int(rng.integers(max(m.fake_scheme_size_min, cap // 2), cap + 1))
    free = np.flatnonzero(~np.isin(np.arange(w.n_agencies), w.fraud_agencies))
    agency = int(rng.choice(free if len(free) else np.arange(w.n_agencies)))
    w.fraud_agencies.append(agency)
    persons = w.pick(w.jobless & w.alive, size)
    n_shells = int(np.clip(size // 20, 2, 6))
    shells = w.n_employers + np.arange(n_shells)
    w.n_employers += n_shells
    region = w.a_region[agency]
    w.e_region = np.r_[w.e_region, np.full(n_shells, region)]
    registered = rng.integers(-300, 60, n_shells)
    w.e_registered = np.r_[w.e_registered, registered]
    w.e_industry = np.r_[w.e_industry, np.full(n_shells, INDUSTRIES.index("services"))]
    w.e_shell = np.r_[w.e_shell, np.ones(n_shells, bool)]
    w.e_shared_contact = np.r_[w.e_shared_contact, np.full(n_shells, shells[0])]
    w.e_staff = np.r_[w.e_staff, rng.integers(1, 5, n_shells)]
    employer = shells[rng.integers(0, n_shells, len(persons))]
    length = rng.integers(2, 5, len(persons))
    first = rng.integers(FIRST_WINDOW_MONTH, 13 - length)
    start = MONTH_STARTS[first] + rng.integers(0, 5, len(persons))
    end = MONTH_STARTS[first + length] - 1
    wage = np.full(len(persons), m.contribution_floor)
    w.spells.add(person=persons, employer=employer, start=start, end=end, wage=wage, agency=agency)
    w.links.add(agency=agency, etype=0, entity=persons, relation=0, start=start)
    w.links.add(agency=agency, etype=1, entity=shells, relation=1, start=np.maximum(registered, registered + 10))
    w.back_payment = np.r_[w.back_payment, persons[w.age[persons] >= 50]]
    ring = w.new_ring()
    w.add_truth("agency", agency, "fake_enrolment", ring)
    w.add_truth("employer", shells, "fake_enrolment", ring)
    w.add_truth("person", persons, "fake_enrolment", ring)
