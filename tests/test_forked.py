"""The forked worker (riskgraph/forked.py): results, errors and deaths come back to the run."""

from __future__ import annotations

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
