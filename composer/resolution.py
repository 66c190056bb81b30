"""The resolution stage of a run (docs/resolution.md): person records -> golden persons, registry
rows -> persons, the golden dataset the later stages work on, and the outputs keyed by person_id.

Called by the composer (composer/pipeline.py) only. DuckDB's temporary files live in a private
folder under the home (HOME/tmp/resolve-<run>, mode 0700), removed when the stage ends.

The fitted model: a run reuses the person model of the served run (HOME/runs/<served>/
person_model.json: m and u; the prior and the term frequencies are always the data's own) and
fits again only when there is none, it is unusable, the `resolve_refit` setting asks for it, or
the record count moved by more than `resolve_refit_drift` from the count it was fitted on
(`model_decision`). Every resolving run keeps the model it used in its own folder, written
atomically, so the next run finds it once this one is served (docs/resolution.md).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from composer.runs import run_dir
from graph.codes import positions
from graph.dataset import Dataset
from graph.resolve.golden import golden_dataset
from graph.resolve.idnumber import check
from graph.resolve.persons import RESOLVED_COLUMNS, REVIEW_COLUMNS, Resolution, resolve_persons
from graph.resolve.registry import MATCH_COLUMNS, empty_matches, match_registries
from graph.resolve.stored import StoredModel, load_model, save_model
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings

RESOLVED_FILE = "resolved_persons.csv"
MATCHES_FILE = "registry_matches.csv"
REVIEW_FILE = "review_persons.csv"
MODEL_FILE = "person_model.json"  # in the run's folder: the person model the run resolved with

log = logging.getLogger("composer.resolution")


@dataclass
class Resolved:
    """What the stage hands on: the tables behind the output files, then (`with_golden`) the
    golden dataset the later stages work on."""

    records: pd.DataFrame  # RESOLVED_COLUMNS
    matches: pd.DataFrame  # MATCH_COLUMNS
    review: pd.DataFrame  # REVIEW_COLUMNS
    model_json: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    golden: Dataset | None = None

    @property
    def golden_of(self) -> pd.Series:
        return pd.Series(self.records["golden_id"].to_numpy(), index=self.records["person_id"].to_numpy())


def resolve_stage(
    dataset: Dataset,
    settings: Settings,
    run_id: str,
    previous: pd.Series | None = None,
    decisions: pd.DataFrame | None = None,
    stored_model: Path | None = None,
) -> Resolved:
    """Resolve the dataset's persons and match its registries (or, with `resolve` off, every
    record its own golden person). `previous` and `decisions`: see `previous_golden` and
    `review_decisions`; `stored_model`: the served run's model file (`stored_model_path`), reused
    as `model_decision` says. The composer runs this in a forked worker, so that DuckDB's threads
    never live in the process that forks the later stages' workers."""
    persons = dataset.table("persons")
    checked = check(
        persons["id_number"] if "id_number" in persons.columns else pd.Series([None] * len(persons)),
        birth_date=persons["birth_date"] if "birth_date" in persons.columns else None,
        gender=persons["gender"] if "gender" in persons.columns else None,
    )
    summary: dict[str, Any] = {"id_numbers": checked.counts()}
    if not settings.resolve or len(persons) == 0:
        ids = persons["person_id"].to_numpy(dtype=object)
        records = pd.DataFrame({"person_id": ids, "golden_id": ids, "match_probability": np.nan, "matched_on": ""})
        return Resolved(records, empty_matches(), pd.DataFrame(columns=REVIEW_COLUMNS), {}, summary)
    stored, why = model_decision(stored_model, len(persons), settings)
    if stored is None:
        log.info("resolution: fitting the person model by EM (%s)", why)
    temp = settings.home / "tmp" / f"resolve-{run_id}"
    try:
        resolution = resolve_persons(
            persons,
            temp_dir=temp / "persons",
            review_low=settings.resolve_review_low,
            review_high=settings.resolve_review_high,
            previous=previous,
            decisions=decisions,
            frozen=stored.model if stored else None,
            prior_from_data=True,
            keep_tf=False,
            checked=checked,
            threads=settings.resolve_threads,
            memory_limit=settings.resolve_memory_limit,
        )
        matches = _match(dataset, resolution, settings, temp / "registries")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    if resolution.model_json and len(persons) >= 2:
        kept = stored or StoredModel(resolution.model_json, len(persons), run_id)
        save_model(run_dir(settings, run_id) / MODEL_FILE, kept.model, records=kept.records, fitted_in=kept.fitted_in)
        summary["model"] = {
            "fitted": stored is None,
            "why": why,
            "fitted_in": kept.fitted_in,
            "fitted_records": kept.records,
        }
    summary["persons"] = resolution.counts()
    summary["registry_matches"] = {
        t: int((matches["table"] == t).sum()) for t in ("deaths", "custody") if dataset.has(t)
    } | {"low_confidence": int(matches["low_confidence"].sum())}
    return Resolved(resolution.records, matches, resolution.review, resolution.model_json, summary)


def same_person_links(records: pd.DataFrame) -> pd.DataFrame:
    """The SAME_PERSON links of a resolution (graph/store.py): every record merged into another
    record's golden person, pointing at that golden record, with its match_probability (its
    strongest link inside the cluster) and matched_on. A record that is its own golden person has
    none."""
    merged = records[records["person_id"].astype(str) != records["golden_id"].astype(str)]
    return merged[RESOLVED_COLUMNS].reset_index(drop=True)


