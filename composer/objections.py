"""Objections and corrections (docs/cases.md): an inspector records an objection on the graded
person's or employer's behalf, against a grade or a rule hit, naming the disputed records; an
investigator rejects it or corrects it. A correction is a set of data amendments
(composer/amendments.py) applied on top of every later load; the entity is then re-graded by a
re-scoring run with the champion models, and its grade before and after is kept on the
objection and audited.

Each change is one results-database transaction with its audit row (as the case changes in
composer/cases.py). Listings and their expiry (the credit-policy work) ask this module through
`has_completed_correction` and `corrections_of`.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from composer.amendments import Amendment, InvalidAmendment
from composer.cases import Actor, CaseConflict, CaseInvalid, commit_change, now_iso
from composer.pipeline import ModelSource, run_pipeline
from riskgraph.errors import RiskGraphError
from riskgraph.results import ResultsDB, run_table
from riskgraph.results_schema import amendments_table, audit_table, corrections_table, objections_table
from riskgraph.settings import Settings

AGAINST = ("grade", "rule_hit")
OBJECTION_TYPES = ("person", "employer")  # who may object: the graded person or employer


class ObjectionNotFound(RiskGraphError):
    status_code = 404
    code = "objection_not_found"


def _row(conn: sa.Connection, objection_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(objections_table).where(objections_table.c.objection_id == objection_id)).first()
    if row is None:
        raise ObjectionNotFound(f"no objection {objection_id!r}")
    return _out(dict(row._mapping))


def _out(row: dict[str, Any]) -> dict[str, Any]:
    for k in ("records", "before", "after"):
        row[k] = json.loads(row[k]) if row.get(k) else None
    return row


def _audit(conn: sa.Connection, who: Actor, action: str, o: dict[str, Any], at: str, **detail: Any) -> None:
    conn.execute(
        audit_table.insert().values(
            at=at,
            actor=who.actor,
            role=who.role,
            action=action,
            entity_type=o["entity_type"],
            entity_id=o["entity_id"],
            grade=detail.pop("grade", None),
            run_id=detail.pop("run_id", None),
            detail=json.dumps({"objection_id": o["objection_id"]} | detail, sort_keys=True, default=str),
        )
    )


def entity_grade(db: ResultsDB, entity_type: str, entity_id: str, run_id: str | None = None) -> dict[str, Any] | None:
    """The entity's grade, points, risk and rule hits in a run (default: the served one)."""
    run_id = run_id or db.served_run_id()
    if run_id is None:
        return None
    table = run_table(run_id, "scores")
    with db.engine.connect() as conn:
        if not sa.inspect(conn).has_table(table):
            return None
        row = conn.execute(
            sa.text(
                f'SELECT grade, credit_points, risk_score, rule_hits FROM "{table}" '
                "WHERE entity_type = :t AND entity_id = :i"
            ),
            {"t": entity_type, "i": entity_id},
        ).first()
    if row is None:
        return None
    return {
        "run_id": run_id,
        "grade": row.grade,
        "credit_points": float(row.credit_points),
        "risk_score": float(row.risk_score),
        "rule_hits": json.loads(row.rule_hits or "[]"),
    }


