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

Modules, each importing only those before it: params (constants, magnitudes), arrays (numpy
helpers), world (the state, truth bookkeeping, event recorders); the honest world in population,
employment and medical; planted fraud in fraud (lone actors) and rings; labels (labels, truth);
writer (the CSV files); this module runs the steps in order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from synth.duplicates import DUPLICATE_PATTERNS, plant
from synth.employment import build_benefits, build_contributions, build_employment, count_staff
from synth.fraud import choose_lone_roles, plant_arrears, plant_lone_medical
from synth.labels import draw_labels, truth_frame
from synth.medical import build_medical
from synth.params import MIN_PERSONS, PATTERNS, M
from synth.population import build_population
from synth.realistic import harden
from synth.rings import plant_back_payments, plant_fake_enrolment, plant_rings
from synth.world import World
from synth.writer import write_dataset

__all__ = ["ALL_PATTERNS", "PATTERNS", "generate"]

ALL_PATTERNS = PATTERNS + DUPLICATE_PATTERNS  # the truth's patterns with duplicates and registries

# The build steps in order (the progress bar shows their names). The order is part of the output:
# every step draws from the one rng, and later steps read what earlier ones planted.
STEPS: tuple[tuple[str, tuple[Callable[[World], None], ...]], ...] = (
    ("population", (build_population,)),
    ("employment", (build_employment,)),
    # lone roles come first: deaths planted for pension_after_death shape pensions and activity
    ("benefits", (choose_lone_roles, build_benefits)),
    ("medical", (build_medical,)),
    # staff is counted before fake-enrolment shells exist; contributions follow all spells
    (
        "fraud",
        (
            plant_lone_medical,
            plant_rings,
            count_staff,
            plant_fake_enrolment,
            build_contributions,
            plant_arrears,
            plant_back_payments,
        ),
    ),
)


DIFFICULTIES = ("standard", "realistic")  # realistic: synth/realistic.py, on top of the standard world


def generate(
    *,
    persons: int,
    seed: int,
    out: Path,
    label_share: float = 0.3,
    negative_share: float = 0.05,
    progress: bool = True,
    duplicates: float = 0.03,
    difficulty: str = "standard",
) -> dict[str, int]:
    """Write a synthetic dataset folder with planted fraud to `out`; return row counts per table.
    `duplicates`: the share of humans with a second person record (0: none, and no registries).

    Every pattern is planted at least once, so below ~2,000 persons fraud shares run far above
    DOMAIN.md's magnitudes (fine for smoke tests, not for model evaluation).
    """
    if persons < MIN_PERSONS:
        raise ValueError(f"persons must be at least {MIN_PERSONS}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}")
    if not (0.0 <= label_share <= 1.0 and 0.0 <= negative_share <= 1.0 and 0.0 <= duplicates <= 0.5):
        raise ValueError("label_share and negative_share must be between 0 and 1, duplicates between 0 and 0.5")
    out = Path(out)
    with tqdm(total=len(STEPS) + 2, desc="synth", disable=not progress, unit="step") as bar:
        world = World(persons, seed, M)
        for name, builders in STEPS:
            bar.set_postfix_str(name)
            for build in builders:
                build(world)
            bar.update(1)
        bar.set_postfix_str("labels")
        labels = draw_labels(world, label_share, negative_share)
        bar.update(1)
        bar.set_postfix_str("write")
        counts = write_dataset(world, out, labels, truth_frame(world))
        if duplicates > 0:  # last: every other table is what it would be without them
            counts |= plant(out, world.rng, duplicates)
        bar.update(1)
    if difficulty == "realistic":
        counts |= harden(out, seed)
    return counts
