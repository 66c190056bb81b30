"""Employment spells, employers, agency placements, honest benefits and monthly contributions."""

from __future__ import annotations

import math

import numpy as np

from synth.arrays import Rows, money, month_of
from synth.params import (
    DAYS_IN_YEAR,
    FIRST_WINDOW_MONTH,
    INDUSTRIES,
    INJURY,
    MONTH_STARTS,
    ONGOING,
    PENSION,
    UNEMPLOYMENT,
)
from synth.world import World


def build_employment(w: World) -> None:
    """Spells (stable, new hires, changers, laid off, quitters), employers by region, agency placements."""
    n, m, rng = w.n, w.m, w.rng
    working = ~w.pensioner
    u = rng.random(n)
    employed = working & (u < m.employed_share)
    v = rng.random(n)
    cuts = np.cumsum([m.changer_share, m.laid_off_share, m.new_hire_share])
    kind = np.where(v < cuts[0], 1, np.where(v < cuts[1], 2, np.where(v < cuts[2], 3, 0)))
    w.stable = employed & (kind == 0)
    changer, laid_off, new_hire = (employed & (kind == k) for k in (1, 2, 3))
    quitter = working & ~employed & (rng.random(n) < m.quitter_share)
    w.jobless = working & ~employed & ~quitter  # pool for identity rings and fake enrolment

    def month_day(month: np.ndarray) -> np.ndarray:
        length = MONTH_STARTS[month + 1] - MONTH_STARTS[month]
        return MONTH_STARTS[month] + (rng.random(len(month)) * length).astype(int)

    def past(k: int) -> np.ndarray:  # start dates 1 month to 15 years back
        return -rng.integers(30, 365 * 15, k)

    spells = Rows("person", "start", "end")
    p = np.flatnonzero(w.stable)
    spells.add(person=p, start=past(len(p)), end=ONGOING)
    p = np.flatnonzero(new_hire)
    spells.add(person=p, start=rng.integers(0, DAYS_IN_YEAR, len(p)), end=ONGOING)
    p = np.flatnonzero(changer)
    k = rng.integers(1, 11, len(p))
    spells.add(person=p, start=past(len(p)), end=month_day(k))
    spells.add(person=p, start=MONTH_STARTS[k + 1] + rng.integers(0, 10, len(p)), end=ONGOING)
    p = np.flatnonzero(laid_off)
    k_laid = rng.integers(5, 9, len(p))
    spells.add(person=p, start=past(len(p)), end=month_day(k_laid))
    p = np.flatnonzero(quitter)
    spells.add(person=p, start=past(len(p)), end=month_day(rng.integers(0, 5, len(p))))
    all_spells = spells.concat()
    person, start, end = all_spells["person"], all_spells["start"], all_spells["end"]

    # legitimate unemployment benefit after a lay-off
    p = np.flatnonzero(laid_off)
    first = k_laid + 1
    last = np.minimum(11, k_laid + rng.integers(3, 13, len(p)))
    w.monthly_benefit(p, first, last, UNEMPLOYMENT, w.unemployment_amount(p))

    # employers: lognormal sizes; spells ordered by region so most work in their region
    size = np.maximum(
        1, np.round(rng.lognormal(math.log(m.employer_size_median), m.employer_size_sigma, len(person))).astype(int)
    )
    n_e = int(np.searchsorted(np.cumsum(size), len(person))) + 1
    size = size[:n_e]
    w.e_region = np.sort(rng.integers(0, w.n_regions, n_e))
    slots = np.repeat(np.arange(n_e), size)[: len(person)]
    order = np.lexsort((rng.random(len(person)), w.region[person]))
    employer = np.empty(len(person), dtype=np.int64)
    employer[order] = slots
    e_wage = rng.lognormal(math.log(m.wage_median), 0.3, n_e)
    wage = money(np.round(e_wage[employer] * rng.lognormal(0, 0.35, len(person)), -1))
    agency = np.where(rng.random(len(person)) < m.dispatch_share, rng.integers(0, w.n_agencies, len(person)), -1)
    w.spells.add(person=person, employer=employer, start=start, end=end, wage=wage, agency=agency)
    w.n_employers = n_e
    w.e_registered = -rng.integers(365, 365 * 30, n_e)
    w.e_industry = rng.integers(0, len(INDUSTRIES), n_e)
    w.e_shell = np.zeros(n_e, dtype=bool)
    w.e_shared_contact = np.arange(n_e)  # shells of one scheme share phone and address
    w.e_staff = np.zeros(n_e, dtype=np.int64)  # filled from the real size by count_staff
    _agency_links(w, agency, person, employer, start)


