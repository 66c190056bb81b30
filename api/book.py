"""The served results, loaded once per pipeline/job run: every entity's credit answer (as
columns, encoded when asked: api/credit_book.py; no database read on the hot path) and per-type
risk frames for the inspectors' lists."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from api.credit_book import CreditBook
from api.credit_policy import PolicyBook
from composer.protect import reveal_evidence
from composer.runs import SCORES_PARQUET, run_dir
from composer.supervision import SCHEMES_PARQUET, stored_policies
from explain.catalogue import Catalogue, built_in
from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN
from graph.dataset import Dataset
from graph.factory import field_cipher
from riskgraph.results import ResultsDB
from riskgraph.row_groups import read_rows
from riskgraph.settings import Settings

log = logging.getLogger("riskgraph.api.book")


@dataclass
class ResultsBook:
    credit: CreditBook = field(
        default_factory=lambda: CreditBook({}, catalogue=built_in(), bands={}, as_of="", run_id="")
    )
    risk: dict[str, pd.DataFrame] = field(default_factory=dict)  # per type, riskiest first
    rule_hits: pd.DataFrame = field(default_factory=pd.DataFrame)
    rings: pd.DataFrame = field(default_factory=pd.DataFrame)
    ring_members: pd.DataFrame = field(default_factory=pd.DataFrame)
    ring_edges: pd.DataFrame = field(default_factory=pd.DataFrame)
    as_of: str = ""
    fingerprint: str = ""
    run_id: str = ""
    snapshot_id: str | None = None
    catalogue: Catalogue = field(default_factory=built_in)
    bands: dict[str, float] = field(default_factory=dict)
    # what a request builds at its first use on this run (api/persons.py, api/cases.py), dropped with the book
    lookups: dict[str, Any] = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        return bool(self.credit)


def results_fingerprint(db: ResultsDB) -> str:
    """Changes at every commit or rollback (the served pointer's sequence number moves)."""
    served = db.served()
    return f"{served[0]}#{served[1]}" if served else ""


def load_book(*, db: ResultsDB, settings: Settings, dataset_of: Callable[[str | None], Dataset | None]) -> ResultsBook:
    """Read the served run's tables and build the in-memory book (empty before the first run).
    `dataset_of(snapshot_id)` gives that run's store snapshot (for regions)."""
    served = db.served()
    if served is None:
        return ResultsBook()
    run_id = served[0]
    run = db.run(run_id) or {}
    book = ResultsBook(fingerprint=f"{run_id}#{served[1]}", run_id=run_id, snapshot_id=run.get("snapshot_id"))
    book.catalogue = saved_catalogue(settings, run_id)
    saved_scores = run_dir(settings, run_id) / "features" / SCORES_PARQUET
    # the run's own Parquet copy of its scores table (the same rows; ten times faster than SQL)
    scores = pd.read_parquet(saved_scores) if saved_scores.exists() else db.read_run_table(run_id, "scores")
    # rule evidence was written with its personal values encrypted (composer/protect.py): the
    # served book holds them in plain, in memory only; masking by role applies as before
    book.rule_hits = _revealed(db.read_run_table(run_id, "rule_hits"), settings)
    book.rings = db.read_run_table(run_id, "rings")
    book.ring_members = db.read_run_table(run_id, "ring_members")
    book.ring_edges = db.read_run_table(run_id, "ring_edges")
    book.as_of = run_as_of(run)
    if scores.empty:
        return book
    dataset = dataset_of(book.snapshot_id)
    bands = settings.bands.model_dump()
    book.bands = bands
    scores = scores.fillna(SCORE_FILLS)
    book.credit = run_credit_book(
        settings,
        db,
        run_id,
        run,
        scores,
        catalogue=book.catalogue,
        bands=bands,
        as_of=book.as_of,
    )
    book.risk = _risk_frames(scores, book.ring_members, dataset)
    log.info("loaded %d scores, %d rings", len(scores), len(book.rings))
    return book


SCORE_FILLS = {"grade_cap": "", "reasons": "[]", "rule_hits": "[]", "model_version": ""}


def saved_catalogue(settings: Settings, run_id: str) -> Catalogue:
    """The reason catalogue a run saved beside its features (the built-in one for older runs)."""
    saved = run_dir(settings, run_id) / "features" / "catalogue.json"
    return Catalogue.from_json(saved.read_text(encoding="utf-8")) if saved.exists() else built_in()


def run_as_of(run: dict[str, Any]) -> str:
    """A run's answers are as of its commit."""
    manifest = json.loads(run.get("manifest") or "{}")
    return str(run.get("committed_at") or manifest.get("snapshot_loaded_at") or "")


def run_credit_book(
    settings: Settings,
    db: ResultsDB,
    run_id: str,
    run: dict[str, Any],
    scores: pd.DataFrame,
    *,
    catalogue: Catalogue,
    bands: dict[str, float],
    as_of: str,
    policy: str | None = None,
    rows_only: bool = False,
) -> CreditBook:
    """The credit answers of a run's `scores` rows (all of them when serving; one when replaying,
    `rows_only`: then only those rows are read from the run's files).
    Treatments come from the policy version in force, or, for a replay, from `policy` (the
    `id version` the decision record names; "" or None: the answer carried no policy)."""
    folder = run_dir(settings, run_id) / "features"
    manifest = json.loads(run.get("manifest") or "{}")
    versions = stored_policies(db)
    key = lambda p: f"{p.id} {p.version}"  # noqa: E731
    if policy is not None:
        versions_served = [p for p in versions if key(p) == policy]
    else:
        versions_served = versions
    saved_schemes = folder / SCHEMES_PARQUET
    outcomes = None
    if saved_schemes.exists():
        wanted = scores["entity_id"].astype(str).unique().tolist() if rows_only else None
        outcomes = read_rows(saved_schemes, "entity_id", wanted).to_pandas()
    return CreditBook.build(
        scores,
        folder,
        catalogue=catalogue,
        bands=bands,
        as_of=as_of,
        run_id=run_id,
        outcomes=outcomes,
        policies=PolicyBook(versions_served),
        run_policy=next((p for p in versions if key(p) == manifest.get("policy")), None),
        rows_only=rows_only,
    )


def _revealed(hits: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    if hits.empty or "evidence" not in hits.columns or not hits["evidence"].astype(str).str.contains("enc1:").any():
        return hits
    cipher = field_cipher(settings)
    return hits.assign(evidence=[reveal_evidence(e, cipher) for e in hits["evidence"].tolist()])


def _risk_frames(scores: pd.DataFrame, members: pd.DataFrame, dataset: Dataset | None) -> dict[str, pd.DataFrame]:
    """Per type: one row per entity in triage order (`priority`, scoring/triage.py), with region
    and ring ids."""
    ring_lists = (
        members.groupby(["entity_type", "entity_id"])["ring_id"].agg(lambda s: sorted(set(s)))
        if len(members)
        else pd.Series(dtype=object)
    )
    frames = {}
    for t in ENTITY_TYPES:
        s = scores[scores["entity_type"] == t].copy()
        s["entity_id"] = s["entity_id"].astype(str)
        s["region"] = _regions(dataset, t, s["entity_id"])
        s["rule_list"] = _json_lists(s["rule_hits"])
        ring_list: list[list[str]] = [[] for _ in range(len(s))]  # most entities are in no ring
        if len(ring_lists) and t in ring_lists.index.get_level_values(0):
            mine = ring_lists.xs(t, level=0)
            at = pd.Index(s["entity_id"].to_numpy(dtype=object)).get_indexer(mine.index.astype(str))
            for i, rings in zip(at, mine.tolist()):
                if i >= 0:
                    ring_list[i] = rings
        s["ring_list"] = ring_list
        if "priority" not in s:  # a run from before triage priorities: riskiest first
            s = s.sort_values(["risk_score", "entity_id"], ascending=[False, True], kind="mergesort")
            s["priority"] = np.arange(1, len(s) + 1)
            s["amount_at_stake"] = np.nan
        s = s.sort_values("priority", kind="mergesort")
        s["rank"] = s["priority"].to_numpy()
        frames[t] = s.reset_index(drop=True)
    return frames


def _json_lists(values: pd.Series) -> list[list[Any]]:
    """Each row's JSON list; the many "[]" (no rule hit) are not parsed one by one."""
    out: list[list[Any]] = [[] for _ in range(len(values))]
    some = np.flatnonzero((values != "[]").to_numpy(dtype=bool, na_value=False))
    for i, text in zip(some, values.iloc[some].tolist()):
        out[i] = json.loads(text)
    return out


def _regions(dataset: Dataset | None, entity_type: str, ids: pd.Series) -> pd.Series:
    if dataset is None or not dataset.has(ENTITY_TABLE[entity_type]):
        return pd.Series([None] * len(ids), index=ids.index, dtype=object)
    table = dataset.table(ENTITY_TABLE[entity_type])
    if "region" not in table:
        return pd.Series([None] * len(ids), index=ids.index, dtype=object)
    region = table.set_index(table[ID_COLUMN[entity_type]].astype(str))["region"]
    region = region[~region.index.duplicated()]
    vals = region.reindex(ids.to_numpy()).to_numpy(dtype=object)
    return pd.Series(
        [None if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v) for v in vals],
        index=ids.index,
        dtype=object,
    )
