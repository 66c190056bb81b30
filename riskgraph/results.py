"""The results database (SQLite in WAL mode by default, PostgreSQL for servers, any SQLAlchemy
URL): each run's result tables, the run log and the served-run pointer, the model registry, the
audit log and job history.

A run writes its result tables under its own names (`rs_<run>_<table>`), invisible to readers.
Its commit is ONE transaction that moves the `served` pointer (and the champions, see
`commit_run`), so a reader sees one whole run or the previous one, never a mix."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from riskgraph import audit_chain
from riskgraph.results_schema import (
    audit_table,
    corrections_table,
    jobs_table,
    list_entries_table,
    metadata,
    person_decisions_table,
    policies_table,
    run_log_table,
    served_table,
)

if TYPE_CHECKING:
    from riskgraph.settings import Settings

log = logging.getLogger("riskgraph.results")
T = TypeVar("T")
# Result tables every serving run writes (empty ones included).
RESULT_TABLES = ("scores", "rule_hits", "rings", "ring_members", "ring_edges")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_table(run_id: str, name: str) -> str:
    """The database table holding result table `name` of run `run_id`."""
    return "rs_" + re.sub(r"[^a-z0-9]", "_", run_id.lower()) + "_" + name


def _read_table(conn: sa.Connection, table: str) -> pd.DataFrame:
    """A whole table through the driver's cursor (pandas' reflection-based reader is several
    times slower on a million rows), typed by the table's declared column types."""
    declared = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns(table)}
    raw = conn.connection.driver_connection
    cur = raw.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        cur.close()
    columns = list(zip(*rows)) if rows else [()] * len(names)
    return pd.DataFrame(
        {name: _typed(values, declared.get(name)) for name, values in zip(names, columns)},
        columns=names,
    )


def _typed(values: tuple[Any, ...], declared: Any) -> pd.Series:
    if isinstance(declared, (sa.Float, sa.Numeric)):
        return pd.Series(values, dtype="float64")
    if isinstance(declared, sa.Integer):
        return pd.Series(values, dtype="float64" if None in values else "int64")
    return pd.Series(values, dtype=object)


AUDIT_FIELDS = list(audit_chain.CONTENT_FIELDS)  # what a writer gives; the chain adds STORED_FIELDS


def _bulk_insert(conn: sa.Connection, table: str, df: pd.DataFrame) -> None:
    """Rows of `df` into the existing `table` inside the connection's transaction."""
    values = [df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns]
    _insert_rows(conn, table, [str(c) for c in df.columns], list(zip(*values)))


def _insert_rows(conn: sa.Connection, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Tuples into `table` through the driver (COPY on PostgreSQL, executemany on SQLite),
    inside the connection's transaction: no per-row SQLAlchemy work."""
    names = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
    else:
        cur = raw.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})', rows)
        finally:
            cur.close()


def _first(conn: sa.Connection, sql: str) -> tuple[Any, ...] | None:
    """The first row of a parameterless query, through the driver (the audit hot path)."""
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql)
        row = cur.fetchone()
    finally:
        cur.close()
    return tuple(row) if row is not None else None


def _is_locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "locked" in text or "busy" in text or "deadlock" in text or "could not serialize" in text


