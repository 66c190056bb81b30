"""`make test`'s port check (tests/ports.py): the default port when free, a free one when taken,
the port a server of ours already runs on."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests import ports


def test_a_taken_port_is_replaced_by_a_free_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert not ports.port_free(taken)
        chosen = ports.choose("neo4j", None, taken)
        assert chosen != taken and ports.port_free(chosen)
    assert ports.choose("neo4j", None, taken) == taken  # free again: the default is kept
    assert ports.choose("neo4j", 45678, taken) == 45678  # our server already runs there


def test_prints_the_ports_and_urls_for_the_tests(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.ports"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={"RISKGRAPH_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    ).stdout
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert set(env) == {
        "RISKGRAPH_TEST_NEO4J_PORT",
        "RISKGRAPH_TEST_NEO4J_URL",
        "RISKGRAPH_TEST_POSTGRES_PORT",
        "RISKGRAPH_TEST_POSTGRES_URL",
    }
    assert env["RISKGRAPH_TEST_NEO4J_URL"] == f"bolt://127.0.0.1:{env['RISKGRAPH_TEST_NEO4J_PORT']}"
    assert f"127.0.0.1:{env['RISKGRAPH_TEST_POSTGRES_PORT']}/" in env["RISKGRAPH_TEST_POSTGRES_URL"]
    assert env["RISKGRAPH_TEST_NEO4J_PORT"] != env["RISKGRAPH_TEST_POSTGRES_PORT"]
