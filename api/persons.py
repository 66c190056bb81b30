"""Person resolution for investigators: the clerical-review list, decisions, and the lookup of a
golden person by ID number (docs/resolution.md). Plain service functions over the served run's
files (HOME/runs/<run>/out) and the store's snapshot; the router is api/routers/persons.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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
    path = _served_file(state, RESOLVED_FILE)
    if not path.exists():
        raise ResultsNotLoaded("the served run has no person resolution (resolved_persons.csv)")
    return pd.read_csv(path, dtype={"person_id": str, "golden_id": str, "matched_on": str}).set_index("person_id")


def by_id_number(*, state: AppState, id_number: str) -> dict[str, Any]:
    """The golden person holding an ID number (15 and 18 digits equivalent) and its records."""
    wanted = check(pd.Series([id_number]))
    if wanted.id18[0] == "":
        raise InvalidParameter("an ID number has 15 digits, or 17 digits and a digit or X")
    dataset = state._dataset_or_none(state.book.snapshot_id)
    if dataset is None or "id_number" not in dataset.table("persons").columns:
        raise EntityNotFound("no person records with ID numbers are served")
    persons = dataset.table("persons")
    forms = check(persons["id_number"]).id18
    holders = persons.loc[forms == wanted.id18[0], "person_id"].astype(str)
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
