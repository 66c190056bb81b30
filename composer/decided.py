"""What people decided, put on top of every load: the labels of decided cases (the later-dated
label wins, docs/cases.md) and the corrections decided on objections (composer/amendments.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from composer.amendments import apply_amendments, stored_amendments
from composer.cases import case_labels
from composer.labels import merge_labels, with_labels
from composer.resolution import previous_golden, resolve_stage, review_decisions, stored_model_path
from graph.dataset import Dataset
from riskgraph.forked import Forked, timed
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings


@dataclass
class Decided:
    records: Dataset  # the load with the decided labels and corrections
    labels: pd.DataFrame
    label_conflicts: pd.DataFrame
    amendments_applied: int
    amendment_notes: list[str]  # corrections whose row is gone


def apply_decided(db: ResultsDB, loaded: Dataset) -> Decided:
    labels, conflicts = merge_labels(loaded.table("labels"), case_labels(db))
    records = with_labels(loaded, labels) if (labels["source"] == "case").any() else loaded
    amendments = stored_amendments(db)
    records, notes = apply_amendments(records, amendments)
    return Decided(records, labels, conflicts, len(amendments) - len(notes), notes)


def start_resolving(db: ResultsDB, loaded: Dataset, settings: Settings, run_id: str) -> Forked[Any]:
    """Person resolution (composer/resolution.py) on the second core, in a forked worker, on the
    load with the decided labels and corrections; `loaded` needs only the RESOLUTION_TABLES."""
    prior = previous_golden(db, settings), review_decisions(db), stored_model_path(db, settings)
    records = apply_decided(db, loaded).records
    return Forked(timed(resolve_stage), records, settings, run_id, *prior, name="resolve")
