"""The test process's own child processes (to check that a failed stage left no worker)."""

from __future__ import annotations

import os
from pathlib import Path


def child_pids() -> set[int]:
    me = str(os.getpid())
    kids = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:  # the process ended while we looked
            continue
        if fields.get("PPid", "").strip() == me:
            kids.add(int(status.parent.name))
    return kids
