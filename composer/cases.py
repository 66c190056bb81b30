"""Case work: cases opened from alerts or entities, their statuses, assignees, comments and full
history, and dispositions handed over as training labels (docs/cases.md).

Statuses:

    new ──> in_progress ──> awaiting_approval ──> confirmed      (a second person approves)
     │           │                 └──> in_progress             (the second person refuses)
     └───────────┴──> dismissed

Confirming and dismissing need a note; confirming needs a second person (four eyes): the one who
asks for it cannot approve it. Every change is ONE results-database transaction holding the case
row, its history event and its audit row (hash-chained like every audit row), so no answered
change is lost and none is half-written. A change names the case version it saw (optional): a
stale version is refused, so two investigators never overwrite each other silently.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa

from riskgraph.audit_chain import AuditHead
from riskgraph.errors import RiskGraphError
from riskgraph.results import ResultsDB
from riskgraph.results_schema import audit_table, case_events_table, cases_table

STATUSES = ("new", "in_progress", "awaiting_approval", "confirmed", "dismissed")
OPEN_STATUSES = ("new", "in_progress", "awaiting_approval")
CLOSED_STATUSES = ("confirmed", "dismissed")
SUBJECT_TYPES = ("person", "employer", "clinic", "pharmacy", "agency", "ring")
# to -> the statuses it may be reached from (by a status change; approval has its own call)
MOVES = {
    "in_progress": ("new",),
    "awaiting_approval": ("in_progress",),  # asked for by "confirmed": four eyes
    "dismissed": ("new", "in_progress"),
}
T = TypeVar("T")
LABEL_COLUMNS = ["entity_type", "entity_id", "label", "as_of", "case_id", "decided_by", "decided_at", "source"]


class CaseNotFound(RiskGraphError):
    status_code = 404
    code = "case_not_found"


class CaseConflict(RiskGraphError):
    """The change does not fit the case as it is now (its status, its version, four eyes)."""

    status_code = 409
    code = "case_conflict"


class CaseInvalid(RiskGraphError):
    status_code = 422
    code = "case_invalid"


@dataclass(frozen=True)
class Actor:
    """Who changes a case: the audit's actor id and role."""

    actor: str
    role: str


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_case_id() -> str:
    return f"CASE-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


def _row(conn: sa.Connection, case_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(cases_table).where(cases_table.c.case_id == case_id)).first()
    if row is None:
        raise CaseNotFound(f"no case {case_id!r}")
    return dict(row._mapping)


