"""Rules on Spark: the detectors the Spark engine implements give the pandas detectors' evidence
records, and the rule packs' hits are identical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from composer.engines.spark import SparkEngine
from composer.engines.spark_rules import PYTHON_ONLY, SPARK_DETECTORS
from graph.dataset import Dataset, load_dataset
from graph.resolve.golden import golden_dataset
from rules.cache import Cache
from rules.detectors import DETECTORS
from rules.detectors.base import detected_by
from rules.engine import RuleResult, evaluate
from rules.pack import DEFAULT_PACK_DIR, load_packs
from tests.factories import SAMPLE, make_dataset

pytestmark = pytest.mark.spark

PARAMS = {  # the packs' parameters and a few others (overrides take the same path)
    "multi_clinic_visits": [{"window": "day", "min_clinics": 2}, {"window": "month", "min_clinics": 3}],
    "over_prescribing": [{"max_days_supply": 7, "min_purchases": 1}, {"max_days_supply": 5, "min_purchases": 2}],
    "benefit_after_death": [
        {"benefit_types": ["pension"], "min_months_after": 1},
        {"benefit_types": ["pension", "unemployment"], "min_months_after": 2},
    ],
    "activity_after_death": [
        {"sources": ["visits", "purchases", "benefits"], "grace_days": 0},
        {"sources": ["purchases", "benefits"], "grace_days": 30},
    ],
    "split_admission": [
        {"max_gap_days": 15, "same_diagnosis": True, "inpatient_kind": "inpatient"},
        {"max_gap_days": 60, "same_diagnosis": False},
    ],
    "overlapping_supply": [
        {"min_overlap_days": 1, "min_overlaps": 1, "prev_supply_over": 7},
        {"min_overlap_days": 2, "min_overlaps": 2},
    ],
    "activity_during_stay": [
        {"inpatient_kind": "inpatient", "sources": ["visits", "purchases"]},
        {"sources": ["purchases"]},
    ],
    "benefit_while_contributing": [
        {"benefit_types": ["unemployment"], "min_paid": 0},
        {"benefit_types": ["unemployment", "pension"], "min_paid": 500},
    ],
    "ineligible_benefits": [
        {"after_death": True, "while_employed_types": ["unemployment"], "amount_over": 10000, "months_over": 0},
        {"after_death": False, "while_employed_types": ["unemployment", "pension"], "amount_over": 0, "months_over": 2},
    ],
    "base_below_wage": [{"ratio": 0.8, "min_persons": 1}, {"ratio": 0.95, "min_persons": 3}],
    "headcount_inflation": [  # the pack's thresholds fire on no employer of the sample: lower ones first
        {"ratio": 1.5, "min_insured": 3, "min_excess": 2, "headcount_column": "staff_headcount"},
        {"ratio": 3.0, "min_insured": 10, "min_excess": 0},
    ],
    "employer_arrears": [{"min_months": 3, "min_shortfall": 0}, {"min_months": 1, "min_shortfall": 2000}],
    "duplicate_benefit": [
        {"benefit_types": ["pension"], "min_months": 1},
        {"benefit_types": ["pension"], "min_months": 6},
    ],
    "duplicate_enrolment": [{"min_months": 1}, {"min_months": 4}],
    "agency_shell_routing": [  # the pack's thresholds fire on no agency of the sample: lower ones first
        {"min_persons": 3, "min_employers": 2, "max_employer_size": 50},
        {"min_persons": 20, "min_employers": 5, "max_employer_size": 10},
    ],
    "clinic_over_capacity": [
        {"inpatient_kind": "inpatient", "occupancy_ratio": 1.0, "min_days": 1},
        {"occupancy_ratio": 0.05, "min_days": 20},
    ],
    "benefit_during_custody": [{"benefit_types": ["pension"]}, {"benefit_types": ["unemployment", "pension"]}],
}
RESOLVED = {"duplicate_benefit", "duplicate_enrolment", "benefit_during_custody"}  # fire on resolved persons only


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return load_dataset(SAMPLE)


@pytest.fixture(scope="module")
def resolved_sample(sample: Dataset) -> Dataset:
    """The sample as resolution would leave it if every third pensioner and every third contributor
    were the record before them of one human, and the custody registry matched pensioners."""
    ids = sample.table("persons")["person_id"].astype(object)
    golden = pd.Series(ids.to_numpy(), index=ids.to_numpy())
    b, c = sample.table("benefits"), sample.table("contributions")
    pensioners = sorted(set(b.loc[b["benefit_type"] == "pension", "person_id"]))
    for group in (pensioners, sorted(set(c["person_id"]) - set(pensioners))):
        for i in range(2, len(group), 3):
            golden[group[i]] = golden[group[i - 1]]
    custody = sample.table("custody")
    matches = pd.DataFrame(
        {
            "table": "custody",
            "registry_id": custody["registry_id"].astype(object),
            "person_id": pensioners[: len(custody)],
            "match_probability": 0.97,
            "low_confidence": False,
        }
    )
    return golden_dataset(sample, golden, matches)


@pytest.mark.parametrize(("name", "k"), [(n, k) for n in SPARK_DETECTORS for k in range(2)])
def test_the_same_evidence_records(
    spark_engine: SparkEngine, sample: Dataset, resolved_sample: Dataset, name: str, k: int
) -> None:
    det = DETECTORS[name]
    params = det.params(**PARAMS[name][k])
    ds = resolved_sample if name in RESOLVED else sample
    want = det.run(ds, params, Cache(ds))
    with detected_by(spark_engine.detectors()):
        got = det.run(ds, params, Cache(ds))
    pd.testing.assert_frame_equal(got, want)
    if k == 0:
        assert len(want) > 0, name  # the sample fires every pack rule these detectors serve


def _same_hits(engine: SparkEngine, ds: Dataset) -> RuleResult:
    """The default pack evaluated with and without the engine's detectors: identical hits."""
    packs = load_packs(DEFAULT_PACK_DIR)
    want = evaluate(ds, packs)
    with detected_by(engine.detectors()):
        got = evaluate(ds, packs)
    pd.testing.assert_frame_equal(got.hits, want.hits)
    assert got.skipped == want.skipped
    return got


