"""The Neo4j write lease as held by one run: (:RiskGraphLease {key: 'writer'}) with its holder, a
random token and an expiry in server time, LEASE_TTL_S ahead and renewed by the run's heartbeat.
Taking it is the store's job (`Neo4jGraphStore.lease`, graph/neo4j_store.py)."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import TYPE_CHECKING, Any

from graph.store import StoreLease
from riskgraph.errors import StoreBusy, StoreUnavailable

if TYPE_CHECKING:
    from graph.neo4j_store import Neo4jGraphStore

log = logging.getLogger(__name__)

LEASE_KEY = "writer"
LEASE_TTL_S = 180.0  # a run renews its lease every 30 s (its heartbeat)


def server_time(value: Any) -> str:
    """A server DateTime as UTC text, to the second."""
    return str(value.to_native().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


class Neo4jStoreLease(StoreLease):
    """The write lease as held by one run (a random token tells it from any other holder)."""

    def __init__(self, store: Neo4jGraphStore, holder: str, token: str) -> None:
        self.store = store
        self.holder = holder
        self._token = token

    def renew(self) -> None:
        """Push the expiry lease_ttl_s ahead; StoreBusy when the lease was lost (expired and taken
        over, or removed): this run must not write any more."""
        renewed = self.store._run(
            "MATCH (l:RiskGraphLease {key: $key}) WHERE l.token = $token "
            "SET l.expires_at = datetime() + duration({milliseconds: $ttl}) RETURN l.key AS key",
            key=LEASE_KEY,
            token=self._token,
            ttl=self.store._lease_ttl_ms,
        )
        if renewed:
            return
        now = self.store._run(
            "MATCH (l:RiskGraphLease {key: $key}) RETURN l.holder AS holder, l.acquired_at AS since", key=LEASE_KEY
        )
        by = f"; {now[0]['holder']} holds it since {server_time(now[0]['since'])}" if now else ""
        raise StoreBusy(
            f"{self.holder} lost the write lease of Neo4j at {self.store.url} "
            f"(it expired and was taken over, or was removed){by}"
        )

    def release(self) -> None:
        """Remove the lease if this run still holds it (an unreachable server lets it expire)."""
        try:
            self.store._write(
                "MATCH (l:RiskGraphLease {key: $key}) WHERE l.token = $token DELETE l", key=LEASE_KEY, token=self._token
            )
        except StoreUnavailable as exc:
            log.warning("could not release the write lease of %s (it expires by itself): %s", self.store.url, exc)
