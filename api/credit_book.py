"""Every scored entity's credit answer, kept as columns and encoded when asked.

Per entity type: the scores (grade, points, probability, cap, rule hits) as arrays, the worded
reasons of the riskiest rows (exact TreeSHAP with context, from the pipeline), and every row's
strongest reasons as columns (path attributions, scoring/attributions.py). An answer is one
index lookup, at most 4 reasons put in words by the run's catalogue, and one `orjson.dumps`: no
model work and no per-entity object at request time, whoever is asked about.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from api.credit_policy import EMPTY, PolicyBook, SchemeColumns, scheme_columns
from explain.catalogue import Catalogue
from explain.improve import improvement
from explain.reasons import MAX_REASONS
from rules.policy import Policy
from scoring.attributions import ReasonColumns, load_reason_columns
from scoring.inputs import hash_text, load_row_hashes


@dataclass(frozen=True)
class CreditEntry:
    """One entity's encoded answer (before its decision id) plus what the audit row needs."""

    body: bytes
    model_version: str
    grade: str
    audit_detail: str


@dataclass
class TypeColumns:
    ids: pd.Index
    grade: np.ndarray
    score_grade: np.ndarray
    grade_cap: np.ndarray
    points: np.ndarray
    probability: np.ndarray
    model_version: np.ndarray
    rule_hits: np.ndarray  # JSON text per row
    worded: dict[int, list[dict[str, Any]]]  # row -> the pipeline's worded reasons (riskiest rows, caps)
    reasons: ReasonColumns | None  # every row's strongest reasons
    reason_rows: np.ndarray | None  # row in `reasons` of each row (-1: none)
    input_hash: np.ndarray | None = None  # each row's input-row hash, uint64 (scoring/inputs.py)
    has_input_hash: np.ndarray | None = None  # False: no stored row for it
    schemes: SchemeColumns | None = None  # scheme grades and list statuses (api/credit_policy.py)


class CreditBook(Mapping[tuple[str, str], CreditEntry]):
    """(entity type, id) -> its answer in English; `answer(..., lang)` for another language."""

    def __init__(
        self,
        types: dict[str, TypeColumns],
        *,
        catalogue: Catalogue,
        bands: dict[str, float],
        as_of: str,
        run_id: str,
        policies: PolicyBook | None = None,
    ) -> None:
        self.types, self.catalogue, self.bands, self.as_of, self.run_id = types, catalogue, bands, as_of, run_id
        self.policies = policies or PolicyBook()
        self._size = sum(len(t.ids) for t in types.values())

    @staticmethod
    def build(
        scores: pd.DataFrame,
        features_dir: Path,
        *,
        catalogue: Catalogue,
        bands: dict[str, float],
        as_of: str,
        run_id: str,
        outcomes: pd.DataFrame | None = None,
        policies: PolicyBook | None = None,
        run_policy: Policy | None = None,
        rows_only: bool = False,
    ) -> CreditBook:
        """From the served run's scores table and the reason columns saved beside its features;
        `outcomes` are the run's scheme outcomes (capped under `run_policy`), `policies` the
        stored versions of the credit policy (treatments). With `rows_only` (a replay's few
        rows) only the saved rows of `scores`' entities are read."""
        if "score_grade" not in scores:
            scores = scores.assign(score_grade=scores["grade"])
        types = {}
        for t, part in scores.groupby("entity_type", sort=False):
            # object dtype: get_loc on Arrow-backed strings is several times slower
            ids = pd.Index(part["entity_id"].astype(str).to_numpy(dtype=object), dtype=object, name="entity_id")
            worded = {
                i: orjson.loads(text) for i, text in enumerate(part["reasons"].to_numpy(dtype=object)) if text != "[]"
            }
            # a person record's reason columns and input row are its golden person's, whose row it was scored on
            keys = matrix_ids(part, ids)
            wanted = list(dict.fromkeys(keys)) if rows_only else None
            saved = load_reason_columns(features_dir, str(t), wanted)
            reasons = rows = None
            if saved is not None:
                saved_ids, reasons = saved
                rows = saved_ids.get_indexer(keys).astype(np.int64)
            hashes = load_row_hashes(features_dir, str(t), wanted)
            input_hash = has_hash = None
            if hashes is not None and len(hashes):
                at = hashes.index.get_indexer(keys)
                input_hash, has_hash = hashes.to_numpy()[np.maximum(at, 0)], at >= 0
            types[str(t)] = TypeColumns(
                ids,
                part["grade"].to_numpy(dtype=object),
                part["score_grade"].to_numpy(dtype=object),
                part["grade_cap"].to_numpy(dtype=object),
                part["credit_points"].to_numpy(dtype=np.float64),
                part["risk_score"].to_numpy(dtype=np.float64),
                part["model_version"].to_numpy(dtype=object),
                part["rule_hits"].to_numpy(dtype=object),
                worded,
                reasons,
                rows,
                input_hash,
                has_hash,
            )
            if outcomes is not None:
                cols = types[str(t)]
                cols.schemes = scheme_columns(outcomes, str(t), ids, cols.grade, cols.score_grade, run_policy)
        return CreditBook(types, catalogue=catalogue, bands=bands, as_of=as_of, run_id=run_id, policies=policies)

    # -- Mapping ---------------------------------------------------------------------------------

    def __getitem__(self, key: tuple[str, str]) -> CreditEntry:
        entry = self.answer(*key)
        if entry is None:
            raise KeyError(key)
        return entry

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        cols = self.types.get(key[0])
        return cols is not None and _row(cols.ids, key[1]) >= 0

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for t, cols in self.types.items():
            for i in cols.ids:
                yield t, str(i)

    def __len__(self) -> int:
        return self._size

    def grade_of(self, entity_type: str, entity_id: str) -> str | None:
        cols = self.types.get(entity_type)
        i = _row(cols.ids, entity_id) if cols is not None else -1
        return None if cols is None or i < 0 else str(cols.grade[i])

    # -- answers ---------------------------------------------------------------------------------

    def answer(self, entity_type: str, entity_id: str, lang: str = "en") -> CreditEntry | None:
        cols = self.types.get(entity_type)
        if cols is None:
            return None
        i = _row(cols.ids, entity_id)
        if i < 0:
            return None
        reasons = self.reasons(cols, i)
        if lang != "en":
            reasons = [{**r, "text": r["text_zh"]} for r in reasons]
        grade, score_grade, cap = str(cols.grade[i]), str(cols.score_grade[i]), cols.grade_cap[i] or None
        points = float(cols.points[i])
        to_improve = improvement(
            points=points,
            grade=grade,
            score_grade=score_grade,
            bands=self.bands,
            reasons=reasons,
            catalogue=self.catalogue,
        )
        if lang != "en":
            to_improve["text"] = to_improve["text_zh"]
        encoded_reasons = orjson.dumps(reasons)
        sch = cols.schemes
        statuses = sch.statuses[i] if sch is not None else ()
        treatments, policy = self.policies.treatments(grade, entity_type, statuses)
        body = orjson.dumps(
            {
                "entity_type": entity_type,
                "entity_id": entity_id,  # the id asked for: the one found at row i
                "grade": grade,
                "credit_points": points,
                "probability": float(cols.probability[i]),
                "score_grade": score_grade,
                "grade_cap": cap,
                "cap_applied": grade != score_grade,
                "model_version": str(cols.model_version[i]),
                "reasons": orjson.Fragment(encoded_reasons),
                "to_improve": to_improve,
                "reason_catalogue": self.catalogue.version,
                "lang": lang,
                "rule_hits": orjson.Fragment(cols.rule_hits[i]),
                "schemes": sch.items[i] if sch is not None else EMPTY,
                "treatments": treatments,
                "policy": policy,
                "bands": self.bands,
                "as_of": self.as_of,
                "run_id": self.run_id,
            }
        )
        detail = audit_detail(
            encoded_reasons,
            input_hash=_input_hash(cols, i),
            inputs=f"runs/{self.run_id}/features/{entity_type}.parquet",
            catalogue=self.catalogue.version,
            lang=lang,
            policy=self.policies.version_key() or None,
        )
        return CreditEntry(body, str(cols.model_version[i]), grade, detail)

    def reasons(self, cols: TypeColumns, i: int) -> list[dict[str, Any]]:
        """Row i's reasons: a rule cap first, then the pipeline's worded reasons (riskiest rows)
        or, for everyone else, its strongest reason columns in the catalogue's words."""
        worded = cols.worded.get(i, [])
        caps = [r for r in worded if r.get("contribution") is None]
        told = [r for r in worded if r.get("contribution") is not None]
        if not told and cols.reasons is not None and cols.reason_rows is not None and cols.reason_rows[i] >= 0:
            for feature, value, contribution in cols.reasons.row(int(cols.reason_rows[i])):
                item = self.catalogue.reason(feature, value, contribution)
                if item is not None and all(item["text"] != r["text"] for r in told):
                    told.append(item)
                if len(caps) + len(told) >= MAX_REASONS:
                    break
        return (caps + told)[:MAX_REASONS]