def record_objection(
    db: ResultsDB,
    who: Actor,
    *,
    entity_type: str,
    entity_id: str,
    against: str,
    statement: str,
    records: list[dict[str, Any]],
    rule_id: str | None = None,
    case_id: str | None = None,
) -> dict[str, Any]:
    """An open objection against the entity's grade or one of its rule hits, with the disputed
    records (each {table, key}: the row addressed as an amendment would address it)."""
    if entity_type not in OBJECTION_TYPES:
        raise CaseInvalid(f"objections are made for a person or an employer, not a {entity_type}")
    if against not in AGAINST:
        raise CaseInvalid(f"an objection is against a grade or a rule_hit, not {against!r}")
    if against == "rule_hit" and not rule_id:
        raise CaseInvalid("an objection against a rule hit names the rule_id")
    if not statement.strip():
        raise CaseInvalid("an objection needs a statement")
    for i, r in enumerate(records):
        Amendment(str(r.get("table")), dict(r.get("key") or {}), "delete").check(f"records[{i}]")
    current = entity_grade(db, entity_type, entity_id)
    if current is None:
        raise CaseInvalid(f"no {entity_type} {entity_id!r} in the served run")
    if against == "rule_hit" and rule_id not in current["rule_hits"]:
        raise CaseInvalid(f"{entity_type} {entity_id} has no hit of rule {rule_id!r} in the served run")

    def write(conn: sa.Connection) -> dict[str, Any]:
        at = now_iso()
        o = {
            "objection_id": f"OBJ-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}",
            "entity_type": entity_type,
            "entity_id": entity_id,
            "against": against,
            "rule_id": rule_id,
            "records": json.dumps(records, sort_keys=True),
            "statement": statement.strip(),
            "status": "open",
            "case_id": case_id,
            "created_at": at,
            "created_by": who.actor,
            "before": json.dumps(current),
        }
        conn.execute(objections_table.insert().values(**o))
        _audit(conn, who, "objection_recorded", o, at, against=against, rule_id=rule_id, records=len(records))
        return _row(conn, str(o["objection_id"]))

    return commit_change(db, write)


def reject_objection(db: ResultsDB, who: Actor, objection_id: str, *, note: str) -> dict[str, Any]:
    """The investigator finds the records right: the objection is closed, nothing changes."""
    if not note or not note.strip():
        raise CaseInvalid("rejecting an objection needs a note saying why")

    def write(conn: sa.Connection) -> dict[str, Any]:
        o = _row(conn, objection_id)
        if o["status"] != "open":
            raise CaseConflict(f"objection {objection_id} is {o['status']}, not open")
        at = now_iso()
        conn.execute(
            objections_table.update()
            .where(objections_table.c.objection_id == objection_id)
            .values(status="rejected", decided_at=at, decided_by=who.actor, note=note.strip())
        )
        _audit(conn, who, "objection_rejected", o, at)
        return _row(conn, objection_id)

    return commit_change(db, write)


def correct_objection(
    db: ResultsDB, who: Actor, objection_id: str, *, amendments: list[Amendment], note: str
) -> dict[str, Any]:
    """The investigator corrects the data: the amendments are stored with the objection, which
    is marked corrected, in one transaction. `regrade` then re-scores."""
    if not amendments:
        raise InvalidAmendment("a correction needs at least one amendment")
    if not note or not note.strip():
        raise CaseInvalid("a correction needs a note saying what was wrong")
    for i, a in enumerate(amendments):
        a.check(f"amendments[{i}]")

    def write(conn: sa.Connection) -> dict[str, Any]:
        o = _row(conn, objection_id)
        if o["status"] != "open":
            raise CaseConflict(f"objection {objection_id} is {o['status']}, not open")
        at = now_iso()
        for a in amendments:
            conn.execute(
                amendments_table.insert().values(
                    objection_id=objection_id,
                    table_name=a.table,
                    row_key=json.dumps(a.key, sort_keys=True),
                    action=a.action,
                    changes=json.dumps(a.changes, sort_keys=True) if a.changes else None,
                    at=at,
                    actor=who.actor,
                )
            )
        conn.execute(
            objections_table.update()
            .where(objections_table.c.objection_id == objection_id)
            .values(status="corrected", decided_at=at, decided_by=who.actor, note=note.strip())
        )
        # the credit-policy side reads corrections here: early removal from a list (docs/credit-policy.md)
        conn.execute(
            corrections_table.insert().values(
                entity_type=o["entity_type"],
                entity_id=o["entity_id"],
                corrected_date=at[:10],
                source=f"objection:{objection_id}",
                recorded_at=at,
            )
        )
        _audit(
            conn,
            who,
            "objection_corrected",
            o,
            at,
            amendments=[{"table": a.table, "key": a.key, "action": a.action} for a in amendments],
        )
        return _row(conn, objection_id)

    return commit_change(db, write)


