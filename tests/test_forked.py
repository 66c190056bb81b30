"""The forked worker (riskgraph/forked.py): results, errors and deaths come back to the run."""

from __future__ import annotations

import gc
import os
import signal

import pytest

from riskgraph.forked import Forked, ForkedStageFailed

BIG = list(range(200_000))  # more than a pipe buffer once pickled


def _double(xs: list[int]) -> list[int]:
    return [2 * x for x in xs]


def _fail() -> None:
    raise ValueError("bad input in the worker")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_result_comes_back_whole() -> None:
    assert Forked(_double, BIG).result() == _double(BIG)


def test_worker_errors_fail_the_stage_with_their_message() -> None:
    with pytest.raises(ForkedStageFailed, match="ValueError: bad input in the worker"):
        Forked(_fail, name="rules").result()


def test_a_killed_worker_fails_the_stage() -> None:
    with pytest.raises(ForkedStageFailed, match="died .*signal 9"):
        Forked(_die).result()


def test_cancel_reaps_the_worker() -> None:
    worker = Forked(_double, BIG)
    worker.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(worker.pid, os.WNOHANG)


class _Cycle:
    """Garbage in a reference cycle whose finalizer reports where it ran (as py4j's proxies do)."""

    def __init__(self, log: int) -> None:
        self.me, self.log = self, log

    def __del__(self) -> None:
        os.write(self.log, f"{os.getpid()}\n".encode())


def test_the_child_never_finalizes_what_it_inherited() -> None:
    read, write = os.pipe()
    gc.disable()  # the cycle stays uncollected in the parent until the fork
    try:
        _Cycle(write)
        child = Forked(gc.collect, name="collector")
        child.result()
    finally:
        gc.enable()
    gc.collect()  # the parent collects its own garbage as before
    os.close(write)
    with os.fdopen(read) as ran:
        assert ran.read().split() == [str(os.getpid())]
