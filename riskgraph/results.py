"""The results database (SQLite by default, any SQLAlchemy URL): scores, rule hits, rings,
the model registry, the audit log and job history."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

metadata = sa.MetaData()

models_table = sa.Table(
    "models", metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("entity_type", sa.String(16), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),            # supervised | unsupervised
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("data_hash", sa.String(64), nullable=False),
    sa.Column("features", sa.Text, nullable=False),               # JSON list
    sa.Column("params", sa.Text, nullable=False),                 # JSON
    sa.Column("metrics", sa.Text, nullable=False),                # JSON
    sa.Column("champion", sa.Boolean, nullable=False, default=False),
    sa.Column("artifact", sa.LargeBinary, nullable=True),
)

audit_table = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("entity_type", sa.String(16)),
    sa.Column("entity_id", sa.String(128)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("grade", sa.String(2)),
    sa.Column("detail", sa.Text),
)

jobs_table = sa.Table(
    "job_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), nullable=False, index=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text),
)

RESULT_TABLES = ("scores", "rule_hits", "rings", "runs")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsDB:
    """Thin access layer over the results database."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, future=True)
        metadata.create_all(self.engine)

    def replace_results(self, frames: dict[str, pd.DataFrame]) -> None:
        """Swap in a run's results in one transaction (readers see old or new, never half)."""
        with self.engine.begin() as conn:
            for name, df in frames.items():
                df.to_sql(name, conn, if_exists="replace", index=False, chunksize=50_000)

    def read(self, name: str) -> pd.DataFrame:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(name):
                return pd.DataFrame()
            return pd.read_sql_table(name, conn)

    def query(self, sql: str, **params: Any) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params=params)

    def append_audit(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(audit_table.insert(), rows)

    def job_started(self, job_id: str) -> int:
        with self.engine.begin() as conn:
            res = conn.execute(jobs_table.insert().values(job_id=job_id, started_at=now_iso(), status="running"))
            return int(res.inserted_primary_key[0])

    def job_finished(self, run_id: int, status: str, message: str = "") -> None:
        with self.engine.begin() as conn:
            conn.execute(jobs_table.update().where(jobs_table.c.id == run_id)
                         .values(finished_at=now_iso(), status=status, message=message))


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
