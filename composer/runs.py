"""The run lifecycle: one writer per home, everything staged, then one commit.

A run holds three locks for its whole life: a file lock on the home (released by the kernel
when the process dies, SIGKILL included), the graph store's lease (a lease node for Neo4j) and,
for a PostgreSQL results database, an advisory lock. It stages its store snapshot, model
versions, result tables and output files where nothing reads them, and `Run.commit` makes all
of it the served state: one results-database transaction moves the `served` pointer and the
champions; the store pointer and the output files follow, and `recover` finishes that part if the
process dies in between. The results database is the one source of truth of what is served.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from graph.store import GraphStore, StoreLease
from riskgraph import faults
from riskgraph.errors import NoSnapshot, PreflightFailed, RiskGraphError, RunLocked, RunNotFound, StoreBusy
from riskgraph.results import ResultsDB, now_iso
from riskgraph.results_schema import audit_table, jobs_table, models_table, run_log_table, served_table
from riskgraph.settings import Settings

log = logging.getLogger("composer.runs")
SCORES_PARQUET = "scores.parquet"  # in runs/<run>/features: the run's scores table, as the API loads it
HOLDER = f"{socket.gethostname()} pid {os.getpid()}"
_PG_LOCK_KEY = 0x52697347  # "RisG": the advisory lock every run on one results database takes


def new_run_id() -> str:
    """Time-ordered (to the millisecond), then random: `20261130T081500123-a1b2c3`."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}"[:-3] + f"-{secrets.token_hex(3)}"


def _precise_now() -> str:
    """Run times to the microsecond: runs committed within one second still order."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def runs_dir(settings: Settings) -> Path:
    return settings.home / "runs"


def run_dir(settings: Settings, run_id: str) -> Path:
    """Where a run keeps its files (feature matrices, a copy of its outputs) while retained."""
    return runs_dir(settings) / run_id


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


# -- preflight ------------------------------------------------------------------------------------


def preflight(folders: dict[str, Path], min_free_bytes: int) -> None:
    """Each folder exists or can be created, takes a written and fsync'd file, and has room."""
    for what, folder in folders.items():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".riskgraph-probe-{os.getpid()}"
            with open(probe, "wb") as f:
                f.write(b"probe")
                f.flush()
                os.fsync(f.fileno())
            probe.unlink()
            free = shutil.disk_usage(folder).free
        except OSError as exc:
            raise PreflightFailed(f"cannot write to the {what} folder {folder}: {exc.strerror or exc}") from exc
        if free < min_free_bytes:
            raise PreflightFailed(
                f"the {what} folder {folder} has {free / 1e6:.0f} MB free, "
                f"below the {min_free_bytes / 1e6:.0f} MB a run needs (settings.min_free_bytes)"
            )


# -- locks ------------------------------------------------------------------------------------------


class HomeLock:
    """An exclusive flock on HOME/run.lock holding a line that names the holder."""

    def __init__(self, home: Path) -> None:
        self.path = home / "run.lock"
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "an unknown process"
        try:
            h = json.loads(text)
            return f"run {h['run_id']} ({h['kind']}, {h['holder']}, since {h['since']})"
        except (ValueError, KeyError):
            return "an unknown process"

    def acquire(self, *, run_id: str, kind: str, wait: bool) -> None:
        import fcntl

        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                raise RunLocked(
                    f"{self.path.parent} is busy: held by {self.holder()}; retry later or pass --wait"
                ) from None
            log.warning("waiting for %s to finish", self.holder())
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"run_id": run_id, "kind": kind, "holder": HOLDER, "since": now_iso()}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


class _PgLock:
    """A session advisory lock on a PostgreSQL results database (released if the process dies)."""

    def __init__(self, db: ResultsDB) -> None:
        self.db = db
        self.conn: sa.Connection | None = None

    def acquire(self, *, wait: bool) -> None:
        conn = self.db.engine.connect()
        fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        got = conn.execute(sa.text(f"SELECT {fn}(:k)"), {"k": _PG_LOCK_KEY}).scalar()
        conn.commit()
        if fn == "pg_try_advisory_lock" and not got:
            conn.close()
            holders = [r for r in self.db.runs("running")]
            who = (
                f"run {holders[0]['run_id']} ({holders[0]['kind']}, {holders[0]['holder']})"
                if holders
                else "another process"
            )
            raise RunLocked(f"the results database is busy: held by {who}; retry later or pass --wait")
        self.conn = conn

    def release(self) -> None:
        if self.conn is not None:
            try:
                self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                self.conn.commit()
            finally:
                self.conn.close()
                self.conn = None


