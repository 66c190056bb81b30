"""Synthetic dataset generator: a population with normal activity, planted fraud and look-alikes.

`generate` writes one dataset folder in the input contract (DESIGN.md), every table as UTF-8 CSV
with a header, plus `truth/truth.csv` (entity_type, entity_id, pattern, ring_id), which the
pipeline never reads. Everything is drawn from one `numpy.random.Generator(seed)`: the same seed
gives byte-identical files. Work is vectorised over persons and events; only the few hundred
planted rings are looped over.

Time frame: events (visits, purchases, employment dates, deaths) fall in 2025; monthly records
(contributions, benefits) cover the last six months, 2025-07..2025-12, to keep about ten
relationship rows per person. `labels.as_of` is 2025-12-31.

Extra attribute columns (beyond the contract):
- persons.chronic: 1 for a chronic patient (regular long prescriptions, more visits).
- employers.staff_headcount: staff on the employer's annual business report (its real size).
- employers.insured_headcount: persons the employer declared for social insurance in the window
  (persons with contributions); far above staff_headcount for fake-enrolment shells.
- clinics.address, pharmacies.address: premises; a few big hospitals share theirs with the
  pharmacy next door.

Planted patterns (truth `pattern`; ring_id empty for lone actors):
- multi_hospital: lone persons visiting 2-3 different clinics on one day, several days a year.
- collusion: ring = clinic + pharmacy + persons who repeatedly visit that clinic and buy at that
  pharmacy (prescribed by the clinic) on the same days.
- card_broker: ring = broker + card holders sharing the broker's phone and/or bank account; the
  cards buy expensive drugs across many pharmacies, several cards on one day at one pharmacy.
- pension_after_death: lone pensioners whose pension keeps being paid months after death_date,
  some with purchases after death too.
- unemployment_while_employed: lone persons drawing unemployment benefit in months their
  employer pays contributions for them.
- fake_enrolment: ring = agency + small shell employers (recent, shared address and phone,
  staff_headcount far below insured_headcount) + many persons placed by the agency with short
  contribution spells at the floor base, some with a lump-sum back payment near retirement age.
- arrears: lone employers paying less than due for 3-6 consecutive months.
- split_admission: ring = clinic + patients readmitted with the same diagnosis within 15 days.
- phantom_stay: ring = small clinic + patients with outpatient visits or purchases elsewhere
  during their inpatient stay; also lone persons buying drugs during their own stay.
- over_prescribing: days_supply far above 7 with overlapping supply of one drug; lone persons,
  and rings = pharmacy + its regular over-supplied customers.
- identity_ring: persons sharing one phone and one bank account (different addresses), each
  drawing unemployment benefit.

Camouflage and innocent look-alikes: every fraudster also has normal activity; chronic persons
buy 14- or 28-day supplies without overlap; a few busy persons visit very often; referrals put
a few innocent persons at two clinics on one day; some hospitals share their address and many
same-day patients with the pharmacy next door; families share an address, some elderly share a
relative's phone and some couples a bank account; legitimate agencies place dispatch workers;
some employers pay one month late; pensions stop after a legitimate death.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tqdm import tqdm

DAYS_IN_YEAR = 365
YEAR = 2025
# First day (offset from YEAR-01-01) of each month, plus the year end.
MONTH_STARTS = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365])
FIRST_WINDOW_MONTH = 6  # monthly records (contributions, benefits) cover months 6..11
WINDOW_MONTHS = np.arange(FIRST_WINDOW_MONTH, 12)
EPOCH_OFFSET = int((np.datetime64(f"{YEAR}-01-01") - np.datetime64("1970-01-01")).astype(int))
AS_OF = f"{YEAR}-12-31"
ONGOING = 10**6  # end day of an employment spell that has not ended
MIN_PERSONS = 50  # the CLI's floor; every pattern still gets planted

PATTERNS = (
    "multi_hospital", "collusion", "card_broker", "pension_after_death",
    "unemployment_while_employed", "fake_enrolment", "arrears", "split_admission",
    "phantom_stay", "over_prescribing", "identity_ring",
)

SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu",
            "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie",
            "Song", "Tang", "Han", "Feng", "Deng", "Cao", "Peng")
GIVEN_FIRST = ("Wei", "Fang", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan",
               "Jie", "Juan", "Tao", "Ming", "Chao", "Xiu", "Xia", "Ping", "Gang", "Hui", "Hong")
GIVEN_SECOND = ("", "", "", "ying", "hua", "ming", "lan", "jun", "feng", "mei", "long", "bo",
                "xin", "yu", "hao", "ning", "qing", "rui")
STREETS = ("Renmin", "Jiefang", "Zhongshan", "Heping", "Xinhua", "Jianshe", "Changjiang",
           "Huanghe", "Dongfeng", "Wenhua", "Chaoyang", "Youyi", "Shengli", "Guangming")
INDUSTRIES = ("manufacturing", "construction", "retail", "logistics", "catering", "it_services",
              "education", "healthcare", "finance", "agriculture", "real_estate", "services")
LEVELS = ("primary", "secondary", "tertiary")
CHRONIC_DIAGNOSES = ("I10", "E11", "J44", "I25", "M17")
ACUTE_DIAGNOSES = ("J06", "K29", "M54", "A09", "N39", "H10", "L30", "R51", "J20", "K52")
INPATIENT_DIAGNOSES = ("I63", "J18", "K35", "S72", "I21", "K80", "N20", "C34")
DIAGNOSES = CHRONIC_DIAGNOSES + ACUTE_DIAGNOSES + INPATIENT_DIAGNOSES
N_CHRONIC_DRUGS = len(CHRONIC_DIAGNOSES)  # drug i treats chronic diagnosis i
N_DRUGS = 40
EXPENSIVE_DRUGS = np.arange(30, N_DRUGS)  # resale favourites of card brokers
BENEFIT_TYPES = ("pension", "unemployment", "injury")
PENSION, UNEMPLOYMENT, INJURY = 0, 1, 2
OUTPATIENT, INPATIENT = 0, 1


@dataclass(frozen=True)
class Magnitudes:
    """Named magnitudes of the synthetic population (DOMAIN.md, compressed to ~10 rows/person)."""

    region_scale: float = 20.0            # regions ~ sqrt(persons) / region_scale
    min_regions: int = 4
    max_regions: int = 40
    pensioner_share: float = 0.25
    chronic_share_young: float = 0.05
    chronic_share_old: float = 0.30
    household_sizes: tuple[float, ...] = (0.35, 0.35, 0.2, 0.1)  # P(size = 1, 2, 3, 4)
    elder_shared_phone_share: float = 0.03
    couple_shared_bank_share: float = 0.02
    pensioner_death_rate: float = 0.02
    # employment and contributions
    employed_share: float = 0.82          # of working-age persons
    changer_share: float = 0.10           # of employed: change employer during the year
    laid_off_share: float = 0.04          # of employed: laid off mid-year, draw unemployment
    new_hire_share: float = 0.10          # of employed: start during the year
    quitter_share: float = 0.10           # of non-employed: left a job early in the year
    dispatch_share: float = 0.04          # spells placed by a legitimate agency
    employer_size_median: float = 5.0
    employer_size_sigma: float = 1.7      # lognormal: mean ~20, 99th percentile ~260
    wage_median: float = 6500.0
    contribution_floor: float = 4500.0
    contribution_ceiling: float = 28000.0
    contribution_rate: float = 0.24
    late_month_employer_share: float = 0.03
    # benefits
    pension_median: float = 3500.0
    unemployment_amount: float = 1800.0
    injury_share: float = 0.002
    # medical
    persons_per_clinic: int = 500
    persons_per_pharmacy: int = 400
    persons_per_agency: int = 5000
    min_clinics: int = 8
    min_pharmacies: int = 8
    min_agencies: int = 3
    level_shares: tuple[float, ...] = (0.70, 0.25, 0.05)  # primary, secondary, tertiary
    level_weight: tuple[float, ...] = (1.0, 6.0, 30.0)    # attraction of visits
    level_cost: tuple[float, ...] = (0.6, 1.0, 1.5)
    level_claim_ratio: tuple[float, ...] = (0.9, 0.8, 0.7)
    visits_per_person: float = 3.4
    chronic_visit_factor: float = 2.2
    home_clinic_share: float = 0.75
    busy_share: float = 0.01
    busy_visits: float = 25.0
    referral_share: float = 0.001
    inpatient_share: float = 0.03
    stay_mean_days: float = 9.0
    outpatient_median_cost: float = 250.0   # lognormal sigma 0.8: mean ~360
    inpatient_cost_per_day: float = 1100.0  # ~10,000 per 9-day stay
    acute_purchases: float = 0.9
    chronic_purchases: float = 9.0
    long_prescription_share: float = 0.4   # of chronic persons: 14- or 28-day refills
    home_pharmacy_share: float = 0.75
    prescribed_share: float = 0.35
    next_door_pairs_share: float = 0.5      # of tertiary hospitals
    next_door_purchase_share: float = 0.4
    # planted fraud
    person_fraud_share: float = 0.008
    lone_share: float = 0.6
    facility_fraud_share: float = 0.025
    employer_arrears_share: float = 0.015
    ring_size_max: int = 40
    persons_per_fake_scheme: int = 150_000
    fake_scheme_size_max: int = 200
    fake_scheme_size_min: int = 10


M = Magnitudes()


def generate(*, persons: int, seed: int, out: Path, label_share: float = 0.3,
             negative_share: float = 0.05, progress: bool = True) -> dict[str, int]:
    """Write a synthetic dataset folder with planted fraud to `out`; return row counts per table.

    Every pattern is planted at least once, so below ~2,000 persons fraud shares run far above
    DOMAIN.md's magnitudes (fine for smoke tests, not for model evaluation).
    """
    if persons < MIN_PERSONS:
        raise ValueError(f"persons must be at least {MIN_PERSONS}")
    if not (0.0 <= label_share <= 1.0 and 0.0 <= negative_share <= 1.0):
        raise ValueError("label_share and negative_share must be between 0 and 1")
    out = Path(out)
    steps = ("population", "employment", "benefits", "medical", "fraud", "labels", "write")
    with tqdm(total=len(steps), desc="synth", disable=not progress, unit="step") as bar:
        gen = _Generator(persons, seed, M)
        for step in steps[:-2]:
            bar.set_postfix_str(step)
            getattr(gen, f"build_{step}")()
            bar.update(1)
        bar.set_postfix_str("labels")
        labels = gen.build_labels(label_share, negative_share)
        bar.update(1)
        bar.set_postfix_str("write")
        counts = gen.write(out, labels)
        bar.update(1)
    return counts


# ---------------------------------------------------------------------------------------------
# Small helpers


class _Rows:
    """Column-wise accumulator of numpy parts, concatenated once."""

    def __init__(self, *columns: str) -> None:
        self.columns = columns
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, **values: np.ndarray | float | int) -> None:
        lengths = [np.size(v) for v in values.values() if np.ndim(v) > 0]
        if not lengths or min(lengths) == 0:
            return
        n = max(lengths)
        assert set(values) == set(self.columns), set(values) ^ set(self.columns)
        self.parts.append({k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in values.items()})

    def concat(self) -> dict[str, np.ndarray]:
        return {c: np.concatenate([p[c] for p in self.parts]) for c in self.columns}


class _RegionalSampler:
    """Draws facilities in a given region with probability proportional to a weight."""

    def __init__(self, region: np.ndarray, weight: np.ndarray, n_regions: int) -> None:
        order = np.lexsort((np.arange(len(region)), region))
        r, w = region[order], weight[order].astype(float)
        if np.any(np.bincount(r, minlength=n_regions) == 0):
            raise AssertionError("every region needs a facility")
        total = np.bincount(r, weights=w, minlength=n_regions)
        cum = np.cumsum(w)
        first = np.searchsorted(r, np.arange(n_regions))
        within = cum - (cum[first] - w[first])[r]
        cdf = r + within / total[r]
        last = np.r_[first[1:], len(r)] - 1
        cdf[last] = np.arange(n_regions) + 1.0
        self.order, self.cdf = order, cdf

    def pick(self, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        q = region + rng.random(len(region))
        pos = np.searchsorted(self.cdf, q, side="right")
        return self.order[np.minimum(pos, len(self.cdf) - 1)]


def _month_of(day: np.ndarray) -> np.ndarray:
    """Month index 0..11 of a day offset; -1 before the year, 12 after it."""
    return np.searchsorted(MONTH_STARTS, day, side="right") - 1


def _ids(prefix: str, n: int, width: int) -> pa.Array:
    width = max(width, len(str(n)))
    digits = pa.array(np.arange(1, n + 1)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(digits, width, "0"), "")


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """values[idx], null where idx < 0."""
    idx = np.asarray(idx, dtype=np.int64)
    return values.take(pa.array(idx, mask=idx < 0))


def _text(categories: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    return _take(pa.array(list(categories), pa.string()), codes)


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    days = np.asarray(days, dtype=np.int64) + EPOCH_OFFSET
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(days.astype(np.int32), mask=mask).cast(pa.date32())


def _str(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _money(x: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(x, dtype=float), 2)


def _unique_codes(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    return low + rng.choice(high - low, size=n, replace=False)


def _write_csv(path: Path, columns: dict[str, pa.Array | np.ndarray]) -> int:
    table = pa.table(columns)
    with open(path, "wb") as f:
        f.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return table.num_rows


# ---------------------------------------------------------------------------------------------
# The generator


class _Generator:
    """Holds the population as integer-indexed numpy arrays until `write` turns it into text."""

    def __init__(self, n: int, seed: int, m: Magnitudes) -> None:
        self.n, self.m = n, m
        self.rng = np.random.default_rng(seed)
        self.n_regions = int(np.clip(round(math.sqrt(n) / m.region_scale), m.min_regions,
                                     m.max_regions))
        self.truth: list[tuple[str, np.ndarray, str, str]] = []
        self.n_rings = 0
        self.taken = np.zeros(n, dtype=bool)  # persons already given a fraud role
        self.visits = _Rows("person", "clinic", "day", "kind", "stay", "diag", "amount")
        self.purchases = _Rows("person", "pharmacy", "day", "amount", "drug", "quantity",
                               "days_supply", "clinic")
        self.spells = _Rows("person", "employer", "start", "end", "wage", "agency")
        self.benefits = _Rows("person", "month", "type", "amount")
        self.links = _Rows("agency", "etype", "entity", "relation", "start")
        self.fraud_agencies: list[int] = []
        self.back_payment = np.empty(0, dtype=np.int64)  # persons with a lump-sum back payment

    # -- bookkeeping ---------------------------------------------------------------------------

    def _ring(self) -> str:
        self.n_rings += 1
        return f"R{self.n_rings:05d}"

    def _truth(self, etype: str, idx: np.ndarray | int, pattern: str, ring: str = "") -> None:
        self.truth.append((etype, np.atleast_1d(np.asarray(idx, dtype=np.int64)), pattern, ring))

    def _pick(self, pool: np.ndarray, k: int, prefer: np.ndarray | None = None) -> np.ndarray:
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

    def _ring_size(self, minimum: int = 2) -> int:
        """Mean ~3.5 with a long tail up to ring_size_max."""
        size = 2 + int(self.rng.pareto(2.0) * 2.2)
        return int(np.clip(size, minimum, self.m.ring_size_max))

    # -- population ----------------------------------------------------------------------------

    def build_population(self) -> None:
        n, m, rng = self.n, self.m, self.rng
        self.region = rng.integers(0, self.n_regions, n)
        self.gender = rng.integers(0, 2, n)
        self.pensioner = rng.random(n) < m.pensioner_share
        age = np.where(self.pensioner, 60 + np.minimum(30, rng.exponential(9.0, n)).astype(int),
                       rng.integers(18, 60, n))
        self.age = age
        self.birth = (DAYS_IN_YEAR - 1) - np.floor(age * 365.25 + rng.random(n) * 364).astype(np.int64)
        self.chronic = rng.random(n) < np.where(self.pensioner, m.chronic_share_old,
                                                m.chronic_share_young)
        self.death = np.full(n, ONGOING, dtype=np.int64)
        dies = self.pensioner & (rng.random(n) < m.pensioner_death_rate * (age - 50) / 20)
        self.death[dies] = rng.integers(0, DAYS_IN_YEAR, dies.sum())
        # households: family members share an address
        order = np.lexsort((rng.random(n), self.region))
        sizes = rng.choice(np.arange(1, len(m.household_sizes) + 1), size=n, p=m.household_sizes)
        hh_sorted = np.repeat(np.arange(n), sizes)[:n]
        self.household = np.empty(n, dtype=np.int64)
        self.household[order] = hh_sorted
        self.n_households = int(hh_sorted[-1]) + 1
        self.hh_region = np.zeros(self.n_households, dtype=np.int64)
        self.hh_region[hh_sorted] = self.region[order]
        self.phone = _unique_codes(rng, n, 13_000_000_000, 19_999_999_999)
        self.bank = _unique_codes(rng, n, 6_222_000_000_000_000, 6_222_999_999_999_999)
        # innocent sharing: elders using a relative's phone, couples sharing one account
        head = np.zeros(self.n_households, dtype=np.int64)
        head[self.household[::-1]] = np.arange(n)[::-1]  # first member of each household
        hh_size = np.bincount(self.household, minlength=self.n_households)
        in_family = hh_size[self.household] > 1
        not_head = head[self.household] != np.arange(n)
        elder = self.pensioner & in_family & not_head & (rng.random(n) < m.elder_shared_phone_share)
        self.phone[elder] = self.phone[head[self.household[elder]]]
        couple = in_family & not_head & (rng.random(n) < m.couple_shared_bank_share)
        self.bank[couple] = self.bank[head[self.household[couple]]]
        self._build_facilities()

    def _facility_regions(self, k: int) -> np.ndarray:
        region = self.rng.integers(0, self.n_regions, k)
        region[: self.n_regions] = np.arange(self.n_regions)  # every region has one
        return region

    def _build_facilities(self) -> None:
        n, m, rng = self.n, self.m, self.rng
        n_c = max(m.min_clinics, round(n / m.persons_per_clinic), self.n_regions)
        n_h = max(m.min_pharmacies, round(n / m.persons_per_pharmacy), self.n_regions)
        n_a = max(m.min_agencies, round(n / m.persons_per_agency))
        self.n_clinics, self.n_pharmacies, self.n_agencies = n_c, n_h, n_a
        self.c_region = self._facility_regions(n_c)
        self.c_level = rng.choice(3, size=n_c, p=m.level_shares)
        self.c_level[0] = 2  # at least one tertiary hospital
        self.c_beds = np.select(
            [self.c_level == 0, self.c_level == 1],
            [rng.integers(10, 60, n_c), rng.integers(150, 600, n_c)], rng.integers(800, 2000, n_c))
        self.c_address = np.arange(n_c)            # address number; pairs share one below
        self.h_region = self._facility_regions(n_h)
        self.h_address = n_c + np.arange(n_h)
        self.a_region = rng.integers(0, self.n_regions, n_a)
        weight = np.asarray(m.level_weight)[self.c_level]
        self.clinic_sampler = _RegionalSampler(self.c_region, weight, self.n_regions)
        self.pharmacy_sampler = _RegionalSampler(self.h_region, np.ones(n_h), self.n_regions)
        self.home_clinic = self.clinic_sampler.pick(self.region, rng)
        self.home_pharmacy = self.pharmacy_sampler.pick(self.region, rng)
        # innocent look-alike: big hospitals with a pharmacy next door (same address)
        tertiary = np.flatnonzero(self.c_level == 2)
        k = max(1, int(len(tertiary) * m.next_door_pairs_share))
        self.next_door: dict[int, int] = {}
        used: set[int] = set()
        for c in rng.choice(tertiary, size=k, replace=False):
            options = [h for h in np.flatnonzero(self.h_region == self.c_region[c]) if h not in used]
            if options:
                h = int(rng.choice(options))
                used.add(h)
                self.next_door[int(c)] = h
                self.h_address[h] = self.c_address[c]
        self.c_used = np.zeros(n_c, dtype=bool)
        self.h_used = np.zeros(n_h, dtype=bool)
        self.c_used[list(self.next_door)] = True    # never used as fraud facilities
        self.h_used[list(self.next_door.values())] = True

    # -- employment ----------------------------------------------------------------------------

    def build_employment(self) -> None:
        n, m, rng = self.n, self.m, self.rng
        working = ~self.pensioner
        u = rng.random(n)
        employed = working & (u < m.employed_share)
        v = rng.random(n)
        cuts = np.cumsum([m.changer_share, m.laid_off_share, m.new_hire_share])
        kind = np.where(v < cuts[0], 1, np.where(v < cuts[1], 2, np.where(v < cuts[2], 3, 0)))
        self.stable = employed & (kind == 0)
        changer, laid_off, new_hire = (employed & (kind == k) for k in (1, 2, 3))
        quitter = working & ~employed & (rng.random(n) < m.quitter_share)
        self.jobless = working & ~employed & ~quitter  # pool for identity rings and fake enrolment

        def month_day(month: np.ndarray) -> np.ndarray:
            length = MONTH_STARTS[month + 1] - MONTH_STARTS[month]
            return MONTH_STARTS[month] + (rng.random(len(month)) * length).astype(int)

        def past(k: int) -> np.ndarray:  # start dates 1 month to 15 years back
            return -rng.integers(30, 365 * 15, k)

        spells = _Rows("person", "start", "end")
        p = np.flatnonzero(self.stable)
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
        self._monthly_benefit(p, first, last, UNEMPLOYMENT, self._unemployment_amount(p))

        # employers: lognormal sizes; spells ordered by region so most work in their region
        size = np.maximum(1, np.round(rng.lognormal(math.log(m.employer_size_median),
                                                    m.employer_size_sigma, len(person))).astype(int))
        n_e = int(np.searchsorted(np.cumsum(size), len(person))) + 1
        size = size[:n_e]
        self.e_region = np.sort(rng.integers(0, self.n_regions, n_e))
        slots = np.repeat(np.arange(n_e), size)[: len(person)]
        order = np.lexsort((rng.random(len(person)), self.region[person]))
        employer = np.empty(len(person), dtype=np.int64)
        employer[order] = slots
        e_wage = rng.lognormal(math.log(m.wage_median), 0.3, n_e)
        wage = _money(np.round(e_wage[employer] * rng.lognormal(0, 0.35, len(person)), -1))
        agency = np.where(rng.random(len(person)) < m.dispatch_share,
                          rng.integers(0, self.n_agencies, len(person)), -1)
        self.spells.add(person=person, employer=employer, start=start, end=end, wage=wage,
                        agency=agency)
        self.n_employers = n_e
        self.e_registered = -rng.integers(365, 365 * 30, n_e)
        self.e_industry = rng.integers(0, len(INDUSTRIES), n_e)
        self.e_shell = np.zeros(n_e, dtype=bool)
        self.e_shared_contact = np.arange(n_e)      # shells of one scheme share phone and address
        self.e_staff = np.zeros(n_e, dtype=np.int64)  # filled from the real size in build_fraud
        self._agency_links(agency, person, employer, start)

    def _agency_links(self, agency: np.ndarray, person: np.ndarray, employer: np.ndarray,
                      start: np.ndarray) -> None:
        placed = agency >= 0
        self.links.add(agency=agency[placed], etype=0, entity=person[placed], relation=0,
                       start=np.maximum(start[placed], -365 * 5))
        pairs = np.unique(np.stack([agency[placed], employer[placed]], axis=1), axis=0)
        self.links.add(agency=pairs[:, 0], etype=1, entity=pairs[:, 1], relation=1,
                       start=-self.rng.integers(365, 365 * 6, len(pairs)))

    def _unemployment_amount(self, p: np.ndarray) -> np.ndarray:
        return self.m.unemployment_amount * (1 + 0.05 * (self.region[p] % 5))

    def _monthly_benefit(self, person: np.ndarray, first: np.ndarray, last: np.ndarray,
                         btype: int, amount: np.ndarray) -> None:
        """One benefit row per month first..last (inclusive, clipped to the window) per person."""
        first = np.maximum(first, FIRST_WINDOW_MONTH)
        count = np.maximum(0, last - first + 1)
        row = np.repeat(np.arange(len(person)), count)
        month = first[row] + (np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count))
        self.benefits.add(person=person[row], month=month, type=btype,
                          amount=_money(np.broadcast_to(amount, len(person))[row]))

    # -- benefits ------------------------------------------------------------------------------

    def build_benefits(self) -> None:
        n, m, rng = self.n, self.m, self.rng
        self._choose_lone_roles()
        p = np.flatnonzero(self.pensioner)
        amount = np.round(rng.lognormal(math.log(m.pension_median), 0.35, len(p)), -1)
        # paid up to the month of death; fraud pensions are planted separately
        last = np.where(self.death[p] < DAYS_IN_YEAR, _month_of(np.minimum(self.death[p], 364)), 11)
        last[np.isin(p, self.after_death)] = 11
        self._monthly_benefit(p, np.full(len(p), FIRST_WINDOW_MONTH), last, PENSION, amount)
        p = np.flatnonzero(~self.pensioner & (rng.random(n) < m.injury_share))
        first = rng.integers(FIRST_WINDOW_MONTH, 12, len(p))
        self._monthly_benefit(p, first, np.minimum(11, first + rng.integers(0, 3, len(p))), INJURY,
                              np.round(rng.lognormal(math.log(6000), 0.5, len(p)), -1))

    def _choose_lone_roles(self) -> None:
        """Lone fraud persons (chosen before activity is drawn, so deaths shape their events)."""
        n, m, rng = self.n, self.m, self.rng
        budget = round(n * m.person_fraud_share)
        self.ring_budget = budget - round(budget * m.lone_share)
        shares = {"multi_hospital": 0.3, "unemployment_while_employed": 0.25,
                  "over_prescribing": 0.2, "pension_after_death": 0.15, "phantom_stay": 0.1}
        lone = round(budget * m.lone_share)
        self.lone = {k: max(1, round(lone * s)) for k, s in shares.items()}
        alive = self.death >= DAYS_IN_YEAR
        self.after_death = self._pick(self.pensioner & alive, self.lone["pension_after_death"])
        self.death[self.after_death] = rng.integers(0, MONTH_STARTS[9], len(self.after_death))
        self._truth("person", self.after_death, "pension_after_death")
        self.alive = self.death >= DAYS_IN_YEAR
        p = self._pick(self.stable, self.lone["unemployment_while_employed"])
        length = rng.integers(2, 6, len(p))
        first = rng.integers(FIRST_WINDOW_MONTH, 12 - length + 1)
        self._monthly_benefit(p, first, first + length - 1, UNEMPLOYMENT, self._unemployment_amount(p))
        self._truth("person", p, "unemployment_while_employed")

    # -- normal medical activity ---------------------------------------------------------------

    def build_medical(self) -> None:
        n, m, rng = self.n, self.m, self.rng
        alive_days = np.minimum(self.death, DAYS_IN_YEAR)
        share_chronic = self.chronic.mean()
        base = (m.visits_per_person - m.busy_share * m.busy_visits) / (
            (1 - m.busy_share) * (1 + (m.chronic_visit_factor - 1) * share_chronic))
        rate = rng.gamma(2.0, base / 2.0, n) * np.where(self.chronic, m.chronic_visit_factor, 1.0)
        busy = rng.random(n) < m.busy_share
        rate[busy] = m.busy_visits
        count = rng.poisson(rate * alive_days / DAYS_IN_YEAR)
        person = np.repeat(np.arange(n), count)
        day = (rng.random(len(person)) * alive_days[person]).astype(np.int64)
        # one clinic per person-day in normal activity: same-day multi-clinic is the fraud signal
        _, keep = np.unique(person * 400 + day, return_index=True)
        person, day = person[keep], day[keep]
        u = rng.random(len(person))
        second_home = self.clinic_sampler.pick(self.region, rng)
        home = np.where(busy[person] & (u > 0.5), second_home[person], self.home_clinic[person])
        clinic = np.where(u < m.home_clinic_share, home,
                          self.clinic_sampler.pick(self.region[person], rng))
        kind = (rng.random(len(person)) < m.inpatient_share).astype(np.int64)
        self._add_visits(person, clinic, day, kind)
        # referrals: innocent persons seen at two clinics on one day
        p = self._pick_innocent(m.referral_share)
        d = (rng.random(len(p)) * alive_days[p]).astype(np.int64)
        second = self.clinic_sampler.pick(self.region[p], rng)
        second = np.where(second == self.home_clinic[p], (second + 1) % self.n_clinics, second)
        self._add_visits(np.r_[p, p], np.r_[self.home_clinic[p], second], np.r_[d, d], 0)
        # the pharmacy next door fills many of the big hospital's prescriptions, same day
        v = self.visits.concat()
        for c, h in self.next_door.items():
            sel = (v["clinic"] == c) & (v["kind"] == OUTPATIENT)
            sel &= rng.random(len(sel)) < m.next_door_purchase_share
            self._add_acute_purchases(v["person"][sel], np.full(sel.sum(), h), v["day"][sel],
                                      np.full(sel.sum(), c))
        # acute purchases
        count = rng.poisson(np.where(self.chronic, 0.6, m.acute_purchases) * alive_days / DAYS_IN_YEAR)
        person = np.repeat(np.arange(n), count)
        day = (rng.random(len(person)) * alive_days[person]).astype(np.int64)
        pharmacy = np.where(rng.random(len(person)) < m.home_pharmacy_share, self.home_pharmacy[person],
                            self.pharmacy_sampler.pick(self.region[person], rng))
        clinic = np.where(rng.random(len(person)) < m.prescribed_share, self.home_clinic[person], -1)
        self._add_acute_purchases(person, pharmacy, day, clinic)
        self._add_chronic_purchases(alive_days)
        self._drop_events_during_stays()

    def _pick_innocent(self, share: float) -> np.ndarray:
        k = max(1, round(self.n * share))
        pool = np.flatnonzero(~self.taken & self.alive)
        return self.rng.choice(pool, size=min(k, len(pool)), replace=False)

    def _add_visits(self, person: np.ndarray, clinic: np.ndarray, day: np.ndarray,
                    kind: np.ndarray | int, stay: np.ndarray | None = None,
                    diag: np.ndarray | None = None, cost_factor: float = 1.0) -> None:
        m, rng = self.m, self.rng
        k = len(person)
        kind = np.broadcast_to(np.asarray(kind), (k,))
        inpatient = kind == INPATIENT
        if stay is None:
            stay = np.maximum(1, rng.gamma(3.0, (m.stay_mean_days - 1) / 3.0, k).round().astype(int))
        stay = np.where(inpatient, stay, -1)
        if diag is None:
            chronic_code = self._chronic_code(person)
            diag = np.where(self.chronic[person] & (rng.random(k) < 0.5), chronic_code,
                            len(CHRONIC_DIAGNOSES) + rng.integers(0, len(ACUTE_DIAGNOSES), k))
            diag = np.where(inpatient & (rng.random(k) < 0.8),
                            len(CHRONIC_DIAGNOSES) + len(ACUTE_DIAGNOSES)
                            + rng.integers(0, len(INPATIENT_DIAGNOSES), k), diag)
        level = self.c_level[clinic]
        cost = np.asarray(m.level_cost)[level] * cost_factor
        outpatient = rng.lognormal(math.log(m.outpatient_median_cost), 0.8, k)
        inpatient_cost = m.inpatient_cost_per_day * np.maximum(stay, 1) * rng.lognormal(0, 0.4, k)
        amount = _money(np.where(inpatient, inpatient_cost, outpatient) * cost)
        self.visits.add(person=person, clinic=clinic, day=day, kind=kind, stay=stay, diag=diag,
                        amount=amount)

    def _chronic_code(self, person: np.ndarray) -> np.ndarray:
        return person % len(CHRONIC_DIAGNOSES)

    def _add_acute_purchases(self, person: np.ndarray, pharmacy: np.ndarray, day: np.ndarray,
                             clinic: np.ndarray) -> None:
        rng, k = self.rng, len(person)
        self.purchases.add(
            person=person, pharmacy=pharmacy, day=day,
            amount=_money(rng.lognormal(math.log(80), 0.6, k)),
            drug=rng.integers(N_CHRONIC_DRUGS, N_DRUGS, k), quantity=rng.integers(1, 4, k),
            days_supply=rng.integers(3, 8, k), clinic=clinic)

    def _add_chronic_purchases(self, alive_days: np.ndarray) -> None:
        """Evenly spaced refills; 14- and 28-day supplies that never overlap (look-alike)."""
        m, rng = self.m, self.rng
        p = np.flatnonzero(self.chronic)
        count = rng.poisson(m.chronic_purchases * alive_days[p] / DAYS_IN_YEAR)
        keep = count > 0
        p, count = p[keep], count[keep]
        spacing = alive_days[p] / count
        supply = np.select([spacing >= 31, spacing >= 17], [28, 14],
                           np.minimum(7, np.maximum(1, spacing - 3)))
        short = rng.random(len(p)) >= m.long_prescription_share
        supply = np.where(short, np.minimum(supply, 7), supply).astype(np.int64)
        offset = rng.random(len(p)) * np.maximum(spacing - supply - 1, 0)
        row = np.repeat(np.arange(len(p)), count)
        nth = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
        day = np.floor(offset[row] + nth * spacing[row]).astype(np.int64)
        person = p[row]
        k = len(row)
        pharmacy = np.where(rng.random(k) < 0.9, self.home_pharmacy[person],
                            self.pharmacy_sampler.pick(self.region[person], rng))
        self.purchases.add(
            person=person, pharmacy=pharmacy, day=day,
            amount=_money(rng.lognormal(math.log(150), 0.4, k) * supply[row] / 14),
            drug=self._chronic_code(person), quantity=np.maximum(1, supply[row] // 7),
            days_supply=supply[row],
            clinic=np.where(rng.random(k) < 0.5, self.home_clinic[person], -1))

    def _drop_events_during_stays(self) -> None:
        """Normal activity never falls inside an inpatient stay (that is the phantom-stay signal)."""
        v = self.visits.concat()
        stays = pd.DataFrame({"person": v["person"], "admit": v["day"], "out": v["day"] + v["stay"],
                              "row": np.arange(len(v["day"]))})[v["kind"] == INPATIENT]
        events = {"visits": v, "purchases": self.purchases.concat()}
        for name, e in events.items():
            df = pd.DataFrame({"person": e["person"], "day": e["day"], "row": np.arange(len(e["day"]))})
            hit = df.merge(stays, on="person", suffixes=("", "_stay"))
            inside = (hit["day"] >= hit["admit"]) & (hit["day"] <= hit["out"])
            if name == "visits":
                inside &= hit["row"] != hit["row_stay"]
            drop = np.zeros(len(df), dtype=bool)
            drop[hit.loc[inside, "row"].to_numpy()] = True
            rows = getattr(self, name)
            rows.parts = [{k: a[~drop] for k, a in e.items()}]

    # -- planted fraud -------------------------------------------------------------------------

    def build_fraud(self) -> None:
        m, rng = self.m, self.rng
        self._lone_medical()
        n_fc = max(3, round(self.n_clinics * m.facility_fraud_share))
        n_split = max(1, round(0.2 * n_fc))
        n_phantom = max(1, round(0.2 * n_fc))
        n_collusion = max(1, n_fc - n_split - n_phantom)
        n_fp = max(n_collusion + 1, round(self.n_pharmacies * m.facility_fraud_share))
        ring_persons = 0
        for _ in range(n_collusion):
            ring_persons += self._collusion_ring()
        for _ in range(n_split):
            ring_persons += self._split_admission_ring()
        for _ in range(n_phantom):
            ring_persons += self._phantom_stay_ring()
        for _ in range(n_fp - n_collusion):
            ring_persons += self._over_prescribing_ring()
        kinds = 0
        while kinds < 2 or ring_persons < self.ring_budget:
            if kinds == 0 or (kinds > 1 and rng.random() < 0.55):
                ring_persons += self._identity_ring()
            else:
                ring_persons += self._card_broker_ring()
            kinds += 1
        # some ring members also act alone (one entity, several patterns)
        members = np.concatenate([i for t, i, pat, _ in self.truth
                                  if t == "person" and pat == "collusion"])
        both = rng.choice(members, size=max(1, len(members) // 10), replace=False)
        self._multi_hospital(both)
        self._truth("person", both, "multi_hospital")
        self._staff_headcount()
        n_schemes = max(1, round(self.n / m.persons_per_fake_scheme))
        for _ in range(n_schemes):
            self._fake_enrolment_scheme()
        self._build_contributions()

    def _free_facility(self, used: np.ndarray, allowed: np.ndarray, region: np.ndarray | None = None,
                       in_region: int | None = None) -> int:
        ok = ~used & allowed
        if in_region is not None and region is not None and np.any(ok & (region == in_region)):
            ok &= region == in_region
        options = np.flatnonzero(ok)
        if len(options) == 0:
            options = np.flatnonzero(allowed)
        idx = int(self.rng.choice(options))
        used[idx] = True
        return idx

    def _members(self, size: int, region: int) -> np.ndarray:
        return self._pick(self.alive, size, prefer=self.region == region)

    def _lone_medical(self) -> None:
        rng = self.rng
        p = self._pick(self.alive, self.lone["multi_hospital"])
        self._multi_hospital(p)
        self._truth("person", p, "multi_hospital")
        p = self._pick(self.alive, self.lone["over_prescribing"])
        self._over_supply(p)
        self._truth("person", p, "over_prescribing")
        p = self._pick(self.alive, self.lone["phantom_stay"])
        clinic = self.clinic_sampler.pick(self.region[p], rng)
        admit = rng.integers(0, 330, len(p))
        stay = rng.integers(7, 16, len(p))
        self._add_visits(p, clinic, admit, INPATIENT, stay=stay)
        for _ in range(2):
            self._add_acute_purchases(p, self.home_pharmacy[p], admit + rng.integers(1, stay),
                                      np.full(len(p), -1))
        self._truth("person", p, "phantom_stay")
        # claims for the dead: some cards keep buying after death
        dead = self.after_death[rng.random(len(self.after_death)) < 0.3]
        for _ in range(2):
            day = np.minimum(364, self.death[dead] + rng.integers(5, 90, len(dead)))
            self._add_acute_purchases(dead, self.home_pharmacy[dead], day, np.full(len(dead), -1))

    def _multi_hospital(self, p: np.ndarray) -> None:
        rng = self.rng
        days = rng.integers(2, 6, len(p))
        person = np.repeat(p, days)
        day = rng.integers(0, DAYS_IN_YEAR, len(person))
        per_day = rng.integers(2, 4, len(person))
        person, day = np.repeat(person, per_day), np.repeat(day, per_day)
        nth = np.arange(len(person)) - np.repeat(np.cumsum(per_day) - per_day, per_day)
        first = np.repeat(self.clinic_sampler.pick(self.region[p].repeat(days), rng), per_day)
        step = rng.integers(1, max(2, self.n_clinics // 3), len(person))
        clinic = (first + nth * step) % self.n_clinics
        clinic = np.where(nth == 0, first, clinic)
        clinic = np.where((nth > 0) & (clinic == first), (first + nth) % self.n_clinics, clinic)
        self._add_visits(person, clinic, day, OUTPATIENT)

    def _over_supply(self, person: np.ndarray, pharmacy: int | None = None) -> None:
        """4-8 purchases of one drug, each 30-90 days' supply, every 7-15 days (overlapping).

        At `pharmacy` when given (a complicit pharmacy), else at the home or a nearby pharmacy.
        """
        rng = self.rng
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
            where = np.where(rng.random(k) < 0.5, self.home_pharmacy[p],
                             self.pharmacy_sampler.pick(self.region[p], rng))
        else:
            where = np.full(k, pharmacy)
        self.purchases.add(
            person=p, pharmacy=where, day=np.minimum(364, day),
            amount=_money(rng.lognormal(math.log(150), 0.3, k) * supply / 14),
            drug=rng.integers(0, N_DRUGS, len(person))[row], quantity=supply // 7,
            days_supply=supply, clinic=np.where(rng.random(k) < 0.5, self.home_clinic[p], -1))

    def _collusion_ring(self) -> int:
        rng = self.rng
        clinic = self._free_facility(self.c_used, self.c_level < 2)
        region = int(self.c_region[clinic])
        pharmacy = self._free_facility(self.h_used, np.ones(self.n_pharmacies, bool),
                                       self.h_region, region)
        members = self._members(self._ring_size(minimum=3) + 2, region)
        sessions = int(rng.integers(6, 13))
        days = np.sort(rng.choice(DAYS_IN_YEAR, size=sessions, replace=False))
        attend = rng.random((sessions, len(members))) < 0.75
        s, j = np.nonzero(attend)
        person, day = members[j], days[s]
        k = len(person)
        self._add_visits(person, np.full(k, clinic), day, OUTPATIENT, cost_factor=1.8)
        self.purchases.add(
            person=person, pharmacy=pharmacy, day=day,
            amount=_money(rng.lognormal(math.log(400), 0.4, k)),
            drug=rng.integers(0, N_DRUGS, k), quantity=rng.integers(2, 6, k),
            days_supply=rng.integers(5, 8, k), clinic=clinic)
        ring = self._ring()
        self._truth("clinic", clinic, "collusion", ring)
        self._truth("pharmacy", pharmacy, "collusion", ring)
        self._truth("person", members, "collusion", ring)
        return len(members)

    def _split_admission_ring(self) -> int:
        rng = self.rng
        clinic = self._free_facility(self.c_used, self.c_level >= 1)
        members = self._members(self._ring_size(minimum=3), int(self.c_region[clinic]))
        for p in members:
            admissions = int(rng.integers(2, 4))
            stay = rng.integers(4, 11, admissions)
            gap = rng.integers(1, 15, admissions)
            admit = int(rng.integers(0, 250)) + np.r_[0, np.cumsum(stay + gap)[:-1]]
            diag = (len(CHRONIC_DIAGNOSES) + len(ACUTE_DIAGNOSES)
                    + int(rng.integers(0, len(INPATIENT_DIAGNOSES))))
            self._add_visits(np.full(admissions, p), np.full(admissions, clinic), admit, INPATIENT,
                             stay=stay, diag=np.full(admissions, diag))
        ring = self._ring()
        self._truth("clinic", clinic, "split_admission", ring)
        self._truth("person", members, "split_admission", ring)
        return len(members)

    def _phantom_stay_ring(self) -> int:
        rng = self.rng
        clinic = self._free_facility(self.c_used, self.c_level == 0)
        members = self._members(self._ring_size(minimum=4), int(self.c_region[clinic]))
        self.c_beds[clinic] = max(2, len(members) - 2)  # a small clinic, more "inpatients" than beds
        k = len(members)
        start = int(rng.integers(0, 330))
        admit = start + rng.integers(0, 5, k)
        stay = rng.integers(12, 21, k)
        self._add_visits(members, np.full(k, clinic), admit, INPATIENT, stay=stay)
        elsewhere = self.clinic_sampler.pick(self.region[members], rng)
        elsewhere = np.where(elsewhere == clinic, (clinic + 1) % self.n_clinics, elsewhere)
        self._add_visits(members, elsewhere, admit + rng.integers(2, stay - 1), OUTPATIENT)
        self._add_acute_purchases(members, self.home_pharmacy[members], admit + rng.integers(1, stay),
                                  np.full(k, -1))
        ring = self._ring()
        self._truth("clinic", clinic, "phantom_stay", ring)
        self._truth("person", members, "phantom_stay", ring)
        return k

    def _over_prescribing_ring(self) -> int:
        pharmacy = self._free_facility(self.h_used, np.ones(self.n_pharmacies, bool))
        members = self._members(self._ring_size(minimum=3), int(self.h_region[pharmacy]))
        self._over_supply(members, pharmacy)
        ring = self._ring()
        self._truth("pharmacy", pharmacy, "over_prescribing", ring)
        self._truth("person", members, "over_prescribing", ring)
        return len(members)

    def _identity_ring(self) -> int:
        rng = self.rng
        members = self._pick(self.jobless & self.alive, self._ring_size())
        self.phone[members] = self.phone[members[0]]
        self.bank[members] = self.bank[members[0]]
        length = rng.integers(3, 7, len(members))
        first = rng.integers(FIRST_WINDOW_MONTH, 13 - length)
        self._monthly_benefit(members, first, first + length - 1, UNEMPLOYMENT,
                              self._unemployment_amount(members))
        self._truth("person", members, "identity_ring", self._ring())
        return len(members)

    def _card_broker_ring(self) -> int:
        rng = self.rng
        group = self._pick(self.alive, self._ring_size(minimum=4))
        broker, cards = group[0], group[1:]
        share_phone = rng.random(len(cards)) < 0.7
        share_bank = ~share_phone | (rng.random(len(cards)) < 0.4)
        self.phone[cards[share_phone]] = self.phone[broker]
        self.bank[cards[share_bank]] = self.bank[broker]
        pharmacies = rng.choice(self.n_pharmacies, size=min(self.n_pharmacies, int(rng.integers(4, 13))),
                                replace=False)
        n_days = int(rng.integers(8, 21))
        days = rng.choice(DAYS_IN_YEAR, size=n_days, replace=False)
        use = rng.random((n_days, len(group))) < 0.5
        use[:, 0] |= rng.random(n_days) < 0.3
        s, j = np.nonzero(use)
        k = len(s)
        self.purchases.add(
            person=group[j], pharmacy=pharmacies[rng.integers(0, len(pharmacies), n_days)][s],
            day=days[s], amount=_money(rng.uniform(300, 1500, k)),
            drug=rng.choice(EXPENSIVE_DRUGS, size=k), quantity=rng.integers(2, 8, k),
            days_supply=rng.integers(7, 31, k),
            clinic=np.where(rng.random(k) < 0.5, rng.integers(0, self.n_clinics, k), -1))
        self._truth("person", group, "card_broker", self._ring())
        return len(group)

    # -- employers and contributions ------------------------------------------------------------

    def _staff_headcount(self) -> None:
        s = self.spells.concat()
        size = np.bincount(s["employer"], minlength=self.n_employers)
        staff = np.round(size * self.rng.uniform(0.9, 1.15, self.n_employers))
        self.e_staff = np.maximum(1, staff).astype(np.int64)

    def _fake_enrolment_scheme(self) -> None:
        m, rng = self.m, self.rng
        cap = int(np.clip(self.n / 1000, m.fake_scheme_size_min, m.fake_scheme_size_max))
        size = int(rng.integers(max(m.fake_scheme_size_min, cap // 2), cap + 1))
        free = np.flatnonzero(~np.isin(np.arange(self.n_agencies), self.fraud_agencies))
        agency = int(rng.choice(free if len(free) else np.arange(self.n_agencies)))
        self.fraud_agencies.append(agency)
        persons = self._pick(self.jobless & self.alive, size)
        n_shells = int(np.clip(size // 20, 2, 6))
        shells = self.n_employers + np.arange(n_shells)
        self.n_employers += n_shells
        region = self.a_region[agency]
        self.e_region = np.r_[self.e_region, np.full(n_shells, region)]
        registered = rng.integers(-300, 60, n_shells)
        self.e_registered = np.r_[self.e_registered, registered]
        self.e_industry = np.r_[self.e_industry, np.full(n_shells, INDUSTRIES.index("services"))]
        self.e_shell = np.r_[self.e_shell, np.ones(n_shells, bool)]
        self.e_shared_contact = np.r_[self.e_shared_contact, np.full(n_shells, shells[0])]
        self.e_staff = np.r_[self.e_staff, rng.integers(1, 5, n_shells)]
        employer = shells[rng.integers(0, n_shells, len(persons))]
        length = rng.integers(2, 5, len(persons))
        first = rng.integers(FIRST_WINDOW_MONTH, 13 - length)
        start = MONTH_STARTS[first] + rng.integers(0, 5, len(persons))
        end = MONTH_STARTS[first + length] - 1
        wage = np.full(len(persons), m.contribution_floor)
        self.spells.add(person=persons, employer=employer, start=start, end=end, wage=wage,
                        agency=agency)
        self.links.add(agency=agency, etype=0, entity=persons, relation=0, start=start)
        self.links.add(agency=agency, etype=1, entity=shells, relation=1,
                       start=np.maximum(registered, registered + 10))
        self.back_payment = np.r_[self.back_payment, persons[self.age[persons] >= 50]]
        ring = self._ring()
        self._truth("agency", agency, "fake_enrolment", ring)
        self._truth("employer", shells, "fake_enrolment", ring)
        self._truth("person", persons, "fake_enrolment", ring)

    def _build_contributions(self) -> None:
        m, rng = self.m, self.rng
        s = self.spells.concat()
        first = np.maximum(FIRST_WINDOW_MONTH, _month_of(s["start"]))
        last = np.minimum(11, _month_of(s["end"]))
        count = np.maximum(0, last - first + 1)
        row = np.repeat(np.arange(len(count)), count)
        month = first[row] + (np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count))
        employer, person = s["employer"][row], s["person"][row]
        base = np.clip(s["wage"][row], m.contribution_floor, m.contribution_ceiling)
        due = _money(base * m.contribution_rate)
        paid = due.copy()
        # look-alike: one month paid late (partially) by some honest employers
        n_e = self.n_employers
        late = (rng.random(n_e) < m.late_month_employer_share) & ~self.e_shell
        late_month = rng.integers(FIRST_WINDOW_MONTH, 12, n_e)
        hit = late[employer] & (month == late_month[employer])
        paid[hit] = _money(due[hit] * rng.uniform(0.3, 0.9, hit.sum()))
        # arrears: 3-6 consecutive months underpaid
        size = np.bincount(employer, minlength=n_e)
        pool = np.flatnonzero((size >= 3) & ~self.e_shell & ~late)
        k = min(len(pool), max(1, round(n_e * m.employer_arrears_share)))
        arrears = rng.choice(pool, size=k, replace=False)
        run = np.zeros(n_e, dtype=np.int64)
        run[arrears] = rng.integers(3, 7, k)
        run_start = FIRST_WINDOW_MONTH + (rng.random(n_e) * (7 - np.maximum(run, 1))).astype(int)
        since = month - run_start[employer]
        hit = (since >= 0) & (since < run[employer])
        paid[hit] = _money(due[hit] * rng.uniform(0.0, 0.5, hit.sum()))
        self._truth("employer", arrears, "arrears")
        # fake enrolment near retirement: a lump-sum back payment of 10-15 years
        back = np.isin(person, self.back_payment) & (month == first[row])
        paid[back] = _money(due[back] * 12 * rng.uniform(10, 15, back.sum()))
        self.contrib = {"employer": employer, "person": person, "month": month, "base": _money(base),
                        "due": due, "paid": paid}
        insured = np.unique(employer * self.n + person)
        self.e_insured = np.bincount(insured // self.n, minlength=n_e)

    # -- labels --------------------------------------------------------------------------------

    def build_labels(self, label_share: float, negative_share: float) -> dict[str, np.ndarray]:
        rng = self.rng
        counts = {"person": self.n, "employer": self.n_employers, "clinic": self.n_clinics,
                  "pharmacy": self.n_pharmacies, "agency": self.n_agencies}
        labels: dict[str, np.ndarray] = {}
        for etype, total in counts.items():
            parts = [i for t, i, _, _ in self.truth if t == etype]
            fraud = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
            clean = np.setdiff1d(np.arange(total), fraud)
            n_pos = math.ceil(label_share * len(fraud)) if label_share > 0 else 0
            n_neg = round(negative_share * len(clean))
            if negative_share > 0 and len(fraud):
                n_neg = max(1, n_neg)
            pos = np.sort(rng.choice(fraud, size=n_pos, replace=False))
            neg = np.sort(rng.choice(clean, size=min(n_neg, len(clean)), replace=False))
            label = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
            labels[etype] = np.stack([np.r_[pos, neg], label]).astype(np.int64)
        return labels

    # -- writing -------------------------------------------------------------------------------

    def write(self, out: Path, labels: dict[str, np.ndarray]) -> dict[str, int]:
        rng = self.rng
        out.mkdir(parents=True, exist_ok=True)
        (out / "truth").mkdir(exist_ok=True)
        pid = _ids("P", self.n, 7)
        eid = _ids("E", self.n_employers, 5)
        cid = _ids("C", self.n_clinics, 4)
        hid = _ids("H", self.n_pharmacies, 4)
        aid = _ids("A", self.n_agencies, 3)
        ids = {"person": pid, "employer": eid, "clinic": cid, "pharmacy": hid, "agency": aid}
        region_names = [f"R{r + 1:02d}" for r in range(self.n_regions)]
        counts: dict[str, int] = {}
        n = self.n

        # persons
        name = _join(_text(SURNAMES, rng.integers(0, len(SURNAMES), n)), " ",
                     _text(GIVEN_FIRST, rng.integers(0, len(GIVEN_FIRST), n)),
                     _text(GIVEN_SECOND, rng.integers(0, len(GIVEN_SECOND), n)))
        birth = _dates(self.birth)
        order = np.lexsort((np.arange(n), self.birth, self.region))
        rank = np.empty(n, dtype=np.int64)
        key = self.region[order] * 10**6 + self.birth[order]
        starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
        sizes = np.diff(np.r_[starts, n])
        group_offset = rng.integers(0, 9000, len(starts))  # sequence numbers look random
        rank[order] = np.arange(n) - np.repeat(starts, sizes) + np.repeat(group_offset, sizes)
        id_number = _join(_str(110100 + 100 * self.region),
                          pc.replace_substring(birth.cast(pa.string()), "-", ""),
                          pc.utf8_lpad(_str(rank), 4, "0"))
        hh = self.household
        address = _join(_text(region_names, self.hh_region[hh]), " ",
                        _text(STREETS, hh % len(STREETS)), " Rd No.", _str(hh + 1))
        dead = self.death < DAYS_IN_YEAR
        counts["persons"] = _write_csv(out / "persons.csv", {
            "person_id": pid, "name": name, "id_number": id_number,
            "gender": _text(("F", "M"), self.gender), "birth_date": birth,
            "region": _text(region_names, self.region), "phone": _str(self.phone),
            "address": address, "bank_account": _str(self.bank),
            "death_date": _dates(self.death, dead), "chronic": self.chronic.astype(np.int64)})

        # employers
        n_e = self.n_employers
        contact = self.e_shared_contact
        e_phone = _unique_codes(rng, n_e, 1_000_000_000, 9_999_999_999)[contact]
        counts["employers"] = _write_csv(out / "employers.csv", {
            "employer_id": eid,
            "name": _join(_text(STREETS, rng.integers(0, len(STREETS), n_e)), " ",
                          _text(INDUSTRIES, self.e_industry), " Co ", _str(np.arange(1, n_e + 1))),
            "credit_code": _join("91", pc.utf8_lpad(_str(np.arange(1, n_e + 1)), 16, "0")),
            "industry": _text(INDUSTRIES, self.e_industry),
            "region": _text(region_names, self.e_region),
            "registered_date": _dates(self.e_registered),
            "phone": _join("0", _str(e_phone)),
            "address": _join(_text(region_names, self.e_region), " Business Park Unit ",
                             _str(contact + 1)),
            "bank_account": _str(_unique_codes(rng, n_e, 6_228_000_000_000_000, 6_228_999_999_999_999)),
            "staff_headcount": self.e_staff, "insured_headcount": self.e_insured})

        # facilities
        level_names = {0: "Clinic", 1: "Hospital", 2: "General Hospital"}
        counts["clinics"] = _write_csv(out / "clinics.csv", {
            "clinic_id": cid,
            "name": _join(_text(STREETS, np.arange(self.n_clinics) % len(STREETS)), " ",
                          _text(list(level_names.values()), self.c_level), " ",
                          _str(np.arange(1, self.n_clinics + 1))),
            "level": _text(LEVELS, self.c_level), "region": _text(region_names, self.c_region),
            "beds": self.c_beds.astype(np.int64),
            "address": _join(_text(region_names, self.c_region), " Medical Street ",
                             _str(self.c_address + 1))})
        counts["pharmacies"] = _write_csv(out / "pharmacies.csv", {
            "pharmacy_id": hid,
            "name": _join(_text(STREETS, np.arange(self.n_pharmacies) % len(STREETS)), " Pharmacy ",
                          _str(np.arange(1, self.n_pharmacies + 1))),
            "region": _text(region_names, self.h_region),
            "address": _join(_text(region_names, self.h_region), " Medical Street ",
                             _str(self.h_address + 1))})
        counts["agencies"] = _write_csv(out / "agencies.csv", {
            "agency_id": aid,
            "name": _join(_text(STREETS, np.arange(self.n_agencies) % len(STREETS)), " Staffing ",
                          _str(np.arange(1, self.n_agencies + 1))),
            "license_no": _join("HR", pc.utf8_lpad(_str(np.arange(1, self.n_agencies + 1)), 8, "0")),
            "region": _text(region_names, self.a_region)})

        # employment and contributions
        s = self.spells.concat()
        o = np.lexsort((s["start"], s["employer"], s["person"]))
        s = {k: v[o] for k, v in s.items()}
        counts["employment"] = _write_csv(out / "employment.csv", {
            "person_id": _take(pid, s["person"]), "employer_id": _take(eid, s["employer"]),
            "start_date": _dates(s["start"]), "end_date": _dates(s["end"], s["end"] < ONGOING),
            "monthly_wage": s["wage"], "agency_id": _take(aid, s["agency"])})
        c = self.contrib
        o = np.lexsort((c["month"], c["person"], c["employer"]))
        months = [f"{YEAR}-{k + 1:02d}" for k in range(12)]
        counts["contributions"] = _write_csv(out / "contributions.csv", {
            "employer_id": _take(eid, c["employer"][o]), "person_id": _take(pid, c["person"][o]),
            "month": _text(months, c["month"][o]), "base": c["base"][o], "due": c["due"][o],
            "paid": c["paid"][o]})
        b = self.benefits.concat()
        o = np.lexsort((b["type"], b["month"], b["person"]))
        counts["benefits"] = _write_csv(out / "benefits.csv", {
            "person_id": _take(pid, b["person"][o]), "month": _text(months, b["month"][o]),
            "benefit_type": _text(BENEFIT_TYPES, b["type"][o]), "amount": b["amount"][o]})

        # visits and purchases
        v = self.visits.concat()
        o = np.lexsort((v["clinic"], v["person"], v["day"]))
        v = {k: a[o] for k, a in v.items()}
        inpatient = v["kind"] == INPATIENT
        ratio = np.asarray(self.m.level_claim_ratio)[self.c_level[v["clinic"]]]
        counts["visits"] = _write_csv(out / "visits.csv", {
            "visit_id": _ids("V", len(o), 8), "person_id": _take(pid, v["person"]),
            "clinic_id": _take(cid, v["clinic"]), "date": _dates(v["day"]),
            "kind": _text(("outpatient", "inpatient"), v["kind"]),
            "discharge_date": _dates(v["day"] + v["stay"], inpatient),
            "diagnosis": _text(DIAGNOSES, v["diag"]), "amount": v["amount"],
            "claimed": _money(v["amount"] * ratio)})
        p = self.purchases.concat()
        o = np.lexsort((p["pharmacy"], p["person"], p["day"]))
        p = {k: a[o] for k, a in p.items()}
        drugs = [f"D{d + 1:03d}" for d in range(N_DRUGS)]
        counts["purchases"] = _write_csv(out / "purchases.csv", {
            "purchase_id": _ids("U", len(o), 8), "person_id": _take(pid, p["person"]),
            "pharmacy_id": _take(hid, p["pharmacy"]), "date": _dates(p["day"]),
            "amount": p["amount"], "claimed": _money(p["amount"] * 0.7),
            "drug_code": _text(drugs, p["drug"]), "quantity": p["quantity"].astype(np.int64),
            "days_supply": p["days_supply"].astype(np.int64), "clinic_id": _take(cid, p["clinic"])})

        # agency links
        a = self.links.concat()
        o = np.lexsort((a["entity"], a["etype"], a["agency"]))
        a = {k: x[o] for k, x in a.items()}
        entity = pc.coalesce(_take(pid, np.where(a["etype"] == 0, a["entity"], -1)),
                             _take(eid, np.where(a["etype"] == 1, a["entity"], -1)))
        counts["agency_links"] = _write_csv(out / "agency_links.csv", {
            "agency_id": _take(aid, a["agency"]),
            "entity_type": _text(("person", "employer"), a["etype"]),
            "entity_id": entity, "relation": _text(("placed", "represents"), a["relation"]),
            "start_date": _dates(a["start"])})

        # labels and truth
        types = list(labels)
        lab_type = np.concatenate([np.full(labels[t].shape[1], i) for i, t in enumerate(types)])
        lab_idx = np.concatenate([labels[t][0] for t in types])
        lab_ids = pa.concat_arrays([_take(ids[t], labels[t][0]) for t in types])
        if len(lab_idx) == 0:  # a header-only file breaks the contract: no labels, no file
            (out / "labels.csv").unlink(missing_ok=True)
        else:
            counts["labels"] = _write_csv(out / "labels.csv", {
                "entity_type": _text(types, lab_type), "entity_id": lab_ids,
                "label": np.concatenate([labels[t][1] for t in types]),
                "as_of": pa.array([AS_OF] * len(lab_idx), pa.string())})
        frame = pd.DataFrame({
            "entity_type": np.concatenate([np.full(len(i), t) for t, i, _, _ in self.truth]),
            "entity_idx": np.concatenate([i for _, i, _, _ in self.truth]),
            "pattern": np.concatenate([np.full(len(i), pat) for _, i, pat, _ in self.truth]),
            "ring_id": np.concatenate([np.full(len(i), r) for _, i, _, r in self.truth]),
        }).drop_duplicates(["entity_type", "entity_idx", "pattern"])
        frame = frame.sort_values(["entity_type", "entity_idx", "pattern"], kind="mergesort")
        truth_ids = pa.concat_arrays([
            _take(ids[t], frame.loc[frame["entity_type"] == t, "entity_idx"].to_numpy())
            for t in sorted(frame["entity_type"].unique())])
        counts["truth"] = _write_csv(out / "truth" / "truth.csv", {
            "entity_type": pa.array(frame["entity_type"].tolist(), pa.string()),
            "entity_id": truth_ids, "pattern": pa.array(frame["pattern"].tolist(), pa.string()),
            "ring_id": pa.array(frame["ring_id"].tolist(), pa.string())})
        return counts
