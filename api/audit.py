"""The audit log writer, a group commit: a request that discloses a decision queues its rows and
waits until they are durable (`decide`); one background task writes whatever is queued in ONE
transaction, so concurrent requests share one fsync. Other rows (`record`: promotions, job
starts) are written by the same task without holding their request.

The rows are hash-chained and sealed in that transaction (ResultsDB.append_audit). The sealed head
file (HOME/audit.head) is written after the answers are released, by a second task that writes
only the newest head, at most every HEAD_EVERY_S: it is never on a request's path, and a head a
few batches behind the table is what `riskgraph audit verify` accepts (docs/security.md)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import anyio

from riskgraph import faults
from riskgraph.audit_chain import AuditHead
from riskgraph.errors import RiskGraphError
from riskgraph.results import ResultsDB

log = logging.getLogger("riskgraph.api.audit")
HEAD_EVERY_S = 0.1  # the head file is rewritten at most this often (each write costs an fsync)


class AuditUnavailable(RiskGraphError):
    """The audit row of a decision could not be made durable, so the answer is withheld."""

    status_code = 503
    code = "audit_unavailable"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_decision_id() -> str:
    """32 hex characters, time-ordered (milliseconds first), unguessable."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


class AuditWriter:
    """Writes audit rows in group commits; a decision's row is durable before its answer leaves."""

    def __init__(self, db: ResultsDB, *, flush_ms: int, fault: str = "") -> None:
        self.db = db
        self.flush_s = flush_ms / 1000
        self.fault = fault
        self.rows: list[dict[str, Any]] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.written = 0
        self.failures = 0
        self.batches = 0
        self._wake: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._head: AuditHead | None = None  # newest committed head not yet written to the head file
        self._head_wake: asyncio.Event | None = None
        self._head_task: asyncio.Task[None] | None = None

    @staticmethod
    def row(
        *,
        actor: str,
        role: str,
        action: str,
        entity_type: str | None = None,
        entity_id: str | None = None,
        model_version: str | None = None,
        grade: str | None = None,
        detail: str | None = None,
        decision_id: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        return {
            "at": utc_now(),
            "actor": actor,
            "role": role,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "model_version": model_version,
            "grade": grade,
            "detail": detail,
            "decision_id": decision_id,
            "run_id": run_id,
        }

    def record(self, **fields: Any) -> None:
        """Queue one row that needs no wait (written within `flush_ms`)."""
        self.rows.append(self.row(**fields))

    async def decide(self, rows: list[dict[str, Any]]) -> None:
        """Queue decision rows and return once they are committed (raises AuditUnavailable)."""
        if not rows:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.rows.extend(rows)
        self.waiters.append(done)
        if self._task is None:  # no writer task (a bare app in tests): write inline
            await self.flush()
        else:
            self._event().set()
        await done

    def _event(self) -> asyncio.Event:
        if self._wake is None:
            self._wake = asyncio.Event()
        return self._wake

    async def flush(self) -> int:
        """Write every queued row now in one transaction; returns how many were written."""
        async with self._lock:
            if not self.rows:
                return 0
            batch, self.rows = self.rows, []
            waiters, self.waiters = self.waiters, []
            try:
                head = await anyio.to_thread.run_sync(self._write, batch, self._head_task is None)
            except Exception as exc:
                self.failures += 1
                log.exception("audit write of %d rows failed", len(batch))
                # decisions whose answer is withheld are dropped; the rest wait for the next flush
                self.rows[:0] = [r for r in batch if r.get("decision_id") is None]
                for w in waiters:
                    if not w.done():
                        w.set_exception(
                            AuditUnavailable(
                                f"the audit log could not be written ({type(exc).__name__}); the answer is withheld"
                            )
                        )
                raise
            self.written += len(batch)
            self.batches += 1
            for w in waiters:
                if not w.done():
                    w.set_result(None)
            if head is not None and self._head_task is not None:
                self._head = head
                self._head_event().set()
            return len(batch)

    def _write(self, batch: list[dict[str, Any]], write_head: bool) -> AuditHead | None:
        faults.reach(self.fault, "audit_write")
        return self.db.append_audit(batch, write_head=write_head)

    def _head_event(self) -> asyncio.Event:
        if self._head_wake is None:
            self._head_wake = asyncio.Event()
        return self._head_wake

    async def _write_head(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            await anyio.to_thread.run_sync(self.db.write_audit_head, head)

    async def _head_loop(self) -> None:
        wake = self._head_event()
        while True:
            await wake.wait()
            wake.clear()
            await self._write_head()
            await asyncio.sleep(HEAD_EVERY_S)  # heads committed meanwhile: only the newest is written

    async def _loop(self) -> None:
        wake = self._event()
        while True:
            try:
                await asyncio.wait_for(wake.wait(), timeout=self.flush_s)
            except TimeoutError:
                pass
            wake.clear()
            try:
                await self.flush()
            except Exception:
                await asyncio.sleep(min(self.flush_s, 0.05))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop(), name="audit-writer")
        self._head_task = loop.create_task(self._head_loop(), name="audit-head-writer")

    async def stop(self) -> None:
        """Stop the background tasks and write whatever is left (rows, then the newest head)."""
        for task in (self._task, self._head_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._task = self._head_task = None
        await self._write_head()
        await self.flush()
