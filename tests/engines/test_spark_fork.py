"""A forked worker (riskgraph/forked.py) beside a Spark session: the child must not shut down the
py4j connections the parent's threads hold (composer/engines/spark_session.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from composer.engines.spark import SparkEngine
from riskgraph.forked import Forked

pytestmark = pytest.mark.spark


def test_a_forked_child_leaves_the_parents_gateway_connections_alone(spark_engine: SparkEngine) -> None:
    session = spark_engine.session
    client = session.sparkContext._gateway._gateway_client

    def on_both_threads(lanes: ThreadPoolExecutor) -> list[Any]:
        both = threading.Barrier(2)  # one call on each of the two threads

        def call(_: int) -> Any:
            both.wait(timeout=30)
            assert session.range(3).count() == 3
            return client.get_thread_connection()

        return list(lanes.map(call, range(2)))

    with ThreadPoolExecutor(2) as lanes:  # as the Spark reader's lanes hold connections
        before = on_both_threads(lanes)
        # CPython clears the other threads' locals in a forked child, and py4j's finalizers there
        # close those threads' connections: here the child closes them outright
        Forked(_close_all, before).result()
        after = on_both_threads(lanes)
    assert len({id(c) for c in before}) == 2
    assert {id(c) for c in after} == {id(c) for c in before}  # neither thread had to reconnect
    assert all(c.socket is not None for c in after)


def _close_all(connections: list[Any]) -> None:
    for connection in connections:
        connection.close()
