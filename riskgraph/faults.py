"""Named fault points for the failure tests (CI runs as root, so chmod cannot stand in for a
read-only or full disk). `RISKGRAPH_FAULT=POINT:ACTION` (settings.fault) makes the process
kill itself (SIGKILL), or raise ENOSPC / EROFS, when it reaches POINT."""

from __future__ import annotations

import errno
import logging
import os
import signal

log = logging.getLogger("riskgraph.faults")

POINTS = (
    "after_ingest",
    "after_resolve",
    "after_scoring",
    "stage_outputs",
    "mid_results",
    "before_commit",
    "mid_commit",
    "mid_outputs",
    "audit_write",
)
ACTIONS = ("kill", "enospc", "erofs")


def check(spec: str) -> None:
    """Validate a fault spec (empty: no fault)."""
    if not spec:
        return
    point, _, action = spec.partition(":")
    if point not in POINTS or (action or "kill") not in ACTIONS:
        raise ValueError(
            f"RISKGRAPH_FAULT={spec!r}: use POINT[:ACTION], POINT one of {', '.join(POINTS)}, "
            f"ACTION one of {', '.join(ACTIONS)}"
        )


def reach(spec: str, point: str) -> None:
    """Called at each named point; fires the configured fault when it is this one."""
    if not spec:
        return
    name, _, action = spec.partition(":")
    if name != point:
        return
    action = action or "kill"
    log.warning("fault point %s: %s", point, action)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    code = errno.ENOSPC if action == "enospc" else errno.EROFS
    raise OSError(code, os.strerror(code) + f" (fault point {point})")
