"""Persons, households, their contacts, and the facilities (clinics, pharmacies, agencies) they use."""

from __future__ import annotations

import numpy as np

from synth.arrays import RegionalSampler, unique_codes
from synth.params import DAYS_IN_YEAR, ONGOING
from synth.world import World


def build_population(w: World) -> None:
    """Persons with ages, deaths, chronic illness and households sharing an address; then facilities."""
    n, m, rng = w.n, w.m, w.rng
    w.region = rng.integers(0, w.n_regions, n)
    w.gender = rng.integers(0, 2, n)
    w.pensioner = rng.random(n) < m.pensioner_share
    age = np.where(w.pensioner, 60 + np.minimum(30, rng.exponential(9.0, n)).astype(int), rng.integers(18, 60, n))
    w.age = age
    w.birth = (DAYS_IN_YEAR - 1) - np.floor(age * 365.25 + rng.random(n) * 364).astype(np.int64)
    w.chronic = rng.random(n) < np.where(w.pensioner, m.chronic_share_old, m.chronic_share_young)
    w.death = np.full(n, ONGOING, dtype=np.int64)
    dies = w.pensioner & (rng.random(n) < m.pensioner_death_rate * (age - 50) / 20)
    w.death[dies] = rng.integers(0, DAYS_IN_YEAR, dies.sum())
    # households: family members share an address
    order = np.lexsort((rng.random(n), w.region))
    sizes = rng.choice(np.arange(1, len(m.household_sizes) + 1), size=n, p=m.household_sizes)
    hh_sorted = np.repeat(np.arange(n), sizes)[:n]
    w.household = np.empty(n, dtype=np.int64)
    w.household[order] = hh_sorted
    w.n_households = int(hh_sorted[-1]) + 1
    w.hh_region = np.zeros(w.n_households, dtype=np.int64)
    w.hh_region[hh_sorted] = w.region[order]
    w.phone = unique_codes(rng, n, 13_000_000_000, 19_999_999_999)
    w.bank = unique_codes(rng, n, 6_222_000_000_000_000, 6_222_999_999_999_999)
    # innocent sharing: elders using a relative's phone, couples sharing one account
    head = np.zeros(w.n_households, dtype=np.int64)
    head[w.household[::-1]] = np.arange(n)[::-1]  # first member of each household
    hh_size = np.bincount(w.household, minlength=w.n_households)
    in_family = hh_size[w.household] > 1
    not_head = head[w.household] != np.arange(n)
    elder = w.pensioner & in_family & not_head & (rng.random(n) < m.elder_shared_phone_share)
    w.phone[elder] = w.phone[head[w.household[elder]]]
    couple = in_family & not_head & (rng.random(n) < m.couple_shared_bank_share)
    w.bank[couple] = w.bank[head[w.household[couple]]]
    _build_facilities(w)


def _facility_regions(w: World, k: int) -> np.ndarray:
    region = w.rng.integers(0, w.n_regions, k)
    region[: w.n_regions] = np.arange(w.n_regions)  # every region has one
    return region


def _build_facilities(w: World) -> None:
    n, m, rng = w.n, w.m, w.rng
    n_c = max(m.min_clinics, round(n / m.persons_per_clinic), w.n_regions)
    n_h = max(m.min_pharmacies, round(n / m.persons_per_pharmacy), w.n_regions)
    n_a = max(m.min_agencies, round(n / m.persons_per_agency))
    w.n_clinics, w.n_pharmacies, w.n_agencies = n_c, n_h, n_a
    w.c_region = _facility_regions(w, n_c)
    w.c_level = rng.choice(3, size=n_c, p=m.level_shares)
    w.c_level[0] = 2  # at least one tertiary hospital
    w.c_beds = np.select(
        [w.c_level == 0, w.c_level == 1],
        [rng.integers(10, 60, n_c), rng.integers(150, 600, n_c)],
        rng.integers(800, 2000, n_c),
    )
    w.c_address = np.arange(n_c)  # address number; pairs share one below
    w.h_region = _facility_regions(w, n_h)
    w.h_address = n_c + np.arange(n_h)
    w.a_region = rng.integers(0, w.n_regions, n_a)
    weight = np.asarray(m.level_weight)[w.c_level]
    w.clinic_sampler = RegionalSampler(w.c_region, weight, w.n_regions)
    w.pharmacy_sampler = RegionalSampler(w.h_region, np.ones(n_h), w.n_regions)
    w.home_clinic = w.clinic_sampler.pick(w.region, rng)
    w.home_pharmacy = w.pharmacy_sampler.pick(w.region, rng)
    # innocent look-alike: big hospitals with a pharmacy next door (same address)
    tertiary = np.flatnonzero(w.c_level == 2)
    k = max(1, int(len(tertiary) * m.next_door_pairs_share))
    w.next_door = {}
    used: set[int] = set()
    for c in rng.choice(tertiary, size=k, replace=False):
        options = [h for h in np.flatnonzero(w.h_region == w.c_region[c]) if h not in used]
        if options:
            h = int(rng.choice(options))
            used.add(h)
            w.next_door[int(c)] = h
            w.h_address[h] = w.c_address[c]
    w.c_used = np.zeros(n_c, dtype=bool)
    w.h_used = np.zeros(n_h, dtype=bool)
    w.c_used[list(w.next_door)] = True  # never used as fraud facilities
    w.h_used[list(w.next_door.values())] = True
