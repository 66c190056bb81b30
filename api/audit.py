"""The audit log writer: requests append rows to an in-memory queue; a background task writes
them in batches (every `api_audit_flush_ms` or `api_audit_batch_rows`), and on shutdown."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import anyio

from riskgraph.results import ResultsDB

log = logging.getLogger("riskgraph.api.audit")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class AuditWriter:
    """Batches audit rows; never drops one (a write failure keeps the rows for the next flush)."""

    def __init__(self, db: ResultsDB, *, flush_ms: int, batch_rows: int, max_pending: int) -> None:
        self.db = db
        self.flush_s = flush_ms / 1000
        self.batch_rows = batch_rows
        self.max_pending = max_pending
        self.rows: list[dict[str, Any]] = []
        self.written = 0
        self.failures = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    def record(self, *, actor: str, role: str, action: str, entity_type: str | None = None,
               entity_id: str | None = None, model_version: str | None = None, grade: str | None = None,
               detail: str | None = None) -> None:
        """Queue one row (no I/O here)."""
        self.rows.append({"at": utc_now(), "actor": actor, "role": role, "action": action,
                          "entity_type": entity_type, "entity_id": entity_id, "model_version": model_version,
                          "grade": grade, "detail": detail})
        if len(self.rows) >= self.batch_rows:
            self._wake.set()

    @property
    def overloaded(self) -> bool:
        return len(self.rows) >= self.max_pending

    async def flush(self) -> int:
        """Write every queued row now; returns how many were written."""
        async with self._lock:
            if not self.rows:
                return 0
            batch, self.rows = self.rows, []
            try:
                await anyio.to_thread.run_sync(self.db.append_audit, batch)
            except Exception:
                self.failures += 1
                self.rows[:0] = batch
                log.exception("audit write of %d rows failed; kept for the next flush", len(batch))
                raise
            self.written += len(batch)
            return len(batch)

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                await asyncio.sleep(self.flush_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="audit-writer")

    async def stop(self) -> None:
        """Stop the background task and write whatever is left."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()