class Writer:
    """All three locks of one writer: home, results database, graph store."""

    def __init__(self, settings: Settings, db: ResultsDB, store: GraphStore) -> None:
        self.settings, self.db, self.store = settings, db, store
        self.home = HomeLock(settings.home)
        self.pg = None if db.is_sqlite else _PgLock(db)
        self.lease: StoreLease | None = None

    def acquire(self, *, run_id: str, kind: str, wait: bool) -> None:
        self.home.acquire(run_id=run_id, kind=kind, wait=wait)
        try:
            if self.pg is not None:
                self.pg.acquire(wait=wait)
            while True:
                try:
                    self.lease = self.store.lease(f"run {run_id} ({kind}, {HOLDER})")
                    break
                except StoreBusy as exc:
                    if not wait:
                        raise RunLocked(f"the graph store is busy: {exc}; retry later or pass --wait") from None
                    time.sleep(5)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for release in (
            self.lease.release if self.lease else None,
            self.pg.release if self.pg else None,
            self.home.release,
        ):
            if release is None:
                continue
            try:
                release()
            except Exception as exc:  # a lock the server already dropped: nothing left to free
                log.warning("releasing a lock failed: %s", exc)
        self.lease = None


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run holding the writer's locks; use as a context manager."""

    settings: Settings
    db: ResultsDB
    store: GraphStore
    kind: str
    serves: bool = True  # False: the run commits model versions only (retraining)
    wait: bool = False
    run_id: str = field(default_factory=new_run_id)
    snapshot_id: str | None = None
    out_dir: Path | None = None
    _writer: Writer | None = None
    _beat: threading.Event = field(default_factory=threading.Event)
    _beat_thread: threading.Thread | None = None
    committed: bool = False

    @property
    def folder(self) -> Path:
        return run_dir(self.settings, self.run_id)

    @property
    def out_staging(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / f".riskgraph-staging-{self.run_id}"

    def fault(self, point: str) -> None:
        faults.reach(self.settings.fault, point)

    def __enter__(self) -> Run:
        self._writer = Writer(self.settings, self.db, self.store)
        self._writer.acquire(run_id=self.run_id, kind=self.kind, wait=self.wait)
        try:
            recover(self.settings, self.db, self.store)
            private_dir(self.folder)
            now = _precise_now()
            self.db.retry(lambda: self._insert(now))
            self._beat_thread = threading.Thread(target=self._heartbeat, name=f"heartbeat-{self.run_id}", daemon=True)
            self._beat_thread.start()
        except BaseException:
            self._writer.release()
            raise
        log.info("run %s (%s) started", self.run_id, self.kind)
        return self

    def _insert(self, now: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                run_log_table.insert().values(
                    run_id=self.run_id,
                    kind=self.kind,
                    status="running",
                    holder=HOLDER,
                    started_at=now,
                    heartbeat_at=now,
                    serves=self.serves,
                    outputs_pending=False,
                    discarded=False,
                    out_dir=str(self.out_dir) if self.out_dir else None,
                    store=self.store.describe(),
                )
            )

    def _heartbeat(self) -> None:
        while not self._beat.wait(self.settings.run_heartbeat_s):
            try:
                self.db.retry(lambda: _set(self.db, self.run_id, heartbeat_at=now_iso()))
                if self._writer is not None and self._writer.lease is not None:
                    self._writer.lease.renew()
            except Exception as exc:  # the run itself notices a dead database soon enough
                log.warning("run %s heartbeat failed: %s", self.run_id, exc)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._beat.set()
        try:
            if exc is not None and not self.committed:
                message = f"{type(exc).__name__}: {exc}"[:2000]
                log.error("run %s failed, nothing of it is served: %s", self.run_id, message)
                try:
                    self.db.retry(
                        lambda: _set(self.db, self.run_id, status="failed", finished_at=now_iso(), message=message)
                    )
                    discard(self.settings, self.db, self.store, self.run_id, self.out_staging)
                except Exception as cleanup_exc:  # the next run's recovery removes what is left
                    log.warning("run %s: cleanup deferred to the next run (%s)", self.run_id, cleanup_exc)
        finally:
            assert self._writer is not None
            self._writer.release()

    def commit(
        self, *, manifest: dict[str, Any], champions: dict[str, str], promote: dict[str, str], tables: list[str]
    ) -> None:
        """Make the run the served one: one results-database transaction, then the store pointer
        and the output files (finished by `recover` if the process dies in between)."""
        self.fault("before_commit")
        pending = self.out_staging is not None and self.out_staging.exists()
        committed_at = _precise_now()

        def transaction() -> None:
            with self.db.transaction() as conn:
                conn.execute(
                    run_log_table.update()
                    .where(run_log_table.c.run_id == self.run_id)
                    .values(
                        status="committed",
                        committed_at=committed_at,
                        finished_at=committed_at,
                        snapshot_id=self.snapshot_id,
                        out_dir=str(self.out_dir) if self.out_dir else None,
                        outputs_pending=pending,
                        tables=json.dumps(tables),
                        champions=json.dumps(champions),
                        manifest=json.dumps(manifest, default=str, ensure_ascii=False),
                        heartbeat_at=committed_at,
                    )
                )
                conn.execute(models_table.update().where(models_table.c.run_id == self.run_id).values(staged=False))
                _set_champions(conn, promote)
                if self.serves:
                    _point_served(conn, self.run_id)

        self.db.retry(transaction)
        self.committed = True
        log.info("run %s committed", self.run_id)
        self.fault("mid_commit")
        finish_commit(self.settings, self.db, self.store, self.db.run(self.run_id) or {})
        apply_retention(self.settings, self.db, self.store)


def _set(db: ResultsDB, run_id: str, **values: Any) -> None:
    with db.transaction() as conn:
        conn.execute(run_log_table.update().where(run_log_table.c.run_id == run_id).values(**values))


def _set_champions(conn: sa.Connection, champions: dict[str, str]) -> None:
    for entity_type, version in champions.items():
        conn.execute(models_table.update().where(models_table.c.entity_type == entity_type).values(champion=False))
        conn.execute(models_table.update().where(models_table.c.version == version).values(champion=True))


def _point_served(conn: sa.Connection, run_id: str) -> None:
    row = conn.execute(sa.select(served_table.c.seq).where(served_table.c.key == "served")).first()
    if row is None:
        conn.execute(served_table.insert().values(key="served", run_id=run_id, seq=1, changed_at=now_iso()))
    else:
        conn.execute(
            served_table.update()
            .where(served_table.c.key == "served")
            .values(run_id=run_id, seq=row.seq + 1, changed_at=now_iso())
        )


# -- after the commit, recovery, retention -----------------------------------------------------------


def finish_commit(settings: Settings, db: ResultsDB, store: GraphStore, run: dict[str, Any]) -> None:
    """The parts of a commit outside the results database, idempotent: the store pointer and the
    output files of the served run."""
    served = db.served_run_id()
    if run.get("run_id") == served and run.get("snapshot_id"):
        current = store.snapshot()
        if current is None or current.id != run["snapshot_id"]:
            store.commit(run["snapshot_id"])
    if run.get("outputs_pending"):
        out = Path(run["out_dir"])
        staging = out / f".riskgraph-staging-{run['run_id']}"
        if staging.exists():
            keep = private_dir(run_dir(settings, run["run_id"]) / "out")
            for f in sorted(staging.iterdir()):
                kept = keep / f.name
                if not kept.exists():
                    try:
                        os.link(f, kept)
                    except OSError:
                        shutil.copy2(f, kept)
            names = sorted(p.name for p in staging.iterdir())
            for i, name in enumerate(names):
                if i == len(names) // 2:
                    faults.reach(settings.fault, "mid_outputs")
                os.replace(staging / name, out / name)
            shutil.rmtree(staging, ignore_errors=True)
        db.retry(lambda: _set(db, run["run_id"], outputs_pending=False))


def discard(settings: Settings, db: ResultsDB, store: GraphStore, run_id: str, out_staging: Path | None) -> None:
    """Remove everything an uncommitted run staged: result tables, model versions, files, snapshot."""
    db.drop_run_tables(run_id)

    def drop_models() -> None:
        with db.transaction() as conn:
            conn.execute(models_table.delete().where((models_table.c.run_id == run_id) & models_table.c.staged))

    db.retry(drop_models)
    shutil.rmtree(run_dir(settings, run_id), ignore_errors=True)
    if out_staging is not None:
        shutil.rmtree(out_staging, ignore_errors=True)
    store.retain(_kept_snapshots(db))
    db.retry(partial(_set, db, run_id, discarded=True))


def _kept_snapshots(db: ResultsDB) -> set[str]:
    return {r["snapshot_id"] for r in db.runs("committed") if r["snapshot_id"]}


def recover(settings: Settings, db: ResultsDB, store: GraphStore) -> list[str]:
    """Called holding the writer's locks: runs left 'running' died (their process held the
    lock we now hold), so their staged parts go; a commit cut short is finished. Returns notes."""
    notes = []
    for r in db.runs("running"):
        db.retry(
            partial(
                _set,
                db,
                r["run_id"],
                status="failed",
                finished_at=now_iso(),
                message="interrupted: its process stopped before the commit",
            )
        )
        notes.append(f"run {r['run_id']} was interrupted before its commit; nothing of it was served")

    def close_job_rows() -> None:
        """Job rows of jobs whose process died (older than the stale limit: not the one starting now)."""
        with db.transaction() as conn:
            conn.execute(
                jobs_table.update()
                .where((jobs_table.c.status == "running") & (jobs_table.c.started_at < stale_before(settings)))
                .values(status="failed", finished_at=now_iso(), message="interrupted: its process stopped")
            )

    db.retry(close_job_rows)
    for r in db.runs("failed"):
        if r["discarded"]:
            continue  # cleaned up once already
        staging = Path(r["out_dir"]) / f".riskgraph-staging-{r['run_id']}" if r.get("out_dir") else None
        discard(settings, db, store, r["run_id"], staging)
    for r in db.runs("committed"):
        if r["outputs_pending"] or r["run_id"] == db.served_run_id():
            finish_commit(settings, db, store, r)
    known = {r["run_id"] for r in db.runs("committed")}
    if runs_dir(settings).exists():
        for folder in runs_dir(settings).iterdir():
            if folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
    for note in notes:
        log.warning(note)
    return notes


def apply_retention(settings: Settings, db: ResultsDB, store: GraphStore) -> list[str]:
    """Keep the newest `retention_runs` committed serving runs (and the served one) whole."""
    served = db.served_run_id()
    committed = sorted(
        (r for r in db.runs("committed") if r["serves"]),
        key=lambda r: (r["committed_at"] or "", r["run_id"]),
        reverse=True,
    )
    expired = [r for r in committed[settings.retention_runs :] if r["run_id"] != served]
    for r in expired:
        db.drop_run_tables(r["run_id"])
        db.retry(partial(_set, db, r["run_id"], status="expired"))
        shutil.rmtree(run_dir(settings, r["run_id"]), ignore_errors=True)
    store.retain(_kept_snapshots(db))
    return [r["run_id"] for r in expired]


def rollback(
    settings: Settings,
    db: ResultsDB,
    store: GraphStore,
    run_id: str,
    *,
    actor: str = "cli",
    wait: bool = False,
    out: Path | None = None,
) -> dict[str, Any]:
    """Serve a retained earlier run again (its results, snapshot, champions and output files,
    restored into `out` or the run's own output folder), as one commit."""
    writer = Writer(settings, db, store)
    writer.acquire(run_id=f"rollback-{run_id}", kind="rollback", wait=wait)
    try:
        recover(settings, db, store)
        run = db.run(run_id)
        if run is None or not run["serves"]:
            raise RunNotFound(f"no serving run {run_id!r}; `riskgraph runs list` shows the committed ones")
        if run["status"] != "committed":
            raise RunNotFound(
                f"run {run_id} is {run['status']}, not retained; only committed runs kept by "
                f"retention_runs={settings.retention_runs} can be served again"
            )
        if run["snapshot_id"] and store.snapshot(run["snapshot_id"]) is None:
            raise RunNotFound(f"run {run_id}'s store snapshot {run['snapshot_id']} is gone from the store")
        champions = json.loads(run["champions"] or "{}")

        def transaction() -> None:
            with db.transaction() as conn:
                _set_champions(conn, champions)
                _point_served(conn, run_id)
                conn.execute(
                    audit_table.insert().values(
                        at=now_iso(),
                        actor=actor,
                        role="admin",
                        action="rollback",
                        run_id=run_id,
                        detail=json.dumps({"champions": champions}),
                    )
                )

        db.retry(transaction)
        if run["snapshot_id"]:
            store.commit(run["snapshot_id"])
        _restore_outputs(settings, run, out)
        return run
    finally:
        writer.release()


def _restore_outputs(settings: Settings, run: dict[str, Any], out: Path | None) -> None:
    kept = run_dir(settings, run["run_id"]) / "out"
    out = out or (Path(run["out_dir"]) if run.get("out_dir") else None)
    if out is None or not kept.exists():
        return
    staging = out / f".riskgraph-restore-{run['run_id']}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for f in kept.iterdir():
        shutil.copy2(f, staging / f.name)
    for f in sorted(staging.iterdir()):
        os.replace(f, out / f.name)
    shutil.rmtree(staging, ignore_errors=True)


def stale_before(settings: Settings) -> str:
    return (datetime.now(UTC) - timedelta(seconds=settings.run_stale_after_s)).isoformat(timespec="seconds")


def live_runs(db: ResultsDB, settings: Settings, kind: str | None = None) -> list[dict[str, Any]]:
    """Runs marked running whose heartbeat is fresh (a run without one for 3 minutes is dead)."""
    since = stale_before(settings)
    return [r for r in db.runs("running") if r["heartbeat_at"] >= since and (kind is None or r["kind"] == kind)]


def try_recover(settings: Settings, db: ResultsDB, store: GraphStore) -> None:
    """Recovery when no run is going (the server's start): skipped while a run holds the locks."""
    writer = Writer(settings, db, store)
    try:
        writer.acquire(run_id="recovery", kind="recovery", wait=False)
    except RiskGraphError:
        return
    try:
        recover(settings, db, store)
    except (RiskGraphError, OSError, NoSnapshot) as exc:
        log.warning("recovery incomplete: %s", exc)
    finally:
        writer.release()
