"""The served results, loaded once per pipeline/job run: credit answers pre-encoded as JSON bytes
(no database read on the hot path) and per-type risk frames for the inspectors' lists."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from composer.runs import run_dir
from explain.catalogue import Catalogue, built_in
from explain.improve import improvement
from explain.reasons import MAX_REASONS
from graph.contract import ENTITY_TABLE, ENTITY_TYPES, ID_COLUMN
from graph.dataset import Dataset
from riskgraph.results import ResultsDB
from riskgraph.settings import Settings

log = logging.getLogger("riskgraph.api.book")


@dataclass(frozen=True)
class CreditEntry:
    """One entity's ready answer plus what the audit row needs."""

    body: bytes
    model_version: str
    grade: str
    audit_detail: str
    needs_reasons: bool  # stored reasons are empty: explain on demand


@dataclass
class ResultsBook:
    credit: dict[tuple[str, str], CreditEntry] = field(default_factory=dict)
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
    manifest = json.loads(run.get("manifest") or "{}")
    book = ResultsBook(fingerprint=f"{run_id}#{served[1]}", run_id=run_id, snapshot_id=run.get("snapshot_id"))
    saved = run_dir(settings, run_id) / "features" / "catalogue.json"
    if saved.exists():
        book.catalogue = Catalogue.from_json(saved.read_text(encoding="utf-8"))
    scores = db.read_run_table(run_id, "scores")
    book.rule_hits = db.read_run_table(run_id, "rule_hits")
    book.rings = db.read_run_table(run_id, "rings")
    book.ring_members = db.read_run_table(run_id, "ring_members")
    book.ring_edges = db.read_run_table(run_id, "ring_edges")
    book.as_of = str(run.get("committed_at") or manifest.get("snapshot_loaded_at") or "")
    if scores.empty:
        return book
    dataset = dataset_of(book.snapshot_id)
    bands = settings.bands.model_dump()
    book.bands = bands
    scores = scores.fillna({"grade_cap": "", "reasons": "[]", "rule_hits": "[]", "model_version": ""})
    book.credit = _credit_entries(scores, bands, book.as_of, run_id, book.catalogue)
    book.risk = _risk_frames(scores, book.ring_members, dataset)
    log.info("loaded %d scores, %d rings", len(scores), len(book.rings))
    return book


def credit_body(
    row: dict[str, Any], bands: dict[str, float], as_of: str, reasons_json: str, run_id: str, catalogue: Catalogue
) -> bytes:
    """The JSON answer of GET /v1/credit for one scores row (reasons spliced in unparsed; the
    per-request `decision_id` is put in front when served, see `with_decision`)."""
    cap = row["grade_cap"] or None
    to_improve = improvement(
        points=float(row["credit_points"]),
        grade=row["grade"],
        score_grade=row["score_grade"],
        bands=bands,
        reasons=orjson.loads(reasons_json),
        catalogue=catalogue,
    )
    return orjson.dumps(
        {
            "entity_type": row["entity_type"],
            "entity_id": row["entity_id"],
            "grade": row["grade"],
            "credit_points": float(row["credit_points"]),
            "probability": float(row["risk_score"]),
            "score_grade": row["score_grade"],
            "grade_cap": cap,
            "cap_applied": row["grade"] != row["score_grade"],
            "model_version": row["model_version"],
            "reasons": orjson.Fragment(reasons_json),
            "to_improve": to_improve,
            "reason_catalogue": catalogue.version,
            "lang": "en",
            "rule_hits": orjson.Fragment(row["rule_hits"]),
            "bands": bands,
            "as_of": as_of,
            "run_id": run_id,
        }
    )


def with_reasons(body: bytes, reasons_json: str, bands: dict[str, float], catalogue: Catalogue) -> bytes:
    """A stored answer with reasons explained later (and the improvement line they feed)."""
    doc = orjson.loads(body)
    caps = [r for r in doc.get("reasons") or [] if r.get("contribution") is None]  # a rule's grade cap
    reasons = (caps + orjson.loads(reasons_json))[:MAX_REASONS]
    doc["reasons"] = reasons
    doc["to_improve"] = improvement(
        points=doc["credit_points"],
        grade=doc["grade"],
        score_grade=doc["score_grade"],
        bands=bands,
        reasons=reasons,
        catalogue=catalogue,
    )
    return orjson.dumps(doc)


def localised(body: bytes, lang: str) -> bytes:
    """The answer with `text` in the asked language (`text_zh` stays: the reason schema)."""
    if lang == "en":
        return body
    doc = orjson.loads(body)
    for reason in doc.get("reasons") or []:
        reason["text"] = reason.get("text_zh", reason.get("text"))
    if doc.get("to_improve"):
        doc["to_improve"]["text"] = doc["to_improve"].get("text_zh", doc["to_improve"].get("text"))
    doc["lang"] = lang
    return orjson.dumps(doc)


def with_decision(body: bytes, decision_id: str) -> bytes:
    """A stored answer with its decision id as the first field (no re-encoding)."""
    return b'{"decision_id":"' + decision_id.encode() + b'",' + body[1:]


def audit_detail(reasons_json: str) -> str:
    """What the audit log keeps of the reasons: a digest, enough to prove what was served."""
    return '{"reasons_sha256":"' + hashlib.sha256(reasons_json.encode()).hexdigest()[:16] + '"}'


def _credit_entries(
    scores: pd.DataFrame, bands: dict[str, float], as_of: str, run_id: str, catalogue: Catalogue
) -> dict[tuple[str, str], CreditEntry]:
    if "score_grade" not in scores:
        scores = scores.assign(score_grade=scores["grade"])
    out: dict[tuple[str, str], CreditEntry] = {}
    cols = [
        "entity_type",
        "entity_id",
        "grade",
        "credit_points",
        "risk_score",
        "score_grade",
        "grade_cap",
        "model_version",
        "reasons",
        "rule_hits",
    ]
    for row in scores[cols].to_dict("records"):
        row["entity_id"] = str(row["entity_id"])
        reasons = row["reasons"]
        out[(row["entity_type"], row["entity_id"])] = CreditEntry(
            credit_body(row, bands, as_of, reasons, run_id, catalogue),
            row["model_version"],
            row["grade"],
            audit_detail(reasons),
            reasons == "[]" or (reasons.count('"code"') == 1 and '"contribution": null' in reasons),
        )
    return out


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
        s["rule_list"] = [json.loads(v) for v in s["rule_hits"]]
        if len(ring_lists):
            keys = pd.MultiIndex.from_arrays([np.full(len(s), t), s["entity_id"].to_numpy()])
            rl = ring_lists.reindex(keys).to_numpy()
            s["ring_list"] = [v if isinstance(v, list) else [] for v in rl]
        else:
            s["ring_list"] = [[] for _ in range(len(s))]
        if "priority" not in s:  # a run from before triage priorities: riskiest first
            s = s.sort_values(["risk_score", "entity_id"], ascending=[False, True], kind="mergesort")
            s["priority"] = np.arange(1, len(s) + 1)
            s["amount_at_stake"] = np.nan
        s = s.sort_values("priority", kind="mergesort")
        s["rank"] = s["priority"].to_numpy()
        frames[t] = s.reset_index(drop=True)
    return frames


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
