"""`riskgraph neo4j start|stop|status` for real: a second server with a password on a free port.

The module starts its own server (about a minute on a busy machine), used for the wrong-password,
mid-load failure and stop tests; the shared test server (the `neo4j_url` fixture of
tests/conftest.py) is only used for the port-taken check.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from graph import neo4j_server
from graph.dataset import dataset_from_frames
from graph.neo4j_store import Neo4jGraphStore
from riskgraph.errors import Neo4jPortInUse, StoreUnavailable
from riskgraph.ports import free_port
from tests.factories import small_frames

pytestmark = pytest.mark.neo4j
PASSWORD = "riskgraph-test-pw"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Path, neo4j_server.ServerStatus]]:
    # Not tmp_path_factory: a concurrent pytest run may rotate its base folder away while this
    # server still writes there.
    home = Path(tempfile.mkdtemp(prefix="riskgraph-neo4j-test-"))
    try:
        status = neo4j_server.start(home, port=free_port(), password=PASSWORD, timeout_s=300)
        yield home, status
    finally:
        neo4j_server.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def test_start_reports_running_and_is_not_started_twice(server) -> None:
    home, status = server
    assert status.running and status.pid and (home / "neo4j.pid").read_text().strip() == str(status.pid)
    again = neo4j_server.start(home, port=status.port, password=PASSWORD)
    assert again.pid == status.pid
    assert neo4j_server.status(home).running


def test_wrong_password_is_a_clear_error(server) -> None:
    _, status = server
    store = Neo4jGraphStore(status.bolt_url, user="neo4j", password="not-the-password")
    try:
        assert not store.ping()
        with pytest.raises(StoreUnavailable, match="refused the credentials"):
            store.snapshot()
    finally:
        store.close()
    time.sleep(6)  # Neo4j locks the user for 5 s after repeated failures
    good = Neo4jGraphStore(status.bolt_url, user="neo4j", password=PASSWORD)
    try:
        good.check()  # raises with the reason if the right password is refused
    finally:
        good.close()


def test_port_taken_is_a_clear_error(tmp_path: Path, neo4j_url: str) -> None:
    port = urlparse(neo4j_url).port or 7687
    with pytest.raises(Neo4jPortInUse, match=f"port {port}.*already in use"):
        neo4j_server.start(tmp_path / "other", port=port, timeout_s=10)


def test_server_dying_mid_load_keeps_previous_snapshot_then_stop(server) -> None:
    home, status = server
    store = Neo4jGraphStore(status.bolt_url, password=PASSWORD, batch_size=1)
    small = dataset_from_frames(small_frames())
    try:
        store.load(small)
        big_frames = small_frames()
        n = 3000
        big_frames["benefits"] = big_frames["benefits"].sample(n, replace=True, random_state=1)
        errors: list[BaseException] = []

        def load_big() -> None:
            try:
                store.load(dataset_from_frames(big_frames))
            except BaseException as exc:  # handed to the test thread
                errors.append(exc)

        worker = threading.Thread(target=load_big)
        worker.start()
        time.sleep(3)  # one row per transaction: still loading
        assert neo4j_server.stop(home)
        worker.join(120)
        assert errors and isinstance(errors[0], StoreUnavailable), errors
        assert "previous snapshot stays current" in str(errors[0])
        assert not (home / "neo4j.pid").exists()
        assert neo4j_server.status(home, port=status.port).running is False

        restarted = neo4j_server.start(home, port=status.port, password=PASSWORD, timeout_s=300)
        assert restarted.pid != status.pid
    finally:
        store.close()
    store = Neo4jGraphStore(status.bolt_url, password=PASSWORD)
    try:
        assert store.snapshot().content_hash == small.content_hash
        store.load(small)  # the next load removes the partial snapshot left by the crash
        snaps = store._run("MATCH (s:RiskGraphSnapshot) RETURN count(s) AS n")[0]["n"]
        assert snaps == 1
    finally:
        store.close()


def test_stop_without_server(tmp_path: Path) -> None:
    assert neo4j_server.stop(tmp_path) is False
    st = neo4j_server.status(tmp_path, port=free_port())
    assert not st.running and "not running" in st.message