def test_the_packs_hits_are_identical(spark_engine: SparkEngine, resolved_sample: Dataset) -> None:
    got = _same_hits(spark_engine, resolved_sample)
    packs = load_packs(DEFAULT_PACK_DIR)
    on_spark = {r.id: r.detector for p in packs for r in p.rules if r.detector in SPARK_DETECTORS}
    assert len(on_spark) == 21
    # every detector on Spark fires some rule of the pack on the sample (not every rule does), but
    # headcount_inflation and agency_shell_routing, whose evidence tests above fire them with lower
    # thresholds
    fired = {d for r, d in on_spark.items() if got.counts[r] > 0}
    assert fired == set(SPARK_DETECTORS) - {"headcount_inflation", "agency_shell_routing"}


def test_every_detector_is_on_spark_or_named_python_only() -> None:
    assert set(SPARK_DETECTORS) | set(PYTHON_ONLY) == set(DETECTORS)
    assert not set(SPARK_DETECTORS) & set(PYTHON_ONLY)


@pytest.mark.parametrize(
    "without",
    [("contributions", "employment"), ("visits", "deaths"), ("purchases", "clinics"), ("benefits", "custody")],
)
def test_the_same_hits_when_tables_are_missing(
    spark_engine: SparkEngine, resolved_sample: Dataset, without: tuple[str, ...]
) -> None:
    tables = resolved_sample.tables
    _same_hits(spark_engine, Dataset({n: t for n, t in tables.items() if n not in without}))


def _just_below(target: float) -> float:
    """A min_shortfall whose threshold (min_shortfall + 1e-9, as the detector adds it) is `target`."""
    m = target - 1e-9
    while m + 1e-9 != target:
        m = float(np.nextafter(m, target if m + 1e-9 < target else -np.inf))
    return m


def test_arrears_at_the_threshold_decide_as_pandas_adds(spark_engine: SparkEngine) -> None:
    """Ten dues of 0.1 add to 1.0 in pandas' compensated sum and to the double below it in order:
    a threshold at that lower double fires in pandas, and so it must with Spark's sums."""
    naive = 0.0
    for _ in range(10):
        naive += 0.1
    assert naive < 1.0
    rows = [
        dict(contribution_id=f"C{i}", person_id=f"P{i}", employer_id="E1", month="2025-03", due=0.1, paid=0.0)
        for i in range(10)
    ]
    ds = make_dataset(contributions=rows)
    det = DETECTORS["employer_arrears"]
    params = det.params(min_months=1, min_shortfall=_just_below(naive))
    want = det.run(ds, params, Cache(ds))
    assert len(want) == 1
    with detected_by(spark_engine.detectors()):
        got = det.run(ds, params, Cache(ds))
    pd.testing.assert_frame_equal(got, want)


def test_over_capacity_takes_the_next_clinics_day_after_a_clinics_last(
    spark_engine: SparkEngine, sample: Dataset
) -> None:
    """With a negative bed count (which validation refuses, but rules may run on other datasets) a
    clinic is over capacity after its last stay, until the pandas detector's next row: the next
    clinic's first day, or the first clinic's after the last."""
    clinics = sample.table("clinics").copy()
    clinics.loc[clinics.index[::3], "beds"] = -1.0
    ds = Dataset({**sample.tables, "clinics": clinics})
    det = DETECTORS["clinic_over_capacity"]
    params = det.params()
    want = det.run(ds, params, Cache(ds))
    assert (want["days"] < 0).any() or (want["date_to"] < want["date_from"]).any()
    with detected_by(spark_engine.detectors()):
        got = det.run(ds, params, Cache(ds))
    pd.testing.assert_frame_equal(got, want)
