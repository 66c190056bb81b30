"""A local PostgreSQL server for development and tests (`riskgraph postgres start|stop|status`).

It runs the PostgreSQL binaries already on the machine (Debian's `postgresql` package:
/usr/lib/postgresql/<major>/bin) on a data folder of our own. `start` creates the cluster on
first use (initdb, superuser `postgres`, trust authentication), starts the server with pg_ctl
listening on 127.0.0.1 only (its Unix socket in the data folder, or /tmp when that path is too
long), waits until it accepts connections, creates the database `riskgraph` and returns its
SQLAlchemy URL, e.g. for RISKGRAPH_RESULTS_URL. `stop` is a fast shutdown through pg_ctl.

PostgreSQL refuses to run as root. As root, every initdb / pg_ctl call therefore runs as the
`postgres` OS user (`runuser -u postgres -- ...`), the data folder is handed to that user
(mode 0700) and every folder above it must be traversable by it; otherwise everything runs as
the current user.

The server's own pid file (DATA_DIR/postmaster.pid) says whether it runs and on which port;
its log is DATA_DIR/postgres.log. Trust authentication: any local user can connect as the
superuser, so this is for development and tests only.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from riskgraph.errors import RiskGraphError
from riskgraph.ports import port_free

DEFAULT_PORT = 5433  # not 5432: leave the port of a system PostgreSQL alone
HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASE = "riskgraph"
OS_USER = "postgres"  # who runs the server when we are root
DEBIAN_ROOT = Path("/usr/lib/postgresql")  # Debian/Ubuntu: /usr/lib/postgresql/<major>/bin
TOOLS = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = "install Debian's postgresql package (apt-get install -y postgresql)"
LOG_NAME = "postgres.log"
SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.2
START_ATTEMPTS = 3
LEFTOVER_MESSAGES = ('lock file "postmaster.pid" already exists', "pre-existing shared memory block")

Progress = Callable[[str], None]


# -- errors ----------------------------------------------------------------------------------------


class PostgresServerError(RiskGraphError):
    """The local development PostgreSQL server (`riskgraph postgres start`) could not be run."""

    status_code = 503
    code = "postgres_server_error"


class PostgresNotFound(PostgresServerError):
    """No PostgreSQL server binaries (initdb, pg_ctl, postgres) on this machine."""

    code = "postgres_not_found"


class PostgresUserMissing(PostgresServerError):
    """Running as root, but there is no `postgres` OS user (or no runuser) to run the server as."""

    code = "postgres_user_missing"


class PostgresDataDirError(PostgresServerError):
    """The data folder cannot hold a cluster: not empty, wrong owner, unreachable, other version."""

    code = "postgres_data_dir_error"


class PostgresPortInUse(PostgresServerError):
    """Another process already listens on the requested port of 127.0.0.1."""

    code = "postgres_port_in_use"


class PostgresStartFailed(PostgresServerError):
    """initdb failed, or the server exited during start."""

    code = "postgres_start_failed"


class PostgresStartTimeout(PostgresServerError):
    """The server did not accept connections within the start timeout."""

    code = "postgres_start_timeout"


class PostgresStopFailed(PostgresServerError):
    """pg_ctl could not stop the server."""

    code = "postgres_stop_failed"


# -- small helpers ---------------------------------------------------------------------------------


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def database_url(port: int = DEFAULT_PORT) -> str:
    """The SQLAlchemy URL of the `riskgraph` database of a server on `port`."""
    return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{port}/{DATABASE}"


def _log_file(data_dir: Path) -> Path:
    return data_dir / LOG_NAME


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "postmaster.pid"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - it is in requirements.txt
        raise PostgresServerError(
            "the PostgreSQL driver is not installed: pip install 'psycopg[binary]==3.3.9'"
        ) from exc
    return psycopg


def _connect(port: int, dbname: str, timeout_s: float = 2.0) -> Any:
    return _psycopg().connect(
        host=HOST, port=port, user=SUPERUSER, dbname=dbname, connect_timeout=max(1, int(timeout_s)), autocommit=True
    )


def _accepting(port: int) -> bool:
    """True when the server on `port` accepts a connection (to the always-present `postgres` db)."""
    psycopg = _psycopg()
    try:
        with _connect(port, "postgres") as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _ensure_database(port: int) -> None:
    psycopg = _psycopg()
    from psycopg import sql

    try:
        with _connect(port, "postgres", timeout_s=10) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                return
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
            except psycopg.errors.DuplicateDatabase:
                pass  # a concurrent start created it
    except psycopg.Error as exc:
        raise PostgresStartFailed(
            f"could not create the database '{DATABASE}' on {HOST}:{port}: {one_line(str(exc))}"
        ) from exc


def one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


# -- binaries and the OS user ----------------------------------------------------------------------


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bin_dir() -> Path:
    """The folder holding initdb, pg_ctl and postgres: the one the pg_ctl / initdb on PATH come
    from (Debian links /usr/local/bin/pg_ctl), else the newest /usr/lib/postgresql/<major>/bin."""
    candidates: list[Path] = []
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            candidates.append(Path(found).resolve().parent)
    candidates += sorted((d for d in DEBIAN_ROOT.glob("*/bin") if d.is_dir()), key=_version_key, reverse=True)
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in TOOLS):
            return folder
    raise PostgresNotFound(
        f"the PostgreSQL server programs ({', '.join(TOOLS)}) were not found in "
        f"{DEBIAN_ROOT}/*/bin nor on PATH; {INSTALL_HINT}"
    )


def _major_version(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    if out.returncode != 0 or match is None:
        raise PostgresNotFound(
            f"{bin_dir / 'postgres'} --version failed "
            f"({one_line(out.stdout + out.stderr) or f'exit {out.returncode}'}); {INSTALL_HINT}"
        )
    return match.group(1)


def _run_as() -> pwd.struct_passwd | None:
    """The OS user to run the server as when we are root (PostgreSQL refuses root); else None."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresUserMissing(
            f"running as root, but PostgreSQL refuses to run as root and there is no '{OS_USER}' OS "
            f"user to run it as; {INSTALL_HINT} (it creates that user), or run as a non-root user"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresUserMissing(
            "running as root, but `runuser` (util-linux) is not on PATH to run "
            f"PostgreSQL as the '{OS_USER}' user; apt-get install -y util-linux"
        )
    return user