def _row(ids: pd.Index, entity_id: str) -> int:
    try:
        i = ids.get_loc(entity_id)
    except KeyError:
        return -1
    return int(i) if isinstance(i, (int, np.integer)) else -1


def _input_hash(cols: TypeColumns, i: int) -> str | None:
    if cols.input_hash is None or cols.has_input_hash is None or not cols.has_input_hash[i]:
        return None
    return hash_text(cols.input_hash[i])


def with_decision(body: bytes, decision_id: str) -> bytes:
    """An answer with its decision id as the first field (no re-encoding)."""
    return b'{"decision_id":"' + decision_id.encode() + b'",' + body[1:]


def matrix_ids(part: pd.DataFrame, ids: pd.Index) -> pd.Index:
    """The ids the run's model matrix keys these rows by: a person record's golden person
    (docs/resolution.md), whose row it was scored on; the entity id otherwise."""
    if "golden_id" not in part:
        return ids
    golden = part["golden_id"].to_numpy(dtype=object)
    has = pd.notna(golden) & (golden != "")
    return pd.Index(np.where(has, golden.astype(str), ids.to_numpy(dtype=object)), dtype=object)


def audit_detail(
    reasons_json: bytes,
    *,
    input_hash: str | None = None,
    inputs: str = "",
    catalogue: str = "",
    lang: str = "en",
    policy: str | None = None,
) -> str:
    """What the decision record keeps beside its run, entity and model version (audit columns):
    a digest of the reasons, enough to prove what was served, and what replay needs: the
    input-row hash and where that row is stored (the run's feature matrix, referenced, not
    copied), the reason-catalogue version, the policy version whose treatments the answer carried
    (`id version`, None without a policy) and the language."""
    return orjson.dumps(
        {
            "reasons_sha256": hashlib.sha256(reasons_json).hexdigest()[:16],
            "input_row": input_hash,
            "inputs": inputs,
            "catalogue": catalogue,
            "policy": policy,
            "lang": lang,
        }
    ).decode()
