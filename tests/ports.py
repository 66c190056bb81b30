"""The ports `make test` starts its servers on, checked before the slow set-up.

Prints shell assignments (for `set -a; . FILE`): the Bolt port of the local Neo4j and the port of
the local PostgreSQL, and the URLs the tests read (RISKGRAPH_TEST_NEO4J_URL,
RISKGRAPH_TEST_POSTGRES_URL; see tests/conftest.py). Each server keeps the port it already runs on
(from an earlier `make test` or `riskgraph neo4j|postgres start` with this RISKGRAPH_HOME); else the
default port (7687, 5433) when it is free; else a free port, said on stderr. The page tests and the
other servers the tests start pick free ports themselves.

Usage: python -m tests.ports > FILE
"""

from __future__ import annotations

import sys

from riskgraph.ports import free_port, port_free


def choose(name: str, running: int | None, default: int) -> int:
    """The port for server `name`: the one it runs on, else `default` if free, else a free one."""
    if running:
        print(f"tests/ports.py: {name} already runs on port {running}; the tests use it", file=sys.stderr)
        return running
    if port_free(default):
        return default
    port = free_port()
    print(f"tests/ports.py: port {default} ({name}) is taken by another program; using {port}", file=sys.stderr)
    return port


def main() -> None:
    from graph import neo4j_server
    from riskgraph import postgres_server
    from riskgraph.settings import Settings

    home = Settings().home  # the same home `riskgraph neo4j|postgres start` use
    neo4j_status = neo4j_server.status(home / "neo4j")
    neo4j = choose("neo4j", neo4j_status.port if neo4j_status.pid is not None else None, neo4j_server.DEFAULT_PORT)
    pg_status = postgres_server.status(postgres_server.default_data_dir(home))
    postgres = choose("postgres", pg_status["port"] if pg_status else None, postgres_server.DEFAULT_PORT)
    if neo4j == postgres:  # only when both defaults were taken and the kernel handed out the same free port
        postgres = free_port()
    print(f"RISKGRAPH_TEST_NEO4J_PORT={neo4j}")
    print(f"RISKGRAPH_TEST_NEO4J_URL={neo4j_server.bolt_url(neo4j)}")
    print(f"RISKGRAPH_TEST_POSTGRES_PORT={postgres}")
    print(f"RISKGRAPH_TEST_POSTGRES_URL={postgres_server.database_url(postgres)}")


if __name__ == "__main__":
    main()