def _child_env() -> dict[str, str]:
    """Our environment without libpq's PG* variables (they would redirect pg_ctl), messages in English."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _run(
    args: Sequence[str],
    user: pwd.struct_passwd | None,
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = list(args) if user is None else ["runuser", "-u", user.pw_name, "--", *args]
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=_child_env(), cwd="/", timeout=timeout_s
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresServerError(f"`{' '.join(args[:2])}` did not finish within {timeout_s:.0f}s") from exc


# -- the data folder -------------------------------------------------------------------------------


def _initialised(data_dir: Path) -> bool:
    return (data_dir / "PG_VERSION").is_file()


def _untraversable_ancestor(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first folder above `path` that `user` may not enter (by its mode bits), if any."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for folder in reversed(path.parents):
        st = folder.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return folder
    return None


def _prepare_data_dir(data_dir: Path, user: pwd.struct_passwd | None) -> None:
    """Create the folder (0700), hand it to `user` when we are root, and check it can hold a cluster."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise PostgresDataDirError(f"cannot create the data folder {data_dir}: {exc.strerror}") from exc
    if not data_dir.is_dir():
        raise PostgresDataDirError(f"the data folder {data_dir} is not a folder")
    initialised = _initialised(data_dir)
    if not initialised and any(data_dir.iterdir()):
        raise PostgresDataDirError(
            f"the data folder {data_dir} is not empty and holds no PostgreSQL "
            "cluster (no PG_VERSION); empty it or choose another --data-dir"
        )
    if user is None:
        return
    st = data_dir.stat()
    if st.st_uid != user.pw_uid:
        if initialised:
            raise PostgresDataDirError(
                f"the cluster in {data_dir} belongs to uid {st.st_uid}, not to the '{user.pw_name}' user "
                f"PostgreSQL runs as under root; `chown -R {user.pw_name}: {data_dir}` or choose another --data-dir"
            )
        os.chown(data_dir, user.pw_uid, user.pw_gid)
    if not initialised:
        os.chmod(data_dir, 0o700)
    probe = _run(["test", "-x", str(data_dir), "-a", "-w", str(data_dir)], user)
    if probe.returncode != 0:
        blocker = _untraversable_ancestor(data_dir, user)
        why = (
            f"{blocker} (mode {stat.S_IMODE(blocker.stat().st_mode):o}) does not let it through; `chmod o+x {blocker}`"
            if blocker is not None
            else "permission denied"
        )
        raise PostgresDataDirError(
            f"the '{user.pw_name}' OS user PostgreSQL runs as under root cannot reach "
            f"the data folder {data_dir}: {why}, or choose a --data-dir it can reach"
        )


def _check_version(data_dir: Path, major: str) -> None:
    made_by = (data_dir / "PG_VERSION").read_text().strip()
    if made_by != major:
        raise PostgresDataDirError(
            f"the cluster in {data_dir} was made by PostgreSQL {made_by}, but the "
            f"installed server is PostgreSQL {major}; use another --data-dir "
            f"(or pg_upgrade it)"
        )


