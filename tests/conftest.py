"""Shared fixtures."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riskgraph.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated in a temporary home, no progress bars."""
    return Settings(home=tmp_path / "home", store_url=f"memory://{tmp_path / 'store'}", progress=False)


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
        url = postgres_server.start(data, port=_free_port(), progress=lambda _line: None)
    except Exception as exc:
        pytest.fail(f"no PostgreSQL for the results-store tests ({exc}); start one with "
                    "`riskgraph postgres start`", pytrace=False)
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