def with_golden(dataset: Dataset, resolved: Resolved) -> Resolved:
    """`resolved` with its golden dataset (built here, in the composer's process: the forked
    worker sends back only the resolution's small tables, never a copy of the dataset)."""
    resolved.golden = golden_dataset(dataset, resolved.golden_of, resolved.matches)
    return resolved


def _match(dataset: Dataset, resolution: Resolution, settings: Settings, temp: Path) -> pd.DataFrame:
    if resolution.prepared is None or not (dataset.has("deaths") or dataset.has("custody")):
        return empty_matches()
    return match_registries(
        dataset,
        resolution.prepared,
        resolution.model_json,
        temp_dir=temp,
        threshold=settings.resolve_registry_threshold,
        threads=settings.resolve_threads,
        memory_limit=settings.resolve_memory_limit,
    )


def previous_golden(db: ResultsDB, settings: Settings) -> pd.Series | None:
    """golden_id per person_id in the served run (keeps golden ids stable), if it resolved."""
    run_id = db.served_run_id()
    path = run_dir(settings, run_id) / "out" / RESOLVED_FILE if run_id else None
    if path is None or not path.exists():
        return None
    df = pd.read_csv(path, dtype={"person_id": str, "golden_id": str}, usecols=["person_id", "golden_id"])
    return pd.Series(df["golden_id"].to_numpy(), index=df["person_id"].to_numpy())


def stored_model_path(db: ResultsDB, settings: Settings) -> Path | None:
    """The served run's person model file, if there is a served run."""
    run_id = db.served_run_id()
    return run_dir(settings, run_id) / MODEL_FILE if run_id else None


def model_decision(path: Path | None, records: int, settings: Settings) -> tuple[StoredModel | None, str]:
    """(the stored model to reuse, why) or (None, why the model is fitted again): no stored model,
    an unusable one (logged as a warning), the `resolve_refit` setting, or a record count that
    moved by more than `resolve_refit_drift` from the one the model was fitted on."""
    if settings.resolve_refit:
        return None, "the resolve_refit setting asks for it"
    if path is None:
        return None, "no served run"
    stored, problem = load_model(path)
    if stored is None:
        if problem != "no stored model":
            log.warning("resolution: %s; fitting the person model again", problem)
        return None, problem
    drift = abs(records - stored.records) / stored.records
    if drift > settings.resolve_refit_drift:
        return None, (
            f"{records:,} records against {stored.records:,} at its fit: moved {drift:.0%}, "
            f"more than resolve_refit_drift {settings.resolve_refit_drift:.0%}"
        )
    return stored, f"reusing the model fitted in run {stored.fitted_in} on {stored.records:,} records"


def review_decisions(db: ResultsDB) -> pd.DataFrame | None:
    """The investigators' accept / reject decisions on person pairs (latest per pair)."""
    decisions = db.person_decisions()
    return decisions if len(decisions) else None


def expand_scores(scores: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Scores keyed by person_id again: every person record gets its golden person's row, and
    `golden_id` is appended (empty for other entity types). Rows by type (in the scores' order),
    then id. Built as one take of the scores' rows, so a million records are copied once."""
    person = (scores["entity_type"] == "person").to_numpy()
    person_rows, other_rows = np.flatnonzero(person), np.flatnonzero(~person)
    at = positions(pd.Index(scores["entity_id"].to_numpy()[person_rows]), records["golden_id"])
    have = at >= 0
    source = np.concatenate([person_rows[at[have]], other_rows])  # each output row's scores row
    n_persons = int(have.sum())
    entity_id = np.concatenate(
        [records["person_id"].to_numpy(dtype=object)[have], scores["entity_id"].to_numpy(dtype=object)[other_rows]]
    )
    golden_id = np.full(len(source), None, dtype=object)
    golden_id[:n_persons] = records["golden_id"].to_numpy(dtype=object)[have]
    replaced: dict[str, np.ndarray] = {"entity_id": entity_id}
    rank = _text_rank(pd.Series(entity_id))  # ranks among all ids order the persons' ids alike
    if "priority" in scores.columns and n_persons:  # triage ranks 1..n again, a golden person's records together
        priority = scores["priority"].to_numpy()[source]
        order = np.lexsort((rank[:n_persons], priority[:n_persons]))
        priority[order] = np.arange(1, n_persons + 1)
        replaced["priority"] = priority
    types = pd.factorize(scores["entity_type"])[0][source]  # numbered in order of appearance
    # by type (in the scores' order), then id; ids are distinct within a type, so no ties
    order = np.lexsort((rank, types))
    out = scores.take(source[order]).reset_index(drop=True)
    for name, values in replaced.items():
        out[name] = pd.Series(values[order]).astype(scores[name].dtype)
    out["golden_id"] = pd.Series(golden_id[order], dtype=object)
    return out


def _text_rank(values: pd.Series) -> np.ndarray:
    """Each text value's rank in code-point order (equal values share one): sorts like the text."""
    codes, _ = pd.factorize(values.astype("str"), sort=True)
    return codes


def output_files(resolved: Resolved) -> dict[str, Callable[[Path], Any]]:
    """resolved_persons.csv and registry_matches.csv (the output contract), the review list."""
    return {
        RESOLVED_FILE: lambda p: resolved.records[RESOLVED_COLUMNS].to_csv(p, index=False),
        MATCHES_FILE: lambda p: resolved.matches[MATCH_COLUMNS].to_csv(p, index=False),
        REVIEW_FILE: lambda p: resolved.review[REVIEW_COLUMNS].to_csv(p, index=False),
    }