def _socket_dir(data_dir: Path, port: int) -> str:
    """The data folder when the socket path fits sun_path and needs no quoting in the setting, else /tmp."""
    path = str(data_dir)
    if len(os.fsencode(path)) + len(f"/.s.PGSQL.{port}") <= SOCKET_PATH_MAX and not re.search(r'[\s,"\'\\]', path):
        return path
    return "/tmp"


def _initdb(bin_dir: Path, data_dir: Path, user: pwd.struct_passwd | None) -> None:
    proc = _run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ],
        user,
        timeout_s=300,
    )
    if proc.returncode != 0:
        raise PostgresStartFailed(
            f"initdb failed in {data_dir} (exit {proc.returncode}): {_last_problem(proc.stdout + proc.stderr)}"
        )


# -- the server's pid file and log ------------------------------------------------------------------


def _read_pid_file(data_dir: Path) -> list[str] | None:
    try:
        return _pid_file(data_dir).read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise PostgresDataDirError(
            f"cannot read {_pid_file(data_dir)}: the data folder belongs to another user (as root the "
            f"server runs as '{OS_USER}'); use the same user as at its creation or another --data-dir"
        ) from None


def _is_postmaster(pid: int) -> bool:
    """True when `pid` is alive and is a PostgreSQL server (guards against a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return True  # no /proc: trust the pid file
    return os.path.basename(argv0).startswith((b"postgres", b"postmaster"))


def _is_zombie(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rpartition(")")[2].split()[:1] == ["Z"]


def _wait_for_dead_postmaster(data_dir: Path, deadline: float) -> None:
    """A killed server stays a zombie until its parent (often init) reaps it, and PostgreSQL takes
    a zombie for a live server holding the lock file: wait (a little) until it is gone."""
    lines = _read_pid_file(data_dir)
    try:
        pid = int(lines[0]) if lines else None
    except ValueError:
        return
    while pid is not None and _is_zombie(pid) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)


def _log_size(data_dir: Path) -> int:
    try:
        return _log_file(data_dir).stat().st_size
    except OSError:
        return 0


def _log_since(data_dir: Path, offset: int) -> str:
    try:
        with open(_log_file(data_dir), "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _last_problem(text: str) -> str:
    """The last FATAL / PANIC / ERROR line of some PostgreSQL output, else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        match = re.search(r"\b(FATAL|PANIC|ERROR):|initdb: error|pg_ctl: ", line)
        if match and "Examine the log" not in line:
            return " ".join(line[match.start() :].split())  # without the log line prefix
    return lines[-1] if lines else "(no output)"


# -- public API ------------------------------------------------------------------------------------


def status(data_dir: Path) -> dict[str, Any] | None:
    """The server running on `data_dir`, or None.

    Keys: pid, port, url, data_dir, socket_dir, state (ready / starting / stopping / standby, from
    postmaster.pid) and accepting (a connection to 127.0.0.1:port works right now).
    """
    data_dir = Path(data_dir).expanduser().absolute()
    lines = _read_pid_file(data_dir)
    if not lines:
        return None
    try:
        pid = int(lines[0])
    except ValueError:
        return None
    if not _is_postmaster(pid):
        return None  # a stale pid file: the next start cleans it up
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    info = {
        "pid": pid,
        "port": port,
        "url": database_url(port) if port else None,
        "data_dir": str(data_dir),
        "socket_dir": lines[4].strip() if len(lines) > 4 else None,
        "state": lines[7].strip() if len(lines) > 7 and lines[7].strip() else "starting",
    }
    info["accepting"] = port is not None and _accepting(port)
    return info


