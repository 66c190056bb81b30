"""Replaying a past credit answer from its decision record.

A decision's audit row names its run, entity, model version and language, and its detail keeps
the input-row hash, where that row is stored (the run's feature matrix) and the reason-catalogue
and policy versions (api/credit_book.py `audit_detail`). Replay rebuilds the answer from what the
run kept under `HOME/runs/<run>/` (its scores, reason columns, catalogue and model matrix), checks
the stored input row and the reasons against the record's hashes, and returns the same bytes the
caller received, with one field added at the end: `replayed_at`.

It works for as long as the run is retained (`retention_runs`); an expired run's decision is
refused with a message naming the run and the setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa

from api.book import SCORE_FILLS, run_as_of, run_credit_book, saved_catalogue
from api.credit_book import CreditBook, matrix_ids, with_decision
from composer.runs import SCORES_PARQUET, run_dir
from riskgraph.errors import RiskGraphError
from riskgraph.results import ResultsDB
from riskgraph.results_schema import audit_table
from riskgraph.row_groups import read_rows
from riskgraph.settings import Settings
from scoring.inputs import stored_row_hash

DECISION_ACTIONS = ("credit", "credit_batch")


class DecisionNotFound(RiskGraphError):
    status_code = 404
    code = "decision_not_found"


class DecisionExpired(RiskGraphError):
    """The decision's run is no longer retained: what replay needs is gone."""

    status_code = 410
    code = "decision_expired"


class ReplayMismatch(RiskGraphError):
    """The stored inputs or the rebuilt reasons differ from what the decision record proves."""

    status_code = 409
    code = "replay_mismatch"


@dataclass(frozen=True)
class Decision:
    """A decision record, as its audit row keeps it."""

    decision_id: str
    at: str
    run_id: str
    entity_type: str
    entity_id: str
    model_version: str
    grade: str
    detail: dict[str, Any]

    @property
    def lang(self) -> str:
        return str(self.detail.get("lang") or "en")


def find_decision(db: ResultsDB, decision_id: str) -> Decision:
    """The audit row of a served credit answer (DecisionNotFound if there is none)."""
    q = sa.select(audit_table).where(
        (audit_table.c.decision_id == decision_id) & audit_table.c.action.in_(DECISION_ACTIONS)
    )
    with db.engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        raise DecisionNotFound(f"no credit decision {decision_id!r} in the audit log")
    return Decision(
        row.decision_id,
        row.at,
        row.run_id or "",
        row.entity_type or "",
        row.entity_id or "",
        row.model_version or "",
        row.grade or "",
        json.loads(row.detail or "{}"),
    )


@dataclass(frozen=True)
class Replayer:
    """Replays decisions from what their runs kept (one entity's rows read per replay)."""

    settings: Settings
    db: ResultsDB

    def replay(self, decision_id: str, *, now: datetime | None = None) -> bytes:
        """The decision's answer, byte-identical to what was sent, plus `replayed_at`."""
        decision = find_decision(self.db, decision_id)
        book, matrix_id = self._book(decision)
        entry = book.answer(decision.entity_type, decision.entity_id, decision.lang)
        if entry is None:
            raise ReplayMismatch(
                f"decision {decision_id}: run {decision.run_id} kept no score of "
                f"{decision.entity_type} {decision.entity_id!r}"
            )
        self._check(decision, json.loads(entry.audit_detail), entry.model_version, entry.grade, matrix_id)
        when = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
        body = with_decision(entry.body, decision.decision_id)
        return body[:-1] + b',"replayed_at":' + orjson.dumps(when) + b"}"

    def _check(
        self, decision: Decision, detail: dict[str, Any], model_version: str, grade: str, matrix_id: str
    ) -> None:
        problems = []
        if model_version != decision.model_version or grade != decision.grade:
            problems.append(
                f"model {model_version} grade {grade}, recorded {decision.model_version} grade {decision.grade}"
            )
        if detail.get("reasons_sha256") != decision.detail.get("reasons_sha256"):
            problems.append("the rebuilt reasons differ from the recorded digest")
        recorded = decision.detail.get("input_row")
        if recorded is not None:
            folder = run_dir(self.settings, decision.run_id) / "features"
            stored = stored_row_hash(folder, decision.entity_type, matrix_id)
            if stored != recorded:
                problems.append(f"the stored input row hashes to {stored}, the record says {recorded}")
        if problems:
            raise ReplayMismatch(f"decision {decision.decision_id} cannot be replayed exactly: " + "; ".join(problems))

    def _book(self, decision: Decision) -> tuple[CreditBook, str]:
        """The credit book of the decision's run, holding its entity's row only, and the id its
        model-matrix row is kept under (a person record's golden person)."""
        run = self.db.run(decision.run_id)
        folder = run_dir(self.settings, decision.run_id) / "features"
        keep = self.settings.retention_runs
        if run is None or run["status"] != "committed" or not (folder / SCORES_PARQUET).exists():
            status = run["status"] if run is not None else "gone from the run log"
            raise DecisionExpired(
                f"decision {decision.decision_id} ({decision.at}) came from run {decision.run_id}, which is "
                f"{status}: only the newest retention_runs={keep} runs keep what a replay needs "
                "(RISKGRAPH_RETENTION_RUNS)"
            )
        manifest = json.loads(run.get("manifest") or "{}")
        policy = decision.detail.get("policy")  # the policy version whose treatments were served
        scores = (
            read_rows(folder / SCORES_PARQUET, "entity_id", [decision.entity_id], {"entity_type": decision.entity_type})
            .to_pandas()
            .fillna(SCORE_FILLS)
        )
        book = run_credit_book(
            self.settings,
            self.db,
            decision.run_id,
            run,
            scores,
            catalogue=saved_catalogue(self.settings, decision.run_id),
            bands=manifest.get("bands") or self.settings.bands.model_dump(),
            as_of=run_as_of(run),
            policy=policy or "",
            rows_only=True,
        )
        return book, str(matrix_ids(scores, pd.Index([decision.entity_id], dtype=object))[0])