def regrade(settings: Settings, db: ResultsDB, who: Actor, objection_id: str, *, wait: bool = True) -> dict[str, Any]:
    """Re-grade after a correction: a re-scoring run of the served snapshot with every amendment
    applied and the champion models (so only the data changed), served as a new run; the
    entity's grade before and after is kept on the objection and audited."""
    with db.engine.connect() as conn:
        o = _row(conn, objection_id)
    if o["status"] != "corrected":
        raise CaseConflict(f"objection {objection_id} is {o['status']}; only a corrected one is re-graded")
    run = run_pipeline(data=None, out=None, settings=settings, models=ModelSource.CHAMPION, kind="regrade", wait=wait)
    after = entity_grade(db, o["entity_type"], o["entity_id"], run.run_id)

    def write(conn: sa.Connection) -> dict[str, Any]:
        at = now_iso()
        conn.execute(
            objections_table.update()
            .where(objections_table.c.objection_id == objection_id)
            .values(after=json.dumps(after), regrade_run_id=run.run_id)
        )
        before = o["before"] or {}
        _audit(
            conn,
            who,
            "objection_regraded",
            o,
            at,
            grade=(after or {}).get("grade"),
            run_id=run.run_id,
            before={k: before.get(k) for k in ("grade", "credit_points", "rule_hits")},
            after={k: (after or {}).get(k) for k in ("grade", "credit_points", "rule_hits")},
        )
        return _row(conn, objection_id)

    return commit_change(db, write)


def get_objection(db: ResultsDB, objection_id: str) -> dict[str, Any]:
    with db.engine.connect() as conn:
        o = _row(conn, objection_id)
        rows = conn.execute(
            sa.select(amendments_table)
            .where(amendments_table.c.objection_id == objection_id)
            .order_by(amendments_table.c.id)
        ).all()
    o["amendments"] = [
        {
            "table": r.table_name,
            "key": json.loads(r.row_key),
            "action": r.action,
            "changes": json.loads(r.changes) if r.changes else None,
            "at": r.at,
            "actor": r.actor,
        }
        for r in rows
    ]
    return o


def list_objections(
    db: ResultsDB, *, entity_type: str | None = None, entity_id: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    c = objections_table.c
    q = sa.select(objections_table).order_by(c.created_at.desc(), c.objection_id)
    for col, value in ((c.entity_type, entity_type), (c.entity_id, entity_id), (c.status, status)):
        if value is not None:
            q = q.where(col == value)
    with db.engine.connect() as conn:
        return [_out(dict(r._mapping)) for r in conn.execute(q)]


# -- the interface the credit-policy work (listings, their expiry and early removal) calls --------


def corrections_of(db: ResultsDB, entity_type: str, entity_id: str) -> list[dict[str, Any]]:
    """The entity's completed corrections, oldest first: objection id, what it was against
    (grade or rule_hit, and the rule), when and by whom it was corrected, and the grade before
    and after the re-grade (None until re-graded)."""
    rows = list_objections(db, entity_type=entity_type, entity_id=entity_id, status="corrected")
    return [
        {
            "objection_id": o["objection_id"],
            "against": o["against"],
            "rule_id": o["rule_id"],
            "corrected_at": o["decided_at"],
            "corrected_by": o["decided_by"],
            "before": o["before"],
            "after": o["after"],
        }
        for o in sorted(rows, key=lambda o: (o["decided_at"] or "", o["objection_id"]))
    ]


def has_completed_correction(
    db: ResultsDB, entity_type: str, entity_id: str, *, rule_id: str | None = None, since: str | None = None
) -> bool:
    """Whether the entity has a completed correction (corrected, not merely objected), against
    `rule_id` when given (an objection against the grade counts for every rule), decided at or
    after `since` (ISO date or time) when given."""
    for c in corrections_of(db, entity_type, entity_id):
        if since is not None and (c["corrected_at"] or "") < since:
            continue
        if rule_id is None or c["against"] == "grade" or c["rule_id"] == rule_id:
            return True
    return False