def start(
    data_dir: Path, port: int = DEFAULT_PORT, *, timeout_s: float = START_TIMEOUT_S, progress: Progress = _say
) -> str:
    """Start the server on `data_dir` (creating the cluster on first use) and return the SQLAlchemy
    URL of its `riskgraph` database. Already running on `data_dir`: return its URL (with the port
    it runs on, which may differ from `port`)."""
    data_dir = Path(data_dir).expanduser().absolute()
    current = status(data_dir)
    deadline = time.monotonic() + timeout_s
    while current is not None and not current["port"] and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)  # another start is writing postmaster.pid right now
        current = status(data_dir)
    if current is not None and current["port"]:
        if current["port"] != port:
            progress(f"postgres: already running on {data_dir} with port {current['port']} (not {port})")
        if not current["accepting"]:
            _wait_accepting(data_dir, current["port"], timeout_s, 0)
        _ensure_database(current["port"])
        return database_url(current["port"])

    bin_dir = find_bin_dir()
    user = _run_as()
    if not port_free(port):
        raise PostgresPortInUse(
            f"port {port} on {HOST} is already in use by another process; stop it or start with another port (--port)"
        )
    _prepare_data_dir(data_dir, user)
    major = _major_version(bin_dir)
    if _initialised(data_dir):
        _check_version(data_dir, major)
    else:
        progress(f"postgres: creating a PostgreSQL {major} cluster in {data_dir} (first start only)...")
        _initdb(bin_dir, data_dir, user)

    started = time.monotonic()
    _wait_for_dead_postmaster(data_dir, deadline=started + min(timeout_s, 10.0))
    options = [
        "-c",
        f"listen_addresses={HOST}",
        "-c",
        f"port={port}",
        "-c",
        f"unix_socket_directories={_socket_dir(data_dir, port)}",
        "-c",
        "fsync=on",
    ]
    progress(f"postgres: starting on {HOST}:{port} (data and {LOG_NAME} in {data_dir})...")
    for attempt in range(1, START_ATTEMPTS + 1):
        log_offset = _log_size(data_dir)
        # pg_ctl hands -o to /bin/sh, hence the quoting; it waits (-w) until the server is ready.
        left = max(1, int(timeout_s - (time.monotonic() - started)))
        proc = _run(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(data_dir),
                "-l",
                str(_log_file(data_dir)),
                "-w",
                "-t",
                str(left),
                "-s",
                "-o",
                shlex.join(options),
            ],
            user,
            timeout_s=left + 30,
        )
        if proc.returncode == 0:
            break
        if status(data_dir) is not None:  # pg_ctl gave up waiting: do not leave a half-started server
            _stop(bin_dir, data_dir, user, "immediate")
            raise PostgresStartTimeout(
                f"PostgreSQL did not become ready on {HOST}:{port} within {timeout_s:.0f}s; see {_log_file(data_dir)}"
            )
        log = _log_since(data_dir, log_offset)
        # A crashed server's processes may linger a moment (zombies not reaped yet, children still
        # attached to its shared memory): PostgreSQL then refuses to start; try again shortly.
        transient = any(m in log for m in LEFTOVER_MESSAGES)
        if not transient or attempt == START_ATTEMPTS or time.monotonic() - started > timeout_s:
            raise PostgresStartFailed(
                f"PostgreSQL did not start on {HOST}:{port}: "
                f"{_last_problem(log or proc.stdout + proc.stderr)} "
                f"(log: {_log_file(data_dir)})"
            )
        time.sleep(1.0)
    _wait_accepting(data_dir, port, max(5.0, timeout_s - (time.monotonic() - started)), log_offset)
    _ensure_database(port)
    progress(f"postgres: ready at {database_url(port)} after {time.monotonic() - started:.1f}s")
    return database_url(port)


def _wait_accepting(data_dir: Path, port: int, timeout_s: float, log_offset: int) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _accepting(port):
            return
        if status(data_dir) is None:
            raise PostgresStartFailed(
                f"PostgreSQL exited during start: "
                f"{_last_problem(_log_since(data_dir, log_offset))} "
                f"(log: {_log_file(data_dir)})"
            )
        time.sleep(POLL_INTERVAL_S)
    raise PostgresStartTimeout(
        f"PostgreSQL on {data_dir} did not accept connections on {HOST}:{port} "
        f"within {timeout_s:.0f}s; see {_log_file(data_dir)}"
    )


def _stop(
    bin_dir: Path, data_dir: Path, user: pwd.struct_passwd | None, mode: str, timeout_s: float = STOP_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return _run(
        [
            str(bin_dir / "pg_ctl"),
            "stop",
            "-D",
            str(data_dir),
            "-m",
            mode,
            "-w",
            "-t",
            str(max(1, int(timeout_s))),
            "-s",
        ],
        user,
        timeout_s=timeout_s + 30,
    )


def stop(data_dir: Path, *, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the server running on `data_dir` (fast shutdown: sessions are ended, data is kept);
    False when none was running."""
    data_dir = Path(data_dir).expanduser().absolute()
    if status(data_dir) is None:
        return False
    bin_dir = find_bin_dir()
    user = _run_as()
    proc = _stop(bin_dir, data_dir, user, "fast", timeout_s)
    if proc.returncode != 0 and status(data_dir) is not None:
        proc = _stop(bin_dir, data_dir, user, "immediate", timeout_s)
        if proc.returncode != 0 and status(data_dir) is not None:
            raise PostgresStopFailed(
                f"pg_ctl could not stop the server on {data_dir}: {_last_problem(proc.stdout + proc.stderr)}"
            )
    return True


def default_data_dir(home: Path) -> Path:
    """`HOME/postgres`; as root, a folder under the postgres user's own /var/lib/postgresql (one
    per home), because the home is private (0700) and the server runs as that user."""
    if os.geteuid() == 0 and Path("/var/lib/postgresql").is_dir():
        digest = hashlib.sha256(str(Path(home).absolute()).encode()).hexdigest()[:10]
        return Path("/var/lib/postgresql") / f"riskgraph-{digest}"
    return Path(home) / "postgres"
