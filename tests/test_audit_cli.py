"""`riskgraph audit verify|export|check` on a real audit log: a clean log passes; an altered,
deleted (middle or tail), inserted or swapped row, or a bad seal, fails naming the first broken
row. The log is tampered with through sqlite3, the way an intruder with file access would."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from cli.audit import audit
from riskgraph.results import ResultsDB
from riskgraph.results_schema import audit_table
from riskgraph.settings import Settings


def _settings(home: Path, results_url: str = "") -> Settings:
    return Settings(home=home, results_url=results_url, progress=False)


def _write(db: ResultsDB, n: int, start: int = 0) -> None:
    """`n` rows over a few transactions, a day apart from 2025-01-01 on."""
    for lo in range(start, start + n, 3):
        db.append_audit(
            [
                {
                    "at": f"2025-01-{i + 1:02d}T08:00:00.000+00:00",
                    "actor": f"investigator:{i}",
                    "role": "investigator",
                    "action": "entity_detail",
                    "entity_type": "person",
                    "entity_id": f"P{i:07d}",
                    "detail": json.dumps({"unmasked": True, "rings": []}),
                    "decision_id": f"d{i}",
                }
                for i in range(lo, min(lo + 3, start + n))
            ]
        )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    _write(ResultsDB(f"sqlite:///{home / 'results.db'}", home=home), 12)
    return home


def _verify(settings: Settings) -> Result:
    return CliRunner().invoke(audit, ["verify"], obj=settings)


def _tamper(home: Path, *sql: str) -> None:
    with sqlite3.connect(home / "results.db") as con:
        for statement in sql:
            con.execute(statement)


def test_verify_passes_on_a_clean_log(home: Path) -> None:
    out = _verify(_settings(home))
    assert out.exit_code == 0, out.output
    assert "intact: 12 rows" in out.output and "head: row id 12" in out.output


COLUMNS = "at, actor, role, action, entity_type, entity_id, detail, decision_id, seq, key_id, prev_hash, row_hash, seal"


@pytest.mark.parametrize(
    ("tamper", "broken_id", "words"),
    [
        (["UPDATE audit SET entity_id = 'P9999999' WHERE id = 5"], 5, "altered"),
        (["UPDATE audit SET at = '2024-12-31T08:00:00.000+00:00' WHERE id = 7"], 7, "altered"),
        (["DELETE FROM audit WHERE id = 6"], 7, "missing (deleted)"),
        (["DELETE FROM audit WHERE id IN (11, 12)"], None, "deleted at the tail"),
        (  # two rows swapped: each keeps its id, takes the other's content, hashes and seal
            [
                "CREATE TABLE t AS SELECT * FROM audit WHERE id IN (4, 5)",
                *(
                    f"UPDATE audit SET ({COLUMNS}) = (SELECT {COLUMNS} FROM t WHERE t.id = {b}) WHERE id = {a}"
                    for a, b in ((4, 5), (5, 4))
                ),
            ],
            4,
            "reordered",
        ),
        (  # a forged row inserted in the middle, with its own made-up chain fields
            [
                "UPDATE audit SET id = id + 100 WHERE id > 8",
                "UPDATE audit SET id = id - 99 WHERE id > 100",
                f"INSERT INTO audit (id, {COLUMNS}) SELECT 9, {COLUMNS} FROM audit WHERE id = 8",
            ],
            9,
            "reordered or inserted",
        ),
        (
            ["INSERT INTO audit (at, actor, role, action) VALUES ('2025-02-01', 'x', 'admin', 'credit')"],
            13,
            "not sealed",
        ),
        (["UPDATE audit SET seal = substr(seal, 2) || '0' WHERE id = 3"], 3, "bad seal"),
    ],
    ids=["altered", "altered-time", "deleted-middle", "deleted-tail", "swapped", "inserted", "unsealed", "seal"],
)
def test_verify_fails_naming_the_first_broken_row(
    home: Path, tamper: list[str], broken_id: int | None, words: str
) -> None:
    _tamper(home, *tamper)
    out = _verify(_settings(home))
    assert out.exit_code == 1, out.output
    assert "BROKEN" in out.output and words in out.output
    if broken_id is not None:
        assert f"row id {broken_id} " in out.output


def test_the_head_file_catches_a_tail_deleted_with_it_or_altered(home: Path, tmp_path: Path) -> None:
    _tamper(home, "DELETE FROM audit WHERE id = 12")
    (home / "audit.head").unlink()
    out = _verify(_settings(home))
    assert out.exit_code == 1 and "head file" in out.output and "missing" in out.output
    _write(ResultsDB(f"sqlite:///{home / 'results.db'}", home=home), 1, start=20)
    head = json.loads((home / "audit.head").read_text())
    assert _verify(_settings(home)).exit_code == 0
    (home / "audit.head").write_text(json.dumps({**head, "rows": head["rows"] - 1, "id": head["id"] - 1}))
    out = _verify(_settings(home))
    assert out.exit_code == 1 and "bad seal" in out.output


def test_a_head_behind_the_table_is_accepted_when_the_rows_after_it_chain(home: Path) -> None:
    """A crash between a commit and its head write leaves the head behind: verify accepts the
    rows after it (they chain from it), and still fails when rows up to the head are missing."""
    kept = (home / "audit.head").read_text()
    _write(ResultsDB(f"sqlite:///{home / 'results.db'}", home=home), 4, start=12)
    (home / "audit.head").write_text(kept)  # as if the process died before writing the head
    out = _verify(_settings(home))
    assert out.exit_code == 0, out.output
    assert "4 rows after the head" in out.output
    _tamper(home, "DELETE FROM audit WHERE id > 10")
    out = _verify(_settings(home))
    assert out.exit_code == 1 and "deleted at the tail" in out.output


def test_rows_from_other_writers_join_the_chain_without_forking_it(home: Path) -> None:
    """Concurrent writers (API, jobs, promotions) and a rollback inserting through SQLAlchemy in
    its own transaction (composer/runs.py) all extend the one chain."""
    db = ResultsDB(f"sqlite:///{home / 'results.db'}", home=home)
    threads = [threading.Thread(target=_write, args=(db, 9, 100 + 10 * k)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.transaction() as conn:
        conn.execute(
            audit_table.insert().values(at="2025-03-01T00:00:00+00:00", actor="cli", role="admin", action="rollback")
        )
    _write(db, 1, start=200)
    out = _verify(_settings(home))
    assert out.exit_code == 0, out.output
    assert "intact: 50 rows" in out.output


def test_rows_from_before_the_chain_are_covered_by_it(tmp_path: Path) -> None:
    """A home whose audit rows predate the chain: they stay, and altering one breaks the link of
    the first sealed row."""
    home = tmp_path / "home"
    db = ResultsDB(f"sqlite:///{home / 'results.db'}", home=home)
    with db.engine.begin() as conn:  # rows written by an older version: no chain columns filled
        conn.exec_driver_sql(
            "INSERT INTO audit (at, actor, role, action) VALUES ('2024-01-01', 'a', 'admin', 'promote'), "
            "('2024-01-02', 'b', 'admin', 'rollback')"
        )
    _write(db, 3)
    out = _verify(_settings(home))
    assert out.exit_code == 0 and "2 rows from before the chain" in out.output, out.output
    _tamper(home, "UPDATE audit SET actor = 'z' WHERE id = 1")
    out = _verify(_settings(home))
    assert out.exit_code == 1 and "row id 3 " in out.output


def test_a_key_rotation_shows_and_the_log_keeps_verifying(home: Path) -> None:
    first = json.loads((home / "audit.head").read_text())["key_id"]
    (home / "secret.key").write_text("ab" * 32 + "\n")  # a new master secret: every derived key changes
    out = _verify(_settings(home))
    assert out.exit_code == 1 and "head file is sealed under key" in out.output  # until the next write
    db = ResultsDB(f"sqlite:///{home / 'results.db'}", home=home)
    _write(db, 2, start=12)
    rows = list(db.audit_rows())
    assert {r["key_id"] for r in rows[:12]} == {first} and rows[-1]["key_id"] != first
    out = _verify(_settings(home))
    assert out.exit_code == 0, out.output
    assert f"12 rows sealed under earlier key {first}" in out.output


def test_export_is_a_signed_extract_with_the_chain_hashes(home: Path, tmp_path: Path) -> None:
    extract = tmp_path / "extract.jsonl"
    settings = _settings(home)
    out = CliRunner().invoke(
        audit,
        ["export", "--since", "2025-01-03", "--until", "2025-01-06T08:00:00", "--out", str(extract)],
        obj=settings,
    )
    assert out.exit_code == 0, out.output
    lines = extract.read_text().splitlines()
    header, rows, sig = json.loads(lines[0]), [json.loads(x) for x in lines[1:-1]], json.loads(lines[-1])
    assert header["chain_ok"] and sig["type"] == "signature" and sig["alg"] == "HMAC-SHA256"
    assert [r["id"] for r in rows] == [3, 4, 5]  # since inclusive, until exclusive
    assert all(b["prev_hash"] == a["row_hash"] for a, b in zip(rows, rows[1:]))
    assert CliRunner().invoke(audit, ["check", str(extract)], obj=settings).exit_code == 0
    forged = tmp_path / "forged.jsonl"
    forged.write_text("\n".join([lines[0], lines[1].replace("P0000002", "P0000009"), *lines[2:]]) + "\n")
    out = CliRunner().invoke(audit, ["check", str(forged)], obj=settings)
    assert out.exit_code == 1 and "signature does not hold" in out.output
    bad = CliRunner().invoke(audit, ["export", "--since", "yesterday", "--out", str(extract)], obj=settings)
    assert bad.exit_code == 2


@pytest.mark.postgres
def test_verify_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = ResultsDB(postgres_url, home=home)
    threads = [threading.Thread(target=_write, args=(db, 9, 10 * k)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.transaction() as conn:
        conn.execute(
            audit_table.insert().values(at="2025-03-01T00:00:00+00:00", actor="cli", role="admin", action="rollback")
        )
    _write(db, 1, start=100)
    settings = _settings(home, postgres_url)
    out = _verify(settings)
    assert out.exit_code == 0, out.output
    assert "intact: 38 rows" in out.output
    with db.engine.begin() as conn:
        victim = conn.execute(sa.select(audit_table.c.id).order_by(audit_table.c.id).offset(20).limit(1)).scalar_one()
        conn.execute(audit_table.update().where(audit_table.c.id == victim).values(grade="A"))
    out = _verify(settings)
    assert out.exit_code == 1 and f"row id {victim} " in out.output and "altered" in out.output
    db.engine.dispose()
