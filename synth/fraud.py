"""Planted fraud by lone actors (persons, employers), and the fraudulent events that rings reuse.

Every planted entity goes to the truth with its pattern (ring_id empty for lone actors).
"""

from __future__ import annotations

import math

import numpy as np

from synth.arrays import money
from synth.params import (
    DAYS_IN_YEAR,
    FIRST_WINDOW_MONTH,
    INPATIENT,
    MONTH_STARTS,
    N_DRUGS,
    OUTPATIENT,
    UNEMPLOYMENT,
)
from synth.world import World


def choose_lone_roles(w: World) -> None:
    """Lone fraud persons per pattern; plants pension_after_death deaths and unemployment_while_employed.

    Runs before benefits and activity are drawn, so the planted deaths shape pensions and events.
    """
    n, m, rng = w.n, w.m, w.rng
    budget = round(n * m.person_fraud_share)
    w.ring_budget = budget - round(budget * m.lone_share)
    shares = {
        "multi_hospital": 0.3,
        "unemployment_while_employed": 0.25,
        "over_prescribing": 0.2,
        "pension_after_death": 0.15,
        "phantom_stay": 0.1,
    }
    lone = round(budget * m.lone_share)
    w.lone = {k: max(1, round(lone * s)) for k, s in shares.items()}
    alive = w.death >= DAYS_IN_YEAR
    w.after_death = w.pick(w.pensioner & alive, w.lone["pension_after_death"])
    w.death[w.after_death] = rng.integers(0, MONTH_STARTS[9], len(w.after_death))
    w.add_truth("person", w.after_death, "pension_after_death")
    w.alive = w.death >= DAYS_IN_YEAR
    p = w.pick(w.stable, w.lone["unemployment_while_employed"])
    length = rng.integers(2, 6, len(p))
    first = rng.integers(FIRST_WINDOW_MONTH, 12 - length + 1)
    w.monthly_benefit(p, first, first + length - 1, UNEMPLOYMENT, w.unemployment_amount(p))
    w.add_truth("person", p, "unemployment_while_employed")


def plant_lone_medical(w: World) -> None:
    """Lone multi_hospital, over_prescribing and phantom_stay persons; purchases by the dead."""
    rng = w.rng
    p = w.pick(w.alive, w.lone["multi_hospital"])
    multi_hospital(w, p)
    w.add_truth("person", p, "multi_hospital")
    p = w.pick(w.alive, w.lone["over_prescribing"])
    over_supply(w, p)
    w.add_truth("person", p, "over_prescribing")
    p = w.pick(w.alive, w.lone["phantom_stay"])
    clinic = w.clinic_sampler.pick(w.region[p], rng)
    admit = rng.integers(0, 330, len(p))
    stay = rng.integers(7, 16, len(p))
    w.add_visits(p, clinic, admit, INPATIENT, stay=stay)
    for _ in range(2):
        w.add_acute_purchases(p, w.home_pharmacy[p], admit + rng.integers(1, stay), np.full(len(p), -1))
    w.add_truth("person", p, "phantom_stay")
    # claims for the dead: some cards keep buying after death
    dead = w.after_death[rng.random(len(w.after_death)) < 0.3]
    for _ in range(2):
        day = np.minimum(364, w.death[dead] + rng.integers(5, 90, len(dead)))
        w.add_acute_purchases(dead, w.home_pharmacy[dead], day, np.full(len(dead), -1))


def multi_hospital(w: World, p: np.ndarray) -> None:
    """Each person visits 2-3 different clinics on one day, on 2-5 days."""
    rng = w.rng
    days = rng.integers(2, 6, len(p))
    person = np.repeat(p, days)
    day = rng.integers(0, DAYS_IN_YEAR, len(person))
    per_day = rng.integers(2, 4, len(person))
    person, day = np.repeat(person, per_day), np.repeat(day, per_day)
    nth = np.arange(len(person)) - np.repeat(np.cumsum(per_day) - per_day, per_day)
    first = np.repeat(w.clinic_sampler.pick(w.region[p].repeat(days), rng), per_day)
    step = rng.integers(1, max(2, w.n_clinics // 3), len(person))
    clinic = (first + nth * step) % w.n_clinics
    clinic = np.where(nth == 0, first, clinic)
    clinic = np.where((nth > 0) & (clinic == first), (first + nth) % w.n_clinics, clinic)
    w.add_visits(person, clinic, day, OUTPATIENT)


def over_supply(w: World, person: np.ndarray, pharmacy: int | None = None) -> None:
    """4-8 purchases of one drug, each 30-90 days' supply, every 7-15 days (overlapping).

    At `pharmacy` when given (a complicit pharmacy), else at the home or a nearby pharmacy.
    """
    rng = w.rng
    count = rng.integers(4, 9, len(person))
    row = np.repeat(np.arange(len(person)), count)
    p = person[row]
    gap = rng.integers(7, 16, len(row))
    cum = np.cumsum(gap)
    group_start = np.repeat(np.cumsum(count) - count, count)
    day = rng.integers(0, 200, len(person))[row] + cum - cum[group_start] + gap[group_start]
    k = len(row)
    supply = rng.choice([30, 60, 90], size=k)
    if pharmacy is None:
        where = np.where(rng.random(k) < 0.5, w.home_pharmacy[p], w.pharmacy_sampler.pick(w.region[p], rng))
    else:
        where = np.full(k, pharmacy)
    w.purchases.add(
        person=p,
        pharmacy=where,
        day=np.minimum(364, day),
        amount=money(rng.lognormal(math.log(150), 0.3, k) * supply / 14),
        drug=rng.integers(0, N_DRUGS, len(person))[row],
        quantity=supply // 7,
        days_supply=supply,
        clinic=np.where(rng.random(k) < 0.5, w.home_clinic[p], -1),
    )


def plant_arrears(w: World) -> None:
    """Employers (3+ contribution rows, not late payers) paying less than due for 3-6 consecutive months."""
    m, rng = w.m, w.rng
    c = w.contrib
    employer, month, due, paid = c["employer"], c["month"], c["due"], c["paid"]
    n_e = w.n_employers
    size = np.bincount(employer, minlength=n_e)
    pool = np.flatnonzero((size >= 3) & ~w.e_shell & ~w.e_late)
    k = min(len(pool), max(1, round(n_e * m.employer_arrears_share)))
    arrears = rng.choice(pool, size=k, replace=False)
    run = np.zeros(n_e, dtype=np.int64)
    run[arrears] = rng.integers(3, 7, k)
    run_start = FIRST_WINDOW_MONTH + (rng.random(n_e) * (7 - np.maximum(run, 1))).astype(int)
    since = month - run_start[employer]
    hit = (since >= 0) & (since < run[employer])
    paid[hit] = money(due[hit] * rng.uniform(0.0, 0.5, hit.sum()))
    w.add_truth("employer", arrears, "arrears")
