"""Person resolution for investigators: the clerical-review list, decisions, and the lookup of a
golden person by ID number (docs/resolution.md). Plain service functions over the served run's
files (HOME/runs/<run>/out) and the store's snapshot; the router is api/routers/persons.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from api.errors import InvalidParameter, ResultsNotLoaded
from api.state import AppState
from composer.resolution import RESOLVED_FILE, REVIEW_FILE
from composer.runs import run_dir
from graph.resolve.idnumber import check
from riskgraph.errors import EntityNotFound


class ReviewPair(BaseModel):
    left: str
    right: str
    match_probability: float


class ReviewPage(BaseModel):
    run_id: str
    total: int
    items: list[ReviewPair]


class DecisionIn(BaseModel):
    left: str = Field(min_length=1, max_length=128)
    right: str = Field(min_length=1, max_length=128)
    decision: Literal["accept", "reject"]


class DecisionOut(BaseModel):
    left: str
    right: str
    decision: str
    applies: str = "from the next run (resolution honours the latest decision per pair)"


class PersonRecord(BaseModel):
    person_id: str
    match_probability: float | None
    matched_on: str


class GoldenPerson(BaseModel):
    golden_id: str
    records: list[PersonRecord]
    run_id: str


def _served_file(state: AppState, name: str) -> Path:
    run_id = state.book.run_id
    if not run_id:
        raise ResultsNotLoaded("no run is served yet: run `riskgraph pipeline` first")
    return run_dir(state.settings, run_id) / "out" / name


def review_page(*, state: AppState, limit: int, offset: int) -> dict[str, Any]:
    """The served run's undecided review pairs, most probable first (decided pairs left out)."""
    path = _served_file(state, REVIEW_FILE)
    pairs = pd.read_csv(path, dtype={"left": str, "right": str}) if path.exists() else pd.DataFrame()
    if len(pairs):
        decided = state.db.person_decisions()
        if len(decided):
            keys = set(zip(decided["left"], decided["right"], strict=True))
            mask = [(a, b) not in keys for a, b in zip(pairs["left"], pairs["right"], strict=True)]
            pairs = pairs[mask]
    items = pairs.iloc[offset : offset + limit].to_dict("records") if len(pairs) else []
    return {"run_id": state.book.run_id, "total": int(len(pairs)), "items": items}


def decide(*, state: AppState, actor: str, left: str, right: str, decision: str) -> dict[str, Any]:
    """Store a decision on a pair of known person records (the next run honours it)."""
    if left == right:
        raise InvalidParameter("a decision names two different person records")
    known = _resolved(state)
    missing = [p for p in (left, right) if p not in known.index]
    if missing:
        raise EntityNotFound(f"no person record {missing[0]!r} in the served run")
    state.db.record_person_decision(left, right, decision, actor=actor, run_id=state.book.run_id)
    a, b = sorted((left, right))
    return {"left": a, "right": b, "decision": decision}


def _resolved(state: AppState) -> pd.DataFrame:
    """The served run's resolution by person record, read at its first use and kept with the book."""
    book = state.book
    if "resolved" not in book.lookups:
        path = _served_file(state, RESOLVED_FILE)
        if not path.exists():
            raise ResultsNotLoaded("the served run has no person resolution (resolved_persons.csv)")
        book.lookups["resolved"] = pd.read_csv(
            path, dtype={"person_id": str, "golden_id": str, "matched_on": str}
        ).set_index("person_id")
    resolved: pd.DataFrame = book.lookups["resolved"]
    return resolved


@dataclass(frozen=True)
class IdNumbers:
    """Every person record's ID number in its 18-digit form, sorted, beside the record's id.
    Checking 1M numbers takes seconds: done at the served run's first lookup, then kept."""

    id18: np.ndarray  # fixed-width text, sorted ('' for a missing or malformed number)
    person_ids: np.ndarray  # object, in the same order

    @staticmethod
    def of(persons: pd.DataFrame) -> IdNumbers:
        # fixed-width: sorting 1M numbers takes 0.8 s instead of 2.5 s as Python strings
        forms = check(persons["id_number"]).id18.astype("U18")
        order = np.argsort(forms, kind="stable")
        return IdNumbers(forms[order], persons["person_id"].astype(str).to_numpy(dtype=object)[order])

    def holders(self, id18: str) -> list[str]:
        lo, hi = np.searchsorted(self.id18, id18, "left"), np.searchsorted(self.id18, id18, "right")
        return list(self.person_ids[lo:hi])


def by_id_number(*, state: AppState, id_number: str) -> dict[str, Any]:
    """The golden person holding an ID number (15 and 18 digits equivalent) and its records."""
    wanted = check(pd.Series([id_number]))
    if wanted.id18[0] == "":
        raise InvalidParameter("an ID number has 15 digits, or 17 digits and a digit or X")
    book = state.book
    if "id_numbers" not in book.lookups:
        dataset = state._dataset_or_none(book.snapshot_id)
        if dataset is None or "id_number" not in dataset.table("persons").columns:
            raise EntityNotFound("no person records with ID numbers are served")
        book.lookups["id_numbers"] = IdNumbers.of(dataset.table("persons"))
    holders = book.lookups["id_numbers"].holders(wanted.id18[0])
    resolved = _resolved(state)
    goldens = resolved["golden_id"].reindex(holders).dropna().unique()
    if len(goldens) == 0:
        raise EntityNotFound("no person holds this ID number")
    golden = sorted(goldens)[0]
    members = resolved[resolved["golden_id"] == golden].reset_index()
    records = [
        {
            "person_id": r.person_id,
            "match_probability": None if pd.isna(r.match_probability) else float(r.match_probability),
            "matched_on": "" if pd.isna(r.matched_on) else str(r.matched_on),
        }
        for r in members.itertuples()
    ]
    return {"golden_id": golden, "records": records, "run_id": state.book.run_id}