class ResultsDB:
    """Access layer over the results database; every write transaction retries on a busy lock."""

    RETRIES = 5

    def __init__(self, url: str, *, home: Path | None = None, secret_key_file: Path | None = None) -> None:
        """`home` and `secret_key_file` (the settings') locate the audit-seal key and the audit
        head file; without them: the SQLite file's folder (HOME/results.db by default), else the
        settings from the environment (see `audit_seal`)."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._audit_home = home
        self._audit_key_file = secret_key_file
        self._audit_seal: audit_chain.AuditSeal | None = None
        self._audit_seal_lock = threading.Lock()
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.is_sqlite:
            self.engine = sa.create_engine(url, future=True, connect_args={"timeout": 30})
            _sqlite_transactions(self.engine)
        else:
            self.engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        self.retry(lambda: metadata.create_all(self.engine))
        self.retry(self._add_missing_columns)
        if url.startswith("sqlite:///"):  # the file and its WAL hold personal data: owner only
            database = Path(url.removeprefix("sqlite:///"))
            for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
                if path.exists():
                    path.chmod(0o600)
        _chain_audit_inserts(self)

    @classmethod
    def of(cls, settings: Settings) -> ResultsDB:
        """The results database of these settings, with its home (the audit seal and head)."""
        return cls(settings.results_database_url, home=settings.home, secret_key_file=settings.secret_key_file)

    # -- plumbing ---------------------------------------------------------------------------------
    def retry(self, work: Callable[[], T]) -> T:
        """Run `work` (a whole transaction), again after a short wait when the database is busy."""
        for attempt in range(self.RETRIES):
            try:
                return work()
            except OperationalError as exc:
                if not _is_locked(exc) or attempt == self.RETRIES - 1:
                    raise
                wait = 0.05 * 2**attempt
                log.warning("results database busy (%s); retrying in %.2fs", exc.orig, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _add_missing_columns(self) -> None:
        """Columns added since a home was created (the tables themselves are never dropped)."""
        with self.engine.begin() as conn:
            inspector = sa.inspect(conn)
            for table in metadata.sorted_tables:
                have = {c["name"] for c in inspector.get_columns(table.name)}
                for col in table.columns:
                    if col.name not in have:
                        ddl = col.type.compile(dialect=self.engine.dialect)
                        default = " DEFAULT FALSE NOT NULL" if isinstance(col.type, sa.Boolean) else ""
                        conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {ddl}{default}')

    # -- run tables -------------------------------------------------------------------------------
    def write_run_table(self, run_id: str, name: str, df: pd.DataFrame, *, chunk_rows: int = 50_000) -> str:
        """Write one result table of a (not yet committed) run, in chunks of their own
        transactions so other writers (the audit log) are not held up; invisible until commit."""
        table = run_table(run_id, name)
        df = df if len(df.columns) else pd.DataFrame({"_empty": pd.Series(dtype=str)})
        self.retry(lambda: self._drop(table))
        for lo in range(0, max(len(df), 1), chunk_rows):
            part = df.iloc[lo : lo + chunk_rows]
            mode = "replace" if lo == 0 else "append"
            self.retry(partial(self._to_sql, part, table, mode))
        return table

    def _to_sql(self, df: pd.DataFrame, table: str, mode: str) -> None:
        """One chunk in one transaction: the table created from the frame's types (pandas), then
        the rows bulk-loaded (COPY on PostgreSQL, executemany on SQLite)."""
        with self.engine.begin() as conn:
            if mode == "replace":
                df.head(0).to_sql(table, conn, if_exists="replace", index=False)
            if len(df):
                _bulk_insert(conn, table, df)

    def _drop(self, table: str) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')

    def drop_run_tables(self, run_id: str) -> None:
        prefix = run_table(run_id, "")
        with self.engine.connect() as conn:
            names = [t for t in sa.inspect(conn).get_table_names() if t.startswith(prefix)]
        for t in names:
            self.retry(partial(self._drop, t))

    def read_run_table(self, run_id: str, name: str) -> pd.DataFrame:
        table = run_table(run_id, name)
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return pd.DataFrame()
            df = _read_table(conn, table)
        return df.drop(columns=["_empty"]) if "_empty" in df.columns else df

    # -- the served run ---------------------------------------------------------------------------
    def served(self) -> tuple[str, int] | None:
        """(run id, commit sequence) of the served run, or None before the first commit."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(served_table.c.run_id, served_table.c.seq).where(served_table.c.key == "served")
            ).first()
        return (row.run_id, int(row.seq)) if row else None

    def served_run_id(self) -> str | None:
        s = self.served()
        return s[0] if s else None

    def read(self, name: str) -> pd.DataFrame:
        """Result table `name` of the served run (a static table such as `models` otherwise)."""
        if name in RESULT_TABLES:
            run_id = self.served_run_id()
            return self.read_run_table(run_id, name) if run_id else pd.DataFrame()
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(name):
                return pd.DataFrame()
            return pd.read_sql_table(name, conn)

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(run_log_table).where(run_log_table.c.run_id == run_id)).first()
        return dict(row._mapping) if row else None

    def runs(self, status: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(run_log_table).order_by(run_log_table.c.started_at.desc(), run_log_table.c.run_id.desc())
        if status:
            q = q.where(run_log_table.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def query(self, sql: str, **params: Any) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params=params)

    # -- audit and jobs ---------------------------------------------------------------------------
    @property
    def audit_seal(self) -> audit_chain.AuditSeal:
        """The audit-seal key and head file of this database's home (resolved once)."""
        if self._audit_seal is not None:
            return self._audit_seal
        with self._audit_seal_lock:  # writer threads resolve it once (the secret may be created here)
            return self._resolve_audit_seal()

    def _resolve_audit_seal(self) -> audit_chain.AuditSeal:
        if self._audit_seal is None:
            home, key_file = self._audit_home, self._audit_key_file
            if home is None or key_file is None:
                from riskgraph.settings import Settings

                env = Settings()
                if home is None:
                    path = self.url.removeprefix("sqlite:///")
                    home = Path(path).parent if self.url.startswith("sqlite:///") and path else env.home
                key_file = key_file or env.secret_key_file
            self._audit_seal = audit_chain.AuditSeal.of(home, key_file)
        return self._audit_seal

    def append_audit(self, rows: list[dict[str, Any]], *, write_head: bool = True) -> audit_chain.AuditHead | None:
        """Insert audit rows in one transaction, hash-chained and sealed after the last row (read
        inside the same write transaction, so writers never fork the chain), durable when this
        returns; then the head file is resealed (unless `write_head` is false: the caller writes
        the returned head later, see api/audit.py)."""
        if not rows:
            return None
        seal = self.audit_seal

        def write() -> audit_chain.AuditHead:
            with self.engine.begin() as conn:
                chained = self._audit_chain_in(conn, rows, seal)
                _insert_rows(
                    conn,
                    audit_table.name,
                    list(audit_chain.STORED_FIELDS),
                    [tuple(r[f] for f in audit_chain.STORED_FIELDS) for r in chained],
                )
                last_id = (_first(conn, "SELECT max(id) FROM audit") or (0,))[0]
                return audit_chain.AuditHead(int(last_id), chained[-1]["seq"], chained[-1]["row_hash"])

        head = self.retry(write)
        if write_head:
            self.write_audit_head(head)
        return head

    def write_audit_head(self, head: audit_chain.AuditHead) -> None:
        """Reseal HOME/audit.head after a committed write (a failure is logged: the rows are
        durable, and verify accepts a head behind the table)."""
        try:
            self.audit_seal.write_head(head)
        except OSError:
            log.exception("audit head file %s not written", self.audit_seal.head_path)

    def _audit_chain_in(
        self, conn: sa.Connection, rows: list[dict[str, Any]], seal: audit_chain.AuditSeal
    ) -> list[dict[str, Any]]:
        """`rows` chained after the table's last row, inside `conn`'s write transaction (SQLite:
        BEGIN IMMEDIATE already holds the write lock; PostgreSQL: the table is locked here)."""
        if not self.is_sqlite:
            conn.exec_driver_sql("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")
        last = _first(conn, "SELECT seq, row_hash FROM audit ORDER BY id DESC LIMIT 1")
        if last is None:
            prev, seq = audit_chain.GENESIS, 0
        elif last[1] is not None:
            prev, seq = str(last[1]), int(last[0])
        else:
            prev, seq = self._audit_unsealed_tail(conn)
        return seal.chain(rows, prev, seq)

    @staticmethod
    def _audit_unsealed_tail(conn: sa.Connection) -> tuple[str, int]:
        """Where to chain when the last row has no hash: after the last sealed row, or, in a home
        whose rows all predate the chain, after those rows hashed in place (they stay covered)."""
        sealed = conn.exec_driver_sql(
            "SELECT seq, row_hash FROM audit WHERE row_hash IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).first()
        if sealed is not None:  # rows written around the chain: verify names the first of them
            return sealed.row_hash, int(sealed.seq)
        prev, seq = audit_chain.GENESIS, 0
        for r in conn.execute(sa.select(audit_table).order_by(audit_table.c.id)).mappings():
            seq += 1
            prev = audit_chain.row_hash(prev, {**r, "seq": seq, "key_id": None})
        return prev, seq

    def audit_rows(self, *, since: str | None = None, until: str | None = None) -> Iterator[dict[str, Any]]:
        """Audit rows in chain order (all of them without bounds), streamed."""
        q = sa.select(audit_table).order_by(audit_table.c.id)
        if since is not None:
            q = q.where(audit_table.c.at >= since)
        if until is not None:
            q = q.where(audit_table.c.at < until)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=5_000).execute(q)
            for r in result.mappings():
                yield dict(r)

    def audit_verify(self) -> audit_chain.Verdict:
        """The whole chain and the head file checked (riskgraph/audit_chain.py `verify`)."""
        seal = self.audit_seal
        return audit_chain.verify(self.audit_rows(), seal, seal.read_head())

    # -- credit supervision -----------------------------------------------------------------------
    def write_with_audit(
        self, table: sa.Table, rows: list[dict[str, Any]], audit_rows: list[dict[str, Any]]
    ) -> audit_chain.AuditHead:
        """Rows into a static table and their audit rows, chained, in ONE transaction: the change
        and its audit are durable together or not at all."""
        seal = self.audit_seal

        def write() -> audit_chain.AuditHead:
            with self.engine.begin() as conn:
                if rows:
                    conn.execute(table.insert(), rows)
                chained = self._audit_chain_in(conn, audit_rows, seal)
                _insert_rows(
                    conn,
                    audit_table.name,
                    list(audit_chain.STORED_FIELDS),
                    [tuple(r[f] for f in audit_chain.STORED_FIELDS) for r in chained],
                )
                last_id = (_first(conn, "SELECT max(id) FROM audit") or (0,))[0]
                return audit_chain.AuditHead(int(last_id), chained[-1]["seq"], chained[-1]["row_hash"])

        head = self.retry(write)
        self.write_audit_head(head)
        return head

    def policy_versions(self, policy_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored version (of one policy), in the order they were added."""
        q = sa.select(policies_table).order_by(policies_table.c.id)
        if policy_id is not None:
            q = q.where(policies_table.c.policy_id == policy_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def list_entries(self) -> pd.DataFrame:
        """Imported list entries (empty frame with the columns when none)."""
        cols = [c.name for c in list_entries_table.columns]
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(sa.select(list_entries_table).order_by(list_entries_table.c.id))]
        return pd.DataFrame(rows, columns=cols)

    def credit_corrections(self) -> pd.DataFrame:
        """Corrections accepted on objection: entity_type, entity_id, corrected_date, source."""
        t = corrections_table
        with self.engine.connect() as conn:
            rows = [
                tuple(r)
                for r in conn.execute(sa.select(t.c.entity_type, t.c.entity_id, t.c.corrected_date, t.c.source))
            ]
        return pd.DataFrame(rows, columns=["entity_type", "entity_id", "corrected_date", "source"])

    def record_person_decision(
        self, left: str, right: str, decision: str, *, actor: str, run_id: str | None = None
    ) -> None:
        """Store an investigator's decision on a person record pair (ids in sorted order)."""
        if decision not in ("accept", "reject"):
            raise ValueError(f"a decision is accept or reject, not {decision!r}")
        a, b = sorted((left, right))

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    person_decisions_table.insert().values(
                        left_id=a, right_id=b, decision=decision, actor=actor, decided_at=now_iso(), run_id=run_id
                    )
                )

        self.retry(write)

    def person_decisions(self) -> pd.DataFrame:
        """The latest decision per person record pair: left, right, decision, actor, decided_at."""
        t = person_decisions_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.left_id, t.c.right_id, t.c.decision, t.c.actor, t.c.decided_at, t.c.id))
            df = pd.DataFrame(rows.fetchall(), columns=["left", "right", "decision", "actor", "decided_at", "id"])
        df = df.sort_values("id").drop_duplicates(["left", "right"], keep="last")
        return df.drop(columns="id").reset_index(drop=True)

    def job_started(self, job_id: str) -> int:
        def write() -> int:
            with self.engine.begin() as conn:
                res = conn.execute(jobs_table.insert().values(job_id=job_id, started_at=now_iso(), status="running"))
                key = res.inserted_primary_key
                assert key is not None
                return int(key[0])

        return self.retry(write)

    def job_finished(self, job_run: int, status: str, message: str = "", run_id: str | None = None) -> None:
        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    jobs_table.update()
                    .where(jobs_table.c.id == job_run)
                    .values(finished_at=now_iso(), status=status, message=message, run_id=run_id)
                )

        self.retry(write)


def _chain_audit_inserts(db: ResultsDB) -> None:
    """Audit rows inserted through SQLAlchemy by other writers (`audit_table.insert()`, e.g. a
    rollback in composer/runs.py) are chained and sealed in their own transaction too, so that no
    writer forks or skips the chain. (Their head update waits for the next `append_audit`.)"""

    @event.listens_for(db.engine, "before_execute", retval=True)
    def _before(conn: sa.Connection, clause: Any, multiparams: Any, params: Any, options: Any) -> tuple[Any, Any, Any]:
        if not isinstance(clause, sa.Insert) or clause.table is not audit_table or options.get("audit_chained"):
            return clause, multiparams, params
        given = clause.compile().params
        many = multiparams if multiparams else [params or {}]
        rows = [{**given, **dict(p)} for p in many]
        chained = db._audit_chain_in(conn, rows, db.audit_seal)
        return audit_table.insert().execution_options(audit_chained=True), chained, {}


def _sqlite_transactions(engine: sa.Engine) -> None:
    """SQLite in WAL mode with a busy timeout, and real transactions: pysqlite's own handling
    commits around DDL, which made a table swap non-atomic; here every transaction is
    BEGIN IMMEDIATE ... COMMIT, DDL included."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
