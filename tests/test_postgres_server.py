"""`riskgraph postgres start|stop|status` for real: servers on free ports in folders of their own.

Needs the PostgreSQL server programs (Debian's postgresql package); skipped with the install hint
when they are missing. As root the server runs as the `postgres` OS user, which cannot enter
pytest's tmp_path (/tmp/pytest-of-root is 0700): the servers' folders are made with mkdtemp under
/tmp and opened for traversal (0711); the module hands the data folder itself to `postgres`.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.postgres import postgres
from riskgraph import postgres_server
from riskgraph.errors import RiskGraphError
from riskgraph.ports import free_port
from riskgraph.postgres_server import (
    PostgresDataDirError,
    PostgresNotFound,
    PostgresPortInUse,
    PostgresStartFailed,
    PostgresUserMissing,
    database_url,
)

IS_ROOT = os.geteuid() == 0


def _quiet(_line: str) -> None:
    pass


@pytest.fixture
def binaries() -> Path:
    try:
        return postgres_server.find_bin_dir()
    except PostgresNotFound as exc:
        pytest.fail(str(exc))


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A fresh folder the `postgres` user can traverse (when we are root); any server in it is
    stopped and the folder removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="riskgraph-pg-test-", dir="/tmp" if IS_ROOT else None))
    os.chmod(base, 0o711)
    try:
        yield base
    finally:
        for child in base.iterdir():
            try:
                postgres_server.stop(child)
            except RiskGraphError:
                pass
        shutil.rmtree(base, ignore_errors=True)


def _start(data_dir: Path) -> tuple[str, int]:
    """Start on a free port; try another one when something took it in between."""
    for attempt in range(3):
        port = free_port()
        try:
            return postgres_server.start(data_dir, port=port, progress=_quiet), port
        except PostgresPortInUse:
            continue
        except PostgresStartFailed as exc:
            if "could not bind" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("no free port found in 3 attempts")


def test_start_connect_status_stop_restart(binaries: Path, base_dir: Path) -> None:
    data_dir = base_dir / "data"
    assert postgres_server.status(data_dir) is None

    url, port = _start(data_dir)
    assert url == database_url(port) == f"postgresql+psycopg://postgres@127.0.0.1:{port}/riskgraph"
    st = postgres_server.status(data_dir)
    assert st is not None
    assert st["port"] == port and st["url"] == url and st["accepting"] and st["state"] == "ready"
    assert st["pid"] > 0 and st["data_dir"] == str(data_dir)
    if IS_ROOT:
        info = data_dir.stat()
        assert info.st_uid == postgres_server.pwd.getpwnam("postgres").pw_uid
        assert stat.S_IMODE(info.st_mode) == 0o700

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == "riskgraph"
            assert conn.execute(sa.text("SHOW listen_addresses")).scalar_one() == "127.0.0.1"
            assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "on"
            conn.execute(sa.text("CREATE TABLE kept (v int)"))
            conn.execute(sa.text("INSERT INTO kept VALUES (42)"))
    finally:
        engine.dispose()

    # Idempotent: the running server is returned, not a second one started.
    assert postgres_server.start(data_dir, port=port, progress=_quiet) == url
    assert postgres_server.status(data_dir)["pid"] == st["pid"]

    assert postgres_server.stop(data_dir) is True
    assert postgres_server.status(data_dir) is None
    assert not (data_dir / "postmaster.pid").exists()
    assert postgres_server.stop(data_dir) is False

    # A second start reuses the cluster (no initdb) and finds the data again.
    url2, port2 = _start(data_dir)
    engine = sa.create_engine(url2)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT v FROM kept")).scalar_one() == 42
    finally:
        engine.dispose()
    assert postgres_server.stop(data_dir) is True


def test_cli_start_status_stop(binaries: Path, base_dir: Path) -> None:
    data_dir = str(base_dir / "cli")
    runner = CliRunner()
    port = free_port()

    started = runner.invoke(postgres, ["start", "--data-dir", data_dir, "--port", str(port)])
    assert started.exit_code == 0, started.output
    url = database_url(port)
    assert started.stdout.strip() == (f"postgres running at {url}; to use it: export RISKGRAPH_RESULTS_URL={url}")

    running = runner.invoke(postgres, ["status", "--data-dir", data_dir])
    assert running.exit_code == 0, running.output
    assert running.stdout.startswith("postgres running (pid ") and url in running.stdout

    stopped = runner.invoke(postgres, ["stop", "--data-dir", data_dir])
    assert stopped.exit_code == 0 and stopped.stdout.strip() == "postgres stopped"
    again = runner.invoke(postgres, ["stop", "--data-dir", data_dir])
    assert again.exit_code == 0 and again.stdout.strip() == "postgres was not running"
    gone = runner.invoke(postgres, ["status", "--data-dir", data_dir])
    assert gone.exit_code == 1 and gone.stdout.startswith("postgres not running")


def test_port_in_use_is_a_one_line_error(binaries: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PostgresPortInUse, match=f"port {port} .*already in use"):
            postgres_server.start(tmp_path / "pg", port=port, progress=_quiet)
        result = CliRunner().invoke(postgres, ["start", "--data-dir", str(tmp_path / "pg"), "--port", str(port)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: port {port} on 127.0.0.1 is already in use")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "pg").exists()


def test_folder_that_is_not_a_cluster_is_refused(binaries: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "busy"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("not a cluster")
    with pytest.raises(PostgresDataDirError, match="not empty and holds no PostgreSQL cluster"):
        postgres_server.start(data_dir, port=free_port(), progress=_quiet)


def test_a_private_parent_folder(binaries: Path) -> None:
    """Under a 0700 folder: as root the server (run as the postgres user) cannot reach it, and the
    refusal says how to mend it; as anyone else the server runs as that user and starts."""
    private = Path(tempfile.mkdtemp(prefix="riskgraph-pg-private-", dir="/tmp"))  # 0700
    try:
        if IS_ROOT:
            with pytest.raises(PostgresDataDirError, match=f"{private} \\(mode 700\\).*chmod o\\+x"):
                postgres_server.start(private / "data", port=free_port(), progress=_quiet)
        else:
            postgres_server.start(private / "data", port=free_port(), progress=_quiet)
            assert postgres_server.stop(private / "data")
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_root_keeps_the_default_cluster_outside_the_private_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres_server.os, "geteuid", lambda: 0)
    as_root = postgres_server.default_data_dir(tmp_path / "home")
    assert as_root.parent == Path("/var/lib/postgresql") and as_root.name.startswith("riskgraph-")
    assert postgres_server.default_data_dir(tmp_path / "other") != as_root
    monkeypatch.setattr(postgres_server.os, "geteuid", lambda: 1000)
    assert postgres_server.default_data_dir(tmp_path / "home") == tmp_path / "home" / "postgres"


def test_root_without_postgres_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_server.os, "geteuid", lambda: 0)
    monkeypatch.setattr(postgres_server, "OS_USER", "riskgraph-no-such-user")
    with pytest.raises(PostgresUserMissing, match="no 'riskgraph-no-such-user' OS user"):
        postgres_server._run_as()


def test_missing_binaries_say_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres_server, "DEBIAN_ROOT", tmp_path / "no-postgresql")
    with pytest.raises(PostgresNotFound, match=r"apt-get install -y postgresql"):
        postgres_server.start(tmp_path / "pg", port=free_port(), progress=_quiet)
    # Nothing running: status and stop need no binaries.
    assert postgres_server.status(tmp_path / "pg") is None
    assert postgres_server.stop(tmp_path / "pg") is False
