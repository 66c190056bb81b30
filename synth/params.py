"""Constants and named magnitudes of the synthetic dataset: calendar, codes, names, population shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    "multi_hospital",
    "collusion",
    "card_broker",
    "pension_after_death",
    "unemployment_while_employed",
    "fake_enrolment",
    "arrears",
    "split_admission",
    "phantom_stay",
    "over_prescribing",
    "identity_ring",
)

SURNAMES = (
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
    "Gao",
    "Luo",
    "Zheng",
    "Liang",
    "Xie",
    "Song",
    "Tang",
    "Han",
    "Feng",
    "Deng",
    "Cao",
    "Peng",
)
GIVEN_FIRST = (
    "Wei",
    "Fang",
    "Min",
    "Jing",
    "Li",
    "Qiang",
    "Lei",
    "Jun",
    "Yang",
    "Yong",
    "Yan",
    "Jie",
    "Juan",
    "Tao",
    "Ming",
    "Chao",
    "Xiu",
    "Xia",
    "Ping",
    "Gang",
    "Hui",
    "Hong",
)
GIVEN_SECOND = (
    "",
    "",
    "",
    "ying",
    "hua",
    "ming",
    "lan",
    "jun",
    "feng",
    "mei",
    "long",
    "bo",
    "xin",
    "yu",
    "hao",
    "ning",
    "qing",
    "rui",
)
STREETS = (
    "Renmin",
    "Jiefang",
    "Zhongshan",
    "Heping",
    "Xinhua",
    "Jianshe",
    "Changjiang",
    "Huanghe",
    "Dongfeng",
    "Wenhua",
    "Chaoyang",
    "Youyi",
    "Shengli",
    "Guangming",
)
INDUSTRIES = (
    "manufacturing",
    "construction",
    "retail",
    "logistics",
    "catering",
    "it_services",
    "education",
    "healthcare",
    "finance",
    "agriculture",
    "real_estate",
    "services",
)
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

    region_scale: float = 20.0  # regions ~ sqrt(persons) / region_scale
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
    employed_share: float = 0.82  # of working-age persons
    changer_share: float = 0.10  # of employed: change employer during the year
    laid_off_share: float = 0.04  # of employed: laid off mid-year, draw unemployment
    new_hire_share: float = 0.10  # of employed: start during the year
    quitter_share: float = 0.10  # of non-employed: left a job early in the year
    dispatch_share: float = 0.04  # spells placed by a legitimate agency
    employer_size_median: float = 5.0
    employer_size_sigma: float = 1.7  # lognormal: mean ~20, 99th percentile ~260
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
    level_weight: tuple[float, ...] = (1.0, 6.0, 30.0)  # attraction of visits
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
    outpatient_median_cost: float = 250.0  # lognormal sigma 0.8: mean ~360
    inpatient_cost_per_day: float = 1100.0  # ~10,000 per 9-day stay
    acute_purchases: float = 0.9
    chronic_purchases: float = 9.0
    long_prescription_share: float = 0.4  # of chronic persons: 14- or 28-day refills
    home_pharmacy_share: float = 0.75
    prescribed_share: float = 0.35
    next_door_pairs_share: float = 0.5  # of tertiary hospitals
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