def _agency_links(w: World, agency: np.ndarray, person: np.ndarray, employer: np.ndarray, start: np.ndarray) -> None:
    placed = agency >= 0
    w.links.add(
        agency=agency[placed], etype=0, entity=person[placed], relation=0, start=np.maximum(start[placed], -365 * 5)
    )
    pairs = np.unique(np.stack([agency[placed], employer[placed]], axis=1), axis=0)
    w.links.add(
        agency=pairs[:, 0], etype=1, entity=pairs[:, 1], relation=1, start=-w.rng.integers(365, 365 * 6, len(pairs))
    )


def build_benefits(w: World) -> None:
    """Pensions (stopping at a legitimate death) and short injury benefits; needs the lone fraud roles."""
    n, m, rng = w.n, w.m, w.rng
    p = np.flatnonzero(w.pensioner)
    amount = np.round(rng.lognormal(math.log(m.pension_median), 0.35, len(p)), -1)
    # paid up to the month of death; fraud pensions are planted separately
    last = np.where(w.death[p] < DAYS_IN_YEAR, month_of(np.minimum(w.death[p], 364)), 11)
    last[np.isin(p, w.after_death)] = 11
    w.monthly_benefit(p, np.full(len(p), FIRST_WINDOW_MONTH), last, PENSION, amount)
    p = np.flatnonzero(~w.pensioner & (rng.random(n) < m.injury_share))
    first = rng.integers(FIRST_WINDOW_MONTH, 12, len(p))
    w.monthly_benefit(
        p,
        first,
        np.minimum(11, first + rng.integers(0, 3, len(p))),
        INJURY,
        np.round(rng.lognormal(math.log(6000), 0.5, len(p)), -1),
    )


def count_staff(w: World) -> None:
    """staff_headcount from each employer's real size (before fake-enrolment shells exist)."""
    s = w.spells.concat()
    size = np.bincount(s["employer"], minlength=w.n_employers)
    staff = np.round(size * w.rng.uniform(0.9, 1.15, w.n_employers))
    w.e_staff = np.maximum(1, staff).astype(np.int64)


def build_contributions(w: World) -> None:
    """One row per spell month in the window, at the capped wage; a few honest employers pay one month late.

    Planted arrears and back payments then change `paid` (fraud.py, rings.py).
    """
    m, rng = w.m, w.rng
    s = w.spells.concat()
    first = np.maximum(FIRST_WINDOW_MONTH, month_of(s["start"]))
    last = np.minimum(11, month_of(s["end"]))
    count = np.maximum(0, last - first + 1)
    row = np.repeat(np.arange(len(count)), count)
    month = first[row] + (np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count))
    employer, person = s["employer"][row], s["person"][row]
    base = np.clip(s["wage"][row], m.contribution_floor, m.contribution_ceiling)
    due = money(base * m.contribution_rate)
    paid = due.copy()
    # look-alike: one month paid late (partially) by some honest employers
    n_e = w.n_employers
    late = (rng.random(n_e) < m.late_month_employer_share) & ~w.e_shell
    late_month = rng.integers(FIRST_WINDOW_MONTH, 12, n_e)
    hit = late[employer] & (month == late_month[employer])
    paid[hit] = money(due[hit] * rng.uniform(0.3, 0.9, hit.sum()))
    w.e_late = late
    # "opening": the spell's first month in the window (not a column of the table)
    w.contrib = {
        "employer": employer,
        "person": person,
        "month": month,
        "base": money(base),
        "due": due,
        "paid": paid,
        "opening": month == first[row],
    }
    insured = np.unique(employer * w.n + person)
    w.e_insured = np.bincount(insured // w.n, minlength=n_e)
