"""Run one function in a forked child, to use the second core for an independent stage.

The child sees the parent's memory as it was at the fork (copy-on-write: nothing is pickled on
the way in) and sends back the pickled result, or the error, through a pipe. It dies with the
parent (PR_SET_PDEATHSIG), so a killed run leaves no worker writing behind it. Fork only before
the parent uses OpenMP (LightGBM) or after it no longer needs the child to: the children here run
numpy/pandas/scipy and matplotlib only.

The child never finalizes the parent's objects: its first step freezes every object it inherited
(`gc.freeze`), so a cycle the parent left uncollected is not collected, and its finalizers not run,
in the child. A finalizer of a client held by the parent (py4j's, which releases the JVM's object
over the parent's own gateway socket, when a Spark session is open) would otherwise talk over a
connection the parent is using at the same time. CPython itself clears the other threads' state in
the child at the fork, which runs py4j's per-thread finalizers there; the Spark session makes those
leave the parent's sockets alone (composer/engines/spark_session.py).
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from riskgraph.errors import RiskGraphError

T = TypeVar("T")
PR_SET_PDEATHSIG = 1


class ForkedStageFailed(RiskGraphError):
    """A stage run in a forked child failed or died; the run fails with it."""

    status_code = 500
    code = "stage_failed"


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child still ends when its work does
        pass


class Forked(Generic[T]):
    """`Forked(fn, *args)` starts `fn(*args)` in a child now; `.result()` waits for it."""

    def __init__(self, fn: Callable[..., T], *args: Any, name: str = "") -> None:
        self.name = name or getattr(fn, "__name__", "stage")
        parent_pid = os.getpid()
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            gc.freeze()
            os.close(read)
            code = 0
            try:
                _die_with_parent()
                if os.getppid() != parent_pid:  # the parent died before the line above
                    os._exit(1)
                payload = pickle.dumps(("ok", fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:
                payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
                code = 1
            try:
                with os.fdopen(write, "wb") as out:
                    out.write(payload)
            finally:
                os._exit(code)
        os.close(write)
        self.pid, self._read = pid, read
        self._done = False

    def result(self) -> T:
        """The child's return value; ForkedStageFailed if it raised or died."""
        if self._done:
            raise RuntimeError("result() already taken")
        with os.fdopen(self._read, "rb") as source:
            data = source.read()
        _, status = os.waitpid(self.pid, 0)
        self._done = True
        if not data:
            raise ForkedStageFailed(f"the {self.name} worker died ({_describe(status)})")
        outcome = pickle.loads(data)
        if outcome[0] == "ok":
            return outcome[1]  # type: ignore[no-any-return]
        raise ForkedStageFailed(f"the {self.name} worker failed: {outcome[1]}\n{outcome[2]}")

    def cancel(self) -> None:
        """Stop the child (the run failed elsewhere) and reap it."""
        if self._done:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(self._read)
        os.waitpid(self.pid, 0)
        self._done = True


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"


def timed(fn: Callable[..., T], name: str = "") -> Callable[..., tuple[T, float]]:
    """`fn` returning (its result, its wall seconds): what a worker ran beside the stages."""

    def run(*args: Any) -> tuple[T, float]:
        t0 = time.perf_counter()
        return fn(*args), round(time.perf_counter() - t0, 3)

    run.__name__ = name or getattr(fn, "__name__", "stage")
    return run
