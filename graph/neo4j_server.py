"""A local Neo4j Community server for development and tests (`riskgraph neo4j start|stop|status`).

The server is the tiny Java launcher in graph/neo4j_server/ (embedded DBMS + Bolt) over Maven
Central artifacts. `start` builds its classpath once with Maven (cached in graph/neo4j_server/lib
and target/, both gitignored), runs the JVM detached with its data, config and log under `home`,
records the pid in home/neo4j.pid and waits until Bolt answers. `stop` ends exactly that process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from riskgraph.errors import (
    JavaNotFound,
    Neo4jPortInUse,
    Neo4jStartFailed,
    Neo4jStartTimeout,
)
from riskgraph.ports import port_free

LAUNCHER_DIR = Path(__file__).resolve().parent / "neo4j_server"
LIB_DIR = LAUNCHER_DIR / "lib"
PLUGINS_DIR = LIB_DIR / "plugins"
CLASSES_DIR = LAUNCHER_DIR / "target" / "classes"
BUILD_STAMP = LIB_DIR / ".build-stamp"
MAIN_CLASS = "org.riskgraph.neo4j.Launcher"
READY_MARKER = b"RISKGRAPH_NEO4J_READY"  # printed by the launcher once the password is set
JVM_FLAGS = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    # Bulk loads allocate fast: with G1 and 2 GB, young collections took ~40% of a 100k-person
    # load on 2 cores; the throughput collector with 4 GB spent ~4 s (bench/bench_neo4j.py).
    "-XX:+UseParallelGC",
)
DEFAULT_PORT = 7687
DEFAULT_HEAP = "4g"
DEFAULT_PAGE_CACHE = "512m"  # DESIGN.md: the development server caps it at ~512m
MIN_PASSWORD_LENGTH = 8  # Neo4j's dbms.security.auth_minimum_password_length default
STOP_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 1.0
LOG_TAIL_LINES = 40

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    port: int
    bolt_url: str
    message: str


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _pid_file(home: Path) -> Path:
    return home / "neo4j.pid"


def _state_file(home: Path) -> Path:
    return home / "neo4j.json"


def _log_file(home: Path) -> Path:
    return home / "neo4j.log"


def bolt_url(port: int) -> str:
    return f"bolt://127.0.0.1:{port}"


# -- classpath ---------------------------------------------------------------------------------


def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted([LAUNCHER_DIR / "pom.xml", *LAUNCHER_DIR.glob("src/**/*.java")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build_classpath(progress: Progress = _say) -> str:
    """Fetch the jars and compile the launcher once (re-done only when the pom or source changes)."""
    digest = _sources_digest()
    if (
        BUILD_STAMP.exists()
        and BUILD_STAMP.read_text().strip() == digest
        and (CLASSES_DIR / "org/riskgraph/neo4j/Launcher.class").exists()
    ):
        return _classpath()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JavaNotFound(
            "Maven (`mvn`) is not on PATH; it is needed once to fetch the Neo4j jars "
            "from Maven Central (install maven, e.g. `apt-get install maven`)"
        )
    progress(
        f"neo4j: fetching the Neo4j classpath from Maven Central into {LIB_DIR} (first start only, a few minutes)..."
    )
    started = time.monotonic()
    shutil.rmtree(LIB_DIR, ignore_errors=True)
    proc = subprocess.run(
        [mvn, "-q", "-B", "compile"], cwd=LAUNCHER_DIR, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-LOG_TAIL_LINES:])
        raise Neo4jStartFailed(f"building the Neo4j classpath failed (mvn exit {proc.returncode}):\n{tail}")
    jars = len(list(LIB_DIR.glob("*.jar")))
    BUILD_STAMP.write_text(digest + "\n")
    progress(f"neo4j: classpath ready ({jars} jars, {time.monotonic() - started:.0f}s)")
    return _classpath()


def _classpath() -> str:
    return os.pathsep.join([str(CLASSES_DIR), str(LIB_DIR / "*")])


# -- process helpers ---------------------------------------------------------------------------


def _read_pid(home: Path) -> int | None:
    try:
        return int(_pid_file(home).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_our_server(pid: int) -> bool:
    """True when `pid` is alive and runs our launcher (guards against a recycled pid)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    return MAIN_CLASS.encode() in cmdline


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (so it does not linger as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _bolt_answers(port: int, password: str | None, *, login: bool = False) -> bool:
    """True when a Bolt server answers on `port`; with `login`, only when the credentials work."""
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError, DriverError, Neo4jError

    auth = ("neo4j", password) if password else None
    try:
        with GraphDatabase.driver(
            bolt_url(port), auth=auth, connection_timeout=2.0, max_connection_pool_size=1
        ) as driver:
            driver.verify_connectivity()
        return True
    except AuthError:
        return not login
    except (DriverError, Neo4jError, OSError):
        return False


def _log_tail(home: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = _log_file(home).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.strip().splitlines()[-lines:])


def _recorded(home: Path) -> dict:
    try:
        return json.loads(_state_file(home).read_text())
    except (FileNotFoundError, ValueError):
        return {}


# -- public API ----------------------------------------------------------------------------------


def status(home: Path, port: int = DEFAULT_PORT) -> ServerStatus:
    """Whether the server started from `home` runs and answers on Bolt."""
    home = Path(home)
    pid = _read_pid(home)
    state = _recorded(home)
    port = int(state.get("port", port)) if pid is not None else port
    url = bolt_url(port)
    if pid is None:
        return ServerStatus(False, None, port, url, f"not running (no pid file in {home})")
    if not _is_our_server(pid):
        return ServerStatus(False, None, port, url, f"not running (stale pid file {_pid_file(home)}, pid {pid})")
    if not _bolt_answers(port, None):
        return ServerStatus(False, pid, port, url, f"process {pid} is alive but Bolt does not answer on {url} yet")
    return ServerStatus(True, pid, port, url, f"running (pid {pid}) at {url}")


def start(
    home: Path,
    *,
    port: int = DEFAULT_PORT,
    password: str | None = None,
    timeout_s: float = 180,
    heap: str = DEFAULT_HEAP,
    page_cache: str = DEFAULT_PAGE_CACHE,
    progress: Progress = _say,
) -> ServerStatus:
    """Start the server in the background (or return the running one) and wait until Bolt answers."""
    home = Path(home).resolve()
    current = status(home, port)
    if current.running:
        return current
    if current.pid is not None:  # alive but not answering yet: a start in progress elsewhere
        return _wait_ready(home, current.pid, current.port, None, timeout_s, None, progress)
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise Neo4jStartFailed(f"the Neo4j password must have at least {MIN_PASSWORD_LENGTH} characters")
    java = shutil.which("java")
    if java is None:
        raise JavaNotFound(
            "Java is not on PATH; the local Neo4j server needs Java 17 (e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    if not port_free(port):
        raise Neo4jPortInUse(
            f"port {port} on 127.0.0.1 is already in use by another process; "
            f"stop it or start with another port (--port)"
        )
    classpath = build_classpath(progress)
    home.mkdir(parents=True, exist_ok=True)
    args = [
        java,
        f"-Xmx{heap}",
        *JVM_FLAGS,
        "-cp",
        classpath,
        MAIN_CLASS,
        "--home",
        str(home),
        "--port",
        str(port),
        "--pagecache",
        page_cache,
        "--plugins",
        str(PLUGINS_DIR),
    ]
    if password is not None:
        args += ["--password", password]
    progress(f"neo4j: starting the server on {bolt_url(port)} (data and log in {home})...")
    log_offset = _log_file(home).stat().st_size if _log_file(home).exists() else 0
    with open(_log_file(home), "ab") as log:
        proc = subprocess.Popen(
            args, cwd=home, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _pid_file(home).write_text(f"{proc.pid}\n")
    _state_file(home).write_text(json.dumps({"pid": proc.pid, "port": port, "auth": password is not None}))
    return _wait_ready(home, proc.pid, port, password, timeout_s, proc, progress, log_offset)


def _launcher_ready(home: Path, log_offset: int) -> bool:
    """The launcher printed its ready line in this start's part of the log."""
    try:
        with open(_log_file(home), "rb") as f:
            f.seek(log_offset)
            return READY_MARKER in f.read()
    except FileNotFoundError:
        return False


def _wait_ready(
    home: Path,
    pid: int,
    port: int,
    password: str | None,
    timeout_s: float,
    proc: subprocess.Popen | None,
    progress: Progress,
    log_offset: int | None = None,
) -> ServerStatus:
    """Wait for Bolt. For our own start, also for the launcher's ready line: Bolt opens before the
    password is set, and logging in too early would lock the user out for a while."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc is not None and proc.poll() is not None:
            _pid_file(home).unlink(missing_ok=True)
            raise Neo4jStartFailed(
                f"the Neo4j server exited during start (exit code {proc.returncode}); "
                f"last lines of {_log_file(home)}:\n{_log_tail(home)}"
            )
        if proc is None and not _is_our_server(pid):
            raise Neo4jStartFailed(
                f"the Neo4j server (pid {pid}) exited during start; last lines of {_log_file(home)}:\n{_log_tail(home)}"
            )
        ours_ready = log_offset is None or _launcher_ready(home, log_offset)
        if ours_ready and _bolt_answers(port, password, login=log_offset is not None):
            progress(f"neo4j: ready at {bolt_url(port)} after {time.monotonic() - started:.0f}s")
            return ServerStatus(True, pid, port, bolt_url(port), f"running (pid {pid}) at {bolt_url(port)}")
        time.sleep(POLL_INTERVAL_S)
    if proc is not None:  # ours: do not leave a half-started server behind
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _pid_file(home).unlink(missing_ok=True)
        _state_file(home).unlink(missing_ok=True)
    raise Neo4jStartTimeout(
        f"Neo4j did not answer on {bolt_url(port)} within {timeout_s:.0f}s; "
        f"last lines of {_log_file(home)}:\n{_log_tail(home)}"
    )


def stop(home: Path) -> bool:
    """Stop the server whose pid is in home/neo4j.pid; False when it was not running."""
    home = Path(home).resolve()
    pid = _read_pid(home)
    if pid is None:
        return False
    if not _is_our_server(pid):
        _pid_file(home).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)  # the launcher's shutdown hook closes the databases cleanly
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _is_our_server(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _is_our_server(pid):
        os.kill(pid, signal.SIGKILL)
        while _is_our_server(pid):
            time.sleep(0.1)
    _pid_file(home).unlink(missing_ok=True)
    _state_file(home).unlink(missing_ok=True)
    return True
