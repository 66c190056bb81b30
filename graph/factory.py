"""Choose a graph store backend from its URL."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from graph.store import GraphStore
from riskgraph.errors import InvalidStoreUrl
from riskgraph.field_crypto import FieldCipher
from riskgraph.server_keys import Tokens
from riskgraph.settings import Settings


def _memory(url: str, settings: Settings) -> GraphStore:
    from graph.memory_store import MemoryGraphStore

    path = url.split("://", 1)[1]
    if not path:
        raise InvalidStoreUrl(f"{url}: memory:// needs a folder, e.g. memory://.riskgraph/store")
    return MemoryGraphStore(path, field_cipher(settings))


def field_cipher(settings: Settings) -> FieldCipher:
    """The cipher of personal values at rest, keyed from the installation's secret."""
    return FieldCipher.of(settings.home, settings.secret_key_file, settings.field_encryption)


def masking_tokens(settings: Settings) -> Tokens:
    """The keyed tokens of personal identifiers (the "masking" key): identifier nodes in the
    Neo4j store, ring pseudonyms and the API's masked values all use these."""
    return Tokens.of(settings.home, settings.secret_key_file)


def _neo4j(url: str, settings: Settings) -> GraphStore:
    from graph.neo4j_store import Neo4jGraphStore  # the driver is imported only for this backend

    parsed = urlparse(url)
    user = parsed.username or settings.neo4j_user
    password = parsed.password or settings.neo4j_password or None
    netloc = parsed.hostname or "127.0.0.1"
    if parsed.port:
        netloc += f":{parsed.port}"
    database = parsed.path.lstrip("/") or settings.neo4j_database or None
    return Neo4jGraphStore(
        f"{parsed.scheme}://{netloc}",
        user=user,
        password=password,
        database=database,
        cipher=field_cipher(settings),  # personal properties encrypted, identifier nodes keyed by tokens
        tokens=masking_tokens(settings),
    )


STORE_FACTORIES: dict[str, Callable[[str, Settings], GraphStore]] = {
    "memory": _memory,
    "neo4j": _neo4j,
    "neo4j+s": _neo4j,
    "bolt": _neo4j,
    "bolt+s": _neo4j,
}


def open_store(url: str, settings: Settings) -> GraphStore:
    """The store named by `url`: memory://PATH, neo4j://host:port or bolt://host:port."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    factory = STORE_FACTORIES.get(scheme)
    if factory is None:
        raise InvalidStoreUrl(
            f"unsupported store URL {url!r}; use memory://PATH, neo4j://host:port or bolt://host:port"
        )
    return factory(url, settings)
