"""Shared fixtures."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from riskgraph.ports import free_port
from riskgraph.settings import Settings
from tests import work_units

if TYPE_CHECKING:
    from graph.memory_store import MemoryGraphStore
    from graph.neo4j_store import Neo4jGraphStore
    from graph.store import GraphStore


# -- two workers (make test: pytest -n 2 --dist loadgroup; tests/work_units.py) -------------------
UNITS_FILE = pytest.StashKey[Path]()


def _units_file(config: pytest.Config) -> Path:
    """The file the workers write their work units to (the controller's, made on first use)."""
    if UNITS_FILE not in config.stash:
        config.stash[UNITS_FILE] = Path(tempfile.mkdtemp(prefix="riskgraph-units-")) / "units.json"
    return config.stash[UNITS_FILE]


def pytest_unconfigure(config: pytest.Config) -> None:
    if UNITS_FILE in config.stash:
        shutil.rmtree(config.stash[UNITS_FILE].parent, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[work_units.KEY] = str(_units_file(node.config))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    return work_units.scheduler(config, log, _units_file(config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = getattr(config, "workerinput", {}).get(work_units.KEY)
    if path:
        work_units.write(Path(path), work_units.units(items))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated in a temporary home, no progress bars."""
    return Settings(home=tmp_path / "home", store_url=f"memory://{tmp_path / 'store'}", progress=False)


# -- graph stores ---------------------------------------------------------------------------------
# One creator per backend (memory_store, neo4j_store), each yielding a fresh, empty store; `store`
# runs a test on every backend in turn. Neo4j is the real server started outside the tests
# (`riskgraph neo4j start`, as CI does), at NEO4J_URL (auth disabled).

NEO4J_URL = os.environ.get("RISKGRAPH_TEST_NEO4J_URL", "bolt://127.0.0.1:7687")


@pytest.fixture(scope="session")
def neo4j_url() -> str:
    """The test server's Bolt URL; fails (never skips) when no server answers there."""
    from neo4j import GraphDatabase
    from neo4j.exceptions import DriverError, Neo4jError

    try:
        with GraphDatabase.driver(NEO4J_URL, auth=None, connection_timeout=5.0) as driver:
            driver.verify_connectivity()
    except (DriverError, Neo4jError, OSError) as exc:
        pytest.fail(
            f"no Neo4j server answers at {NEO4J_URL} ({exc}); start one with `riskgraph neo4j start` "
            "or point RISKGRAPH_TEST_NEO4J_URL at one (auth disabled)",
            pytrace=False,
        )
    return NEO4J_URL


@pytest.fixture
def memory_store(tmp_path: Path) -> Iterator[MemoryGraphStore]:
    """A fresh, empty memory store in a folder of its own."""
    from graph.memory_store import MemoryGraphStore

    store = MemoryGraphStore(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture
def neo4j_store(neo4j_url: str) -> Iterator[Neo4jGraphStore]:
    """A fresh, empty store on the test server. Community edition has a single user database,
    shared by the tests: each one empties it (a writer lease left by an earlier test stays)."""
    from graph.neo4j_store import Neo4jGraphStore

    store = Neo4jGraphStore(neo4j_url)
    store.clear()
    yield store
    store.close()


KEY = b"k" * 32  # the keyed stores' field-encryption and masking keys (tests only)


@pytest.fixture
def keyed_memory_store(tmp_path: Path) -> Iterator[MemoryGraphStore]:
    """A fresh memory store that encrypts personal columns at rest, as `open_store` opens it."""
    from graph.memory_store import MemoryGraphStore
    from riskgraph.field_crypto import FieldCipher

    store = MemoryGraphStore(tmp_path / "store", FieldCipher(KEY))
    yield store
    store.close()


@pytest.fixture
def keyed_neo4j_store(neo4j_url: str) -> Iterator[Neo4jGraphStore]:
    """A fresh Neo4j store that encrypts personal properties and keys identifier nodes by tokens,
    as `open_store` opens it (the same shared database as `neo4j_store`)."""
    from graph.neo4j_store import Neo4jGraphStore
    from riskgraph.field_crypto import FieldCipher
    from riskgraph.server_keys import Tokens

    store = Neo4jGraphStore(neo4j_url, cipher=FieldCipher(KEY), tokens=Tokens(KEY))
    store.clear()
    yield store
    store.close()


@pytest.fixture
def no_lease(neo4j_store: Neo4jGraphStore) -> None:
    """No writer lease on the test server (an earlier failed test may have left one)."""
    neo4j_store.ensure_schema()
    neo4j_store._write("MATCH (l:RiskGraphLease) DELETE l")


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("neo4j", id="neo4j", marks=pytest.mark.neo4j),
        pytest.param("keyed_memory", id="memory-keyed"),
        pytest.param("keyed_neo4j", id="neo4j-keyed", marks=pytest.mark.neo4j),
    ]
)
def store(request: pytest.FixtureRequest) -> GraphStore:
    """A fresh, empty store of each backend in turn, plain and keyed (personal data encrypted at
    rest, identifier nodes keyed by tokens): the same test must pass on every one."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def reopen() -> Iterator[Callable[..., GraphStore]]:
    """`reopen(store, **options)`: another store on the same data as `store`, as another process
    would open it (nothing cached; Neo4j `options` such as lease_ttl_s). Closed after the test."""
    opened: list[GraphStore] = []

    def open_again(store: GraphStore, **options: float) -> GraphStore:
        from graph.memory_store import MemoryGraphStore

        if isinstance(store, MemoryGraphStore):
            opened.append(MemoryGraphStore(store.path, store.cipher))
        else:
            from graph.neo4j_store import Neo4jGraphStore  # the driver only when Neo4j is tested

            if not isinstance(store, Neo4jGraphStore):
                raise TypeError(f"cannot reopen a {type(store).__name__}")
            opened.append(Neo4jGraphStore(store.url, cipher=store.cipher, tokens=store.tokens, **options))
        return opened[-1]

    yield open_again
    for s in opened:
        s.close()


# -- PostgreSQL -------------------------------------------------------------------------------------

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5433/riskgraph"


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL: the one `riskgraph postgres start` runs (as `make test` and CI do), else
    one started here for the session. Fails, never skips, when neither works."""
    import os
    import tempfile

    import sqlalchemy as sa

    from riskgraph import postgres_server

    url = os.environ.get("RISKGRAPH_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        sa.create_engine(url).connect().close()
        yield url
        return
    except Exception:
        pass
    data = Path(tempfile.mkdtemp(prefix="riskgraph-pg-", dir="/tmp")) / "data"
    os.chmod(data.parent, 0o711)  # the postgres OS user (when we are root) must reach it
    try:
        url = postgres_server.start(data, port=free_port(), progress=lambda _line: None)
    except Exception as exc:
        pytest.fail(
            f"no PostgreSQL for the results-store tests ({exc}); start one with `riskgraph postgres start`",
            pytrace=False,
        )
    yield url
    postgres_server.stop(data)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"rg_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield postgres_server_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()
