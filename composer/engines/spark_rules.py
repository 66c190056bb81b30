"""Rule detectors as Spark DataFrame work, for the rules of the same YAML packs (rules/packs/).

A rule pack names a detector and its parameters; `evaluate` (rules/engine.py) runs it. Inside
`detected_by(spark_detectors(session))` the detectors below run on Spark instead, with the
rule's parameters from the same pack and overrides: Spark gets integer codes, day and month
numbers and amounts per row (never an id or a personal value), does the grouping, counting and
joining that decide which rows fire, and sends back the firing rows' positions (and the numbers
it computed); the driver then gathers their evidence exactly as the pandas detector does, so hits
and evidence are the same.

On Spark: multi_clinic_visits (distinct clinics per person and day or month), over_prescribing
(supplies over the limit, per-person counts), benefit_after_death (benefits joined to deaths by
person, months after the death month), activity_after_death (visits and purchases joined to deaths
by person, days after the death day and its grace; benefits, months after the death month),
split_admission (each person's (and diagnosis's) inpatient stays in date order, the one before
each by a window's lag, the days between), overlapping_supply (each person's purchases of a drug in
date order, the supply of the one before by a window's lag), activity_during_stay (visits and
purchases joined to the same person's inpatient stays, kept when strictly inside one),
benefit_while_contributing (benefits joined to paid contributions by person and month),
ineligible_benefits (which benefit rows were paid after the death month or while employed: joins
to the deaths, the paid contributions and the employment spells; the per-person totals on the
driver, as the pandas detector adds them), base_below_wage (each contribution's base against the
wage of the latest employment spell of its employer and person, by a window's first row),
headcount_inflation (each employer's busiest contribution month, counted and ranked on Spark),
employer_arrears (each employer's months whose shortfall could pass the threshold; the driver
decides on those months' rows with the pandas detector's sums), duplicate_benefit and
duplicate_enrolment (distinct records per person and month counted on Spark; the amounts added on
the driver for the groups that fire), benefit_during_custody (benefits joined to the custody terms
of their person), agency_shell_routing (each agency's distinct persons and employers among its
placements into small employers), clinic_over_capacity (each clinic's daily census as a running
sum over its days). Every other detector of rules/detectors/ still runs in pandas on the driver
(`PYTHON_ONLY` lists them for the manifest and docs/scale.md).

The detectors live by domain in spark_rules_medical.py, spark_rules_benefits.py and
spark_rules_employers.py, on the shared frames of spark_rule_frames.py; this module lists them.

Where Spark narrows rows rather than deciding them (arrears), the driver's pandas function gets
every row of each group that could fire and decides exactly as on the whole table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from composer.engines.spark_rules_benefits import (
    benefit_after_death,
    benefit_during_custody,
    benefit_while_contributing,
    duplicate_benefit,
    duplicate_enrolment,
    ineligible_benefits,
)
from composer.engines.spark_rules_employers import (
    agency_shell_routing,
    base_below_wage,
    employer_arrears,
    headcount_inflation,
)
from composer.engines.spark_rules_medical import (
    activity_after_death,
    activity_during_stay,
    clinic_over_capacity,
    multi_clinic_visits,
    over_prescribing,
    overlapping_supply,
    split_admission,
)
from rules.detectors import DETECTORS
from rules.detectors.base import DetectorFn

SPARK_DETECTORS: dict[str, Callable[..., pd.DataFrame]] = {
    "multi_clinic_visits": multi_clinic_visits,
    "over_prescribing": over_prescribing,
    "benefit_after_death": benefit_after_death,
    "activity_after_death": activity_after_death,
    "split_admission": split_admission,
    "overlapping_supply": overlapping_supply,
    "activity_during_stay": activity_during_stay,
    "benefit_while_contributing": benefit_while_contributing,
    "ineligible_benefits": ineligible_benefits,
    "base_below_wage": base_below_wage,
    "headcount_inflation": headcount_inflation,
    "employer_arrears": employer_arrears,
    "duplicate_benefit": duplicate_benefit,
    "duplicate_enrolment": duplicate_enrolment,
    "benefit_during_custody": benefit_during_custody,
    "agency_shell_routing": agency_shell_routing,
    "clinic_over_capacity": clinic_over_capacity,
}
PYTHON_ONLY = tuple(sorted(name for name in DETECTORS if name not in SPARK_DETECTORS))


def spark_detectors(session: Any) -> dict[str, DetectorFn]:
    """The detectors that run on Spark, bound to a session (for `rules.detectors.base.detected_by`)."""

    def bound(fn: Callable[..., pd.DataFrame]) -> DetectorFn:
        return lambda ds, p, cx: fn(session, ds, p, cx)

    return {name: bound(fn) for name, fn in SPARK_DETECTORS.items()}
