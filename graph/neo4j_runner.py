"""The seam between the Neo4j store and the server: every Cypher statement goes through a
`CypherRunner`. `BoltCypherRunner` (the default) sends them over the official Bolt driver; a test
passes a collecting fake instead, to check the Cypher and parameters a store method produces
without a server (as the Neo4j GDS Python client's query runner does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from neo4j import Driver, GraphDatabase
from neo4j.exceptions import AuthError, ConfigurationError, DriverError, Neo4jError, TransientError

from riskgraph.errors import StoreUnavailable

CONNECTION_TIMEOUT_S = 5.0
RETRY_TIME_S = 5.0  # managed transactions retry transient failures this long, then give up


class CypherRunner(Protocol):
    """Runs Cypher for a Neo4jGraphStore. Unreachable servers raise StoreUnavailable; the server's
    own rejections (Neo4jError: constraint violations, syntax) pass through unchanged. Called from
    several threads at once during an ingest."""

    def run(self, cypher: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run one statement in a managed (retried) transaction; its records as dicts."""
        ...

    def write(self, cypher: str, params: Mapping[str, Any]) -> None:
        """Like `run`, for a statement whose records are not needed."""
        ...

    def autocommit(self, cypher: str, params: Mapping[str, Any]) -> None:
        """Run one statement in an auto-commit transaction (`CALL { ... } IN TRANSACTIONS` needs one)."""
        ...

    def verify(self) -> None:
        """Raise StoreUnavailable, with the reason, when the server cannot be used."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


def unavailable(url: str, exc: Exception) -> StoreUnavailable:
    """The StoreUnavailable telling why the server at `url` could not be used."""
    if isinstance(exc, AuthError):
        return StoreUnavailable(f"Neo4j at {url} refused the credentials (wrong user or password): {exc.message}")
    if isinstance(exc, TransientError):
        return StoreUnavailable(f"Neo4j at {url} is unavailable ({exc.message or exc}); is it shutting down?")
    return StoreUnavailable(
        f"Neo4j at {url} is not reachable ({exc}); is the server running? For a local one: `riskgraph neo4j start`"
    )


class BoltCypherRunner:
    """The CypherRunner over the Neo4j Python driver (one driver, its connection pool shared by threads)."""

    def __init__(
        self, url: str, *, user: str | None = None, password: str | None = None, database: str | None = None
    ) -> None:
        self.url = url
        self.database = database or None
        auth = (user or "neo4j", password) if password else None
        try:
            self._driver: Driver = GraphDatabase.driver(
                url,
                auth=auth,
                connection_timeout=CONNECTION_TIMEOUT_S,
                notifications_min_severity="OFF",
                max_transaction_retry_time=RETRY_TIME_S,
            )
        except (ConfigurationError, ValueError) as exc:
            raise StoreUnavailable(f"cannot use Neo4j URL {url!r}: {exc}") from exc

    def run(self, cypher: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            records, _, _ = self._driver.execute_query(cypher, dict(params), database_=self.database)
        except (AuthError, TransientError, OSError, DriverError) as exc:
            raise unavailable(self.url, exc) from exc
        return [r.data() for r in records]

    def write(self, cypher: str, params: Mapping[str, Any]) -> None:
        try:
            self._driver.execute_query(cypher, dict(params), database_=self.database)
        except (AuthError, TransientError, OSError, DriverError) as exc:
            raise unavailable(self.url, exc) from exc

    def autocommit(self, cypher: str, params: Mapping[str, Any]) -> None:
        try:
            with self._driver.session(database=self.database) as session:
                session.run(cypher, dict(params)).consume()
        except (AuthError, TransientError, OSError, DriverError) as exc:
            raise unavailable(self.url, exc) from exc

    def verify(self) -> None:
        try:
            self._driver.verify_connectivity()
        except (Neo4jError, DriverError, OSError) as exc:
            raise unavailable(self.url, exc) from exc

    def close(self) -> None:
        self._driver.close()