def _event(
    conn: sa.Connection,
    case: dict[str, Any],
    who: Actor,
    kind: str,
    *,
    at: str,
    to_status: str | None = None,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """The case's history event and its audit row, in the caller's transaction. The audit row
    names the case and what changed, never the note (free text may hold personal data)."""
    conn.execute(
        case_events_table.insert().values(
            case_id=case["case_id"],
            at=at,
            actor=who.actor,
            role=who.role,
            kind=kind,
            from_status=case["status"],
            to_status=to_status or case["status"],
            note=note,
            detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
        )
    )
    subject_is_entity = case["subject_type"] != "ring"
    conn.execute(
        audit_table.insert().values(
            at=at,
            actor=who.actor,
            role=who.role,
            action=f"case_{kind}",
            entity_type=case["subject_type"] if subject_is_entity else None,
            entity_id=case["subject_id"] if subject_is_entity else None,
            run_id=case.get("run_id"),
            detail=json.dumps(
                {"case_id": case["case_id"], "from": case["status"], "to": to_status or case["status"]}
                | ({"ring_id": case["subject_id"]} if not subject_is_entity else {})
                | {k: v for k, v in (detail or {}).items() if k != "text"},
                sort_keys=True,
            ),
        )
    )


def commit_change(db: ResultsDB, work: Callable[[sa.Connection], T]) -> T:
    """`work` in one results-database transaction (retried when busy); its audit rows are
    chained by the database's audit hook, and the sealed head file follows the commit."""

    def run() -> tuple[T, Any]:
        with db.transaction() as conn:
            out = work(conn)
            last = conn.execute(
                sa.select(audit_table.c.id, audit_table.c.seq, audit_table.c.row_hash)
                .order_by(audit_table.c.id.desc())
                .limit(1)
            ).first()
        return out, last

    out, last = db.retry(run)
    if last is not None and last.row_hash is not None:
        db.write_audit_head(AuditHead(int(last.id), int(last.seq), str(last.row_hash)))
    return out


def _update(conn: sa.Connection, case: dict[str, Any], version: int | None, **values: Any) -> None:
    """The case row changed, refused if someone changed it since `version` was read."""
    if version is not None and version != case["version"]:
        raise CaseConflict(
            f"case {case['case_id']} changed since you read it (version {version}, now {case['version']}): reload it"
        )
    res = conn.execute(
        cases_table.update()
        .where((cases_table.c.case_id == case["case_id"]) & (cases_table.c.version == case["version"]))
        .values(version=case["version"] + 1, **values)
    )
    if res.rowcount != 1:
        raise CaseConflict(f"case {case['case_id']} changed meanwhile: reload it")


def _note(note: str | None, what: str) -> str:
    if note is None or not note.strip():
        raise CaseInvalid(f"{what} needs a note saying why")
    return note.strip()


def _due(due_date: str | None) -> str | None:
    if due_date is None or due_date == "":
        return None
    try:
        return date.fromisoformat(due_date).isoformat()
    except ValueError:
        raise CaseInvalid(f"due_date {due_date!r} is not a date (YYYY-MM-DD)") from None


def open_case(
    db: ResultsDB,
    who: Actor,
    *,
    subject_type: str,
    subject_id: str,
    typology: str,
    alert_id: str | None = None,
    run_id: str | None = None,
    region: str | None = None,
    assignee: str | None = None,
    due_date: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A new case (status new) on an entity or a ring. An open case of the same subject and
    typology is returned instead of a second one."""
    if subject_type not in SUBJECT_TYPES:
        raise CaseInvalid(f"subject_type {subject_type!r} is not one of {', '.join(SUBJECT_TYPES)}")
    due = _due(due_date)

    def write(conn: sa.Connection) -> dict[str, Any]:
        existing = conn.execute(
            sa.select(cases_table.c.case_id).where(
                (cases_table.c.subject_type == subject_type)
                & (cases_table.c.subject_id == subject_id)
                & (cases_table.c.typology == typology)
                & cases_table.c.status.in_(OPEN_STATUSES)
            )
        ).first()
        if existing is not None:
            return _row(conn, existing.case_id) | {"existing": True}
        at = now_iso()
        case_id = new_case_id()
        case: dict[str, Any] = {
            "case_id": case_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "typology": typology,
            "alert_id": alert_id,
            "run_id": run_id,
            "region": region,
            "status": "new",
            "assignee": assignee,
            "due_date": due,
            "created_at": at,
            "created_by": who.actor,
            "updated_at": at,
            "version": 1,
        }
        conn.execute(cases_table.insert().values(**case))
        _event(
            conn,
            case,
            who,
            "created",
            at=at,
            note=note,
            detail={"alert_id": alert_id, "assignee": assignee, "due_date": due},
        )
        return _row(conn, case_id) | {"existing": False}

    return commit_change(db, write)


def change_status(
    db: ResultsDB, who: Actor, case_id: str, *, to: str, note: str | None = None, version: int | None = None
) -> dict[str, Any]:
    """Move a case: in_progress, dismissed (with a note), or confirmed (with a note), which asks
    a second person's approval (status awaiting_approval)."""
    target = "awaiting_approval" if to == "confirmed" else to
    if target not in MOVES:
        raise CaseInvalid(f"status {to!r} cannot be set; use in_progress, confirmed or dismissed")
    text = _note(note, f"setting a case {to}") if to in CLOSED_STATUSES else (note or None)

    def write(conn: sa.Connection) -> dict[str, Any]:
        case = _row(conn, case_id)
        if case["status"] not in MOVES[target]:
            raise CaseConflict(f"case {case_id} is {case['status']}; it cannot become {to}")
        at = now_iso()
        values: dict[str, Any] = {"status": target, "updated_at": at}
        if target == "awaiting_approval":
            values |= {"proposed_by": who.actor, "note": text}
        if target == "dismissed":
            values |= {
                "disposition": "dismissed",
                "decided_by": who.actor,
                "decided_at": at,
                "as_of": at[:10],
                "note": text,
            }
        _update(conn, case, version, **values)
        kind = "confirmation_requested" if target == "awaiting_approval" else "status"
        _event(conn, case, who, kind, at=at, to_status=target, note=text)
        return _row(conn, case_id)

    return commit_change(db, write)


def decide_approval(
    db: ResultsDB, who: Actor, case_id: str, *, approve: bool, note: str | None = None, version: int | None = None
) -> dict[str, Any]:
    """The second person's answer to a confirmation: approved (confirmed) or refused (back in
    progress, with a note). The person who asked for it cannot answer it."""
    text = note.strip() if note and note.strip() else None
    if not approve:
        text = _note(note, "refusing a confirmation")

    def write(conn: sa.Connection) -> dict[str, Any]:
        case = _row(conn, case_id)
        if case["status"] != "awaiting_approval":
            raise CaseConflict(f"case {case_id} is {case['status']}; nothing awaits approval")
        if case["proposed_by"] == who.actor:
            raise CaseConflict(
                f"four eyes: {who.actor} asked to confirm case {case_id}; a second person must approve it"
            )
        at = now_iso()
        values: dict[str, Any]
        if approve:
            values = {
                "status": "confirmed",
                "disposition": "confirmed",
                "decided_by": who.actor,
                "decided_at": at,
                "as_of": at[:10],
                "updated_at": at,
            }
        else:
            values = {"status": "in_progress", "proposed_by": None, "updated_at": at}
        _update(conn, case, version, **values)
        _event(
            conn,
            case,
            who,
            "approved" if approve else "approval_refused",
            at=at,
            to_status=str(values["status"]),
            note=text,
            detail={"proposed_by": case["proposed_by"]},
        )
        return _row(conn, case_id)

    return commit_change(db, write)


def assign(
    db: ResultsDB,
    who: Actor,
    case_ids: Sequence[str],
    *,
    assignee: str | None,
    due_date: str | None = None,
    set_due: bool = False,
) -> list[dict[str, Any]]:
    """Assign one case or many (bulk) to `assignee` (None: unassigned), optionally with a due
    date, in one transaction: all of them change, or none (a closed or unknown case refuses)."""
    if not case_ids:
        raise CaseInvalid("no case ids given")
    due = _due(due_date)

    def write(conn: sa.Connection) -> list[dict[str, Any]]:
        at = now_iso()
        out = []
        for case_id in dict.fromkeys(case_ids):
            case = _row(conn, case_id)
            if case["status"] in CLOSED_STATUSES:
                raise CaseConflict(f"case {case_id} is {case['status']}; a closed case is not assigned")
            values: dict[str, Any] = {"assignee": assignee, "updated_at": at}
            if set_due:
                values["due_date"] = due
            _update(conn, case, None, **values)
            _event(
                conn,
                case,
                who,
                "assigned",
                at=at,
                detail={"assignee": assignee, "previous": case["assignee"]} | ({"due_date": due} if set_due else {}),
            )
            out.append(_row(conn, case_id))
        return out

    return commit_change(db, write)


def comment(db: ResultsDB, who: Actor, case_id: str, *, text: str) -> dict[str, Any]:
    """A comment in the case's history (closed cases take comments too)."""
    body = _note(text, "a comment")

    def write(conn: sa.Connection) -> dict[str, Any]:
        case = _row(conn, case_id)
        at = now_iso()
        _update(conn, case, None, updated_at=at)
        _event(conn, case, who, "comment", at=at, note=body)
        return _row(conn, case_id)

    return commit_change(db, write)


def get_case(db: ResultsDB, case_id: str) -> dict[str, Any]:
    """The case with its full history, oldest event first."""
    with db.engine.connect() as conn:
        case = _row(conn, case_id)
        events = conn.execute(
            sa.select(case_events_table).where(case_events_table.c.case_id == case_id).order_by(case_events_table.c.id)
        ).all()
    case["history"] = [dict(e._mapping) | {"detail": json.loads(e.detail or "{}")} for e in events]
    return case


@dataclass(frozen=True)
class CaseFilters:
    status: tuple[str, ...] = ()
    open_only: bool = False
    assignee: str | None = None
    region: str | None = None
    typology: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    alert_id: str | None = None


def list_cases(db: ResultsDB, f: CaseFilters, *, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Cases matching the filters (open ones by due date, then newest), and how many match."""
    c = cases_table.c
    where: list[Any] = []
    if f.status:
        where.append(c.status.in_(f.status))
    if f.open_only:
        where.append(c.status.in_(OPEN_STATUSES))
    for col, value in (
        (c.assignee, f.assignee),
        (c.region, f.region),
        (c.typology, f.typology),
        (c.subject_type, f.subject_type),
        (c.subject_id, f.subject_id),
        (c.alert_id, f.alert_id),
    ):
        if value is not None:
            where.append(col == value)
    cond = sa.and_(sa.true(), *where)
    closed_last = sa.case((c.status.in_(CLOSED_STATUSES), 1), else_=0)
    q = (
        sa.select(cases_table)
        .where(cond)
        .order_by(closed_last, c.due_date.is_(None), c.due_date, c.created_at.desc(), c.case_id)
        .limit(limit)
        .offset(offset)
    )
    with db.engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(cases_table).where(cond)).scalar() or 0)
        rows = [dict(r._mapping) for r in conn.execute(q)]
    return total, rows


def case_labels(db: ResultsDB) -> pd.DataFrame:
    """Decided entity cases as labels with provenance (LABEL_COLUMNS): confirmed 1, dismissed 0,
    as_of the decision's date; the latest decision of an entity wins. Ring cases give no label
    (a ring's members are judged one by one)."""
    c = cases_table.c
    q = sa.select(c.subject_type, c.subject_id, c.disposition, c.as_of, c.case_id, c.decided_by, c.decided_at).where(
        c.disposition.in_(CLOSED_STATUSES) & (c.subject_type != "ring")
    )
    with db.engine.connect() as conn:
        df = pd.DataFrame(
            conn.execute(q).all(),
            columns=["entity_type", "entity_id", "disposition", "as_of", "case_id", "decided_by", "decided_at"],
        )
    if df.empty:
        return pd.DataFrame({col: pd.Series(dtype=object) for col in LABEL_COLUMNS})
    df["label"] = (df["disposition"] == "confirmed").astype(int)
    df["source"] = "case"
    df = df.sort_values(["decided_at", "case_id"], kind="mergesort").drop_duplicates(
        ["entity_type", "entity_id"], keep="last"
    )
    return df[LABEL_COLUMNS].reset_index(drop=True)
