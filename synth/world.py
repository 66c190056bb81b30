"""The generator's state: the population as integer-indexed numpy arrays, fraud bookkeeping, event recorders.

The builders (population, employment, medical, fraud, rings) fill a `World` step by step, all drawing
from its one `rng`; `writer` turns it into text.
"""

from __future__ import annotations

import math

import numpy as np

from synth.arrays import RegionalSampler, Rows, money
from synth.params import (
    ACUTE_DIAGNOSES,
    CHRONIC_DIAGNOSES,
    FIRST_WINDOW_MONTH,
    INPATIENT,
    INPATIENT_DIAGNOSES,
    N_CHRONIC_DRUGS,
    N_DRUGS,
    Magnitudes,
)


class World:
    """Holds the population as integer-indexed numpy arrays until `writer` turns it into text."""

    # persons (population.py); days are offsets from YEAR-01-01
    region: np.ndarray
    gender: np.ndarray
    pensioner: np.ndarray
    age: np.ndarray
    birth: np.ndarray
    chronic: np.ndarray
    death: np.ndarray  # ONGOING for the living
    household: np.ndarray
    n_households: int
    hh_region: np.ndarray
    phone: np.ndarray
    bank: np.ndarray
    # facilities (population.py): c_ clinics, h_ pharmacies, a_ agencies
    n_clinics: int
    n_pharmacies: int
    n_agencies: int
    c_region: np.ndarray
    c_level: np.ndarray
    c_beds: np.ndarray
    c_address: np.ndarray
    h_region: np.ndarray
    h_address: np.ndarray
    a_region: np.ndarray
    clinic_sampler: RegionalSampler
    pharmacy_sampler: RegionalSampler
    home_clinic: np.ndarray
    home_pharmacy: np.ndarray
    next_door: dict[int, int]  # big hospital -> the pharmacy sharing its address
    c_used: np.ndarray  # facilities already given a fraud role (or next-door pairs)
    h_used: np.ndarray
    # employment and employers (employment.py; shells added by rings.py)
    stable: np.ndarray
    jobless: np.ndarray
    n_employers: int
    e_region: np.ndarray
    e_registered: np.ndarray
    e_industry: np.ndarray
    e_shell: np.ndarray
    e_shared_contact: np.ndarray
    e_staff: np.ndarray
    e_late: np.ndarray  # honest employers paying one month late
    e_insured: np.ndarray
    contrib: dict[str, np.ndarray]
    # lone fraud roles (fraud.py)
    ring_budget: int
    lone: dict[str, int]
    after_death: np.ndarray
    alive: np.ndarray

    def __init__(self, n: int, seed: int, m: Magnitudes) -> None:
        self.n, self.m = n, m
        self.rng = np.random.default_rng(seed)
        self.n_regions = int(np.clip(round(math.sqrt(n) / m.region_scale), m.min_regions, m.max_regions))
        self.truth: list[tuple[str, np.ndarray, str, str]] = []
        self.n_rings = 0
        self.taken = np.zeros(n, dtype=bool)  # persons already given a fraud role
        self.visits = Rows("person", "clinic", "day", "kind", "stay", "diag", "amount")
        self.purchases = Rows("person", "pharmacy", "day", "amount", "drug", "quantity", "days_supply", "clinic")
        self.spells = Rows("person", "employer", "start", "end", "wage", "agency")
        self.benefits = Rows("person", "month", "type", "amount")
        self.links = Rows("agency", "etype", "entity", "relation", "start")
        self.fraud_agencies: list[int] = []
        self.back_payment = np.empty(0, dtype=np.int64)  # persons with a lump-sum back payment

    # -- bookkeeping ---------------------------------------------------------------------------

    def new_ring(self) -> str:
        self.n_rings += 1
        return f"R{self.n_rings:05d}"

    def add_truth(self, etype: str, idx: np.ndarray | int, pattern: str, ring: str = "") -> None:
        self.truth.append((etype, np.atleast_1d(np.asarray(idx, dtype=np.int64)), pattern, ring))

    def pick(self, pool: np.ndarray, k: int, prefer: np.ndarray | None = None) -> np.ndarray:
        """k persons from the mask `pool` not yet given a role (from `prefer` first), marked taken."""
        free = pool & ~self.taken
        chosen = np.empty(0, dtype=np.int64)
        if prefer is not None:
            first = np.flatnonzero(free & prefer)
            chosen = self.rng.choice(first, size=min(k, len(first)), replace=False)
            free[chosen] = False
        rest = np.flatnonzero(free)
        more = self.rng.choice(rest, size=min(k - len(chosen), len(rest)), replace=False)
        chosen = np.concatenate([chosen, more]).astype(np.int64)
        self.taken[chosen] = True
        return chosen

    def pick_innocent(self, share: float) -> np.ndarray:
        """About `share` of all persons, alive and without a fraud role (not marked taken)."""
        k = max(1, round(self.n * share))
        pool = np.flatnonzero(~self.taken & self.alive)
        return self.rng.choice(pool, size=min(k, len(pool)), replace=False)

    def ring_size(self, minimum: int = 2) -> int:
        """Mean ~3.5 with a long tail up to ring_size_max."""
        size = 2 + int(self.rng.pareto(2.0) * 2.2)
        return int(np.clip(size, minimum, self.m.ring_size_max))

    # -- event recorders -----------------------------------------------------------------------

    def add_visits(
        self,
        person: np.ndarray,
        clinic: np.ndarray,
        day: np.ndarray,
        kind: np.ndarray | int,
        stay: np.ndarray | None = None,
        diag: np.ndarray | None = None,
        cost_factor: float = 1.0,
    ) -> None:
        m, rng = self.m, self.rng
        k = len(person)
        kind = np.broadcast_to(np.asarray(kind), (k,))
        inpatient = kind == INPATIENT
        if stay is None:
            stay = np.maximum(1, rng.gamma(3.0, (m.stay_mean_days - 1) / 3.0, k).round().astype(int))
        stay = np.where(inpatient, stay, -1)
        if diag is None:
            chronic_code = self.chronic_code(person)
            diag = np.where(
                self.chronic[person] & (rng.random(k) < 0.5),
                chronic_code,
                len(CHRONIC_DIAGNOSES) + rng.integers(0, len(ACUTE_DIAGNOSES), k),
            )
            diag = np.where(
                inpatient & (rng.random(k) < 0.8),
                len(CHRONIC_DIAGNOSES) + len(ACUTE_DIAGNOSES) + rng.integers(0, len(INPATIENT_DIAGNOSES), k),
                diag,
            )
        level = self.c_level[clinic]
        cost = np.asarray(m.level_cost)[level] * cost_factor
        outpatient = rng.lognormal(math.log(m.outpatient_median_cost), 0.8, k)
        inpatient_cost = m.inpatient_cost_per_day * np.maximum(stay, 1) * rng.lognormal(0, 0.4, k)
        amount = money(np.where(inpatient, inpatient_cost, outpatient) * cost)
        self.visits.add(person=person, clinic=clinic, day=day, kind=kind, stay=stay, diag=diag, amount=amount)

    def chronic_code(self, person: np.ndarray) -> np.ndarray:
        return person % len(CHRONIC_DIAGNOSES)

    def add_acute_purchases(
        self, person: np.ndarray, pharmacy: np.ndarray, day: np.ndarray, clinic: np.ndarray
    ) -> None:
        rng, k = self.rng, len(person)
        self.purchases.add(
            person=person,
            pharmacy=pharmacy,
            day=day,
            amount=money(rng.lognormal(math.log(80), 0.6, k)),
            drug=rng.integers(N_CHRONIC_DRUGS, N_DRUGS, k),
            quantity=rng.integers(1, 4, k),
            days_supply=rng.integers(3, 8, k),
            clinic=clinic,
        )

    def unemployment_amount(self, p: np.ndarray) -> np.ndarray:
        return self.m.unemployment_amount * (1 + 0.05 * (self.region[p] % 5))

    def monthly_benefit(
        self, person: np.ndarray, first: np.ndarray, last: np.ndarray, btype: int, amount: np.ndarray
    ) -> None:
        """One benefit row per month first..last (inclusive, clipped to the window) per person."""
        first = np.maximum(first, FIRST_WINDOW_MONTH)
        count = np.maximum(0, last - first + 1)
        row = np.repeat(np.arange(len(person)), count)
        month = first[row] + (np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count))
        self.benefits.add(
            person=person[row], month=month, type=btype, amount=money(np.broadcast_to(amount, len(person))[row])
        )
