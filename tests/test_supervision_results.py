"""Credit supervision in the results database, on SQLite and on a real PostgreSQL: the policy seed
and its versions, imported list entries and corrections, each written with its audit row in one
transaction; the audit chain stays whole."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from composer.supervision import (
    audit_row,
    ensure_policies,
    import_lists,
    imported_entries,
    policy_row,
    stored_policies,
)
from riskgraph.results import ResultsDB, now_iso
from riskgraph.results_schema import corrections_table, policies_table
from rules.exchange import InvalidExchange, write_exchange
from rules.policy import seed_policies
from tests.rules.test_exchange import entries


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> ResultsDB:
    url = (
        f"sqlite:///{tmp_path / 'results.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    return ResultsDB(url, home=tmp_path / "home", secret_key_file=tmp_path / "secret.key")


def test_the_seed_is_written_once_and_audited(db: ResultsDB) -> None:
    ensure_policies(db)
    ensure_policies(db)
    versions = stored_policies(db)
    assert [p.version for p in versions] == ["2026.1"] and versions[0] == seed_policies()[0]
    assert [r["action"] for r in db.audit_rows()] == ["policy_seed"]


def test_a_new_version_and_its_audit_row_are_written_together(db: ResultsDB) -> None:
    ensure_policies(db)
    seed = seed_policies()[0]
    newer = seed.model_copy(update={"version": "2026.2"})
    db.write_with_audit(
        policies_table,
        [policy_row(newer, changed_by="model_owner:k1", note="n")],
        [audit_row(actor="model_owner:k1", role="model_owner", action="policy_change", detail={"version": "2026.2"})],
    )
    with pytest.raises(sa.exc.IntegrityError):  # the same version again: refused by the unique key, nothing written
        db.write_with_audit(
            policies_table,
            [policy_row(newer, changed_by="admin:k2")],
            [audit_row(actor="admin:k2", role="admin", action="policy_change", detail={"version": "2026.2"})],
        )
    assert [p.version for p in stored_policies(db)] == ["2026.1", "2026.2"]
    assert [r["action"] for r in db.audit_rows()] == ["policy_seed", "policy_change"]
    assert db.audit_verify().ok


def test_imports_and_corrections_round_trip(db: ResultsDB, tmp_path: Path) -> None:
    write_exchange(entries(), tmp_path / "in.csv")
    import_lists(db, tmp_path / "in.csv", actor="cli", role="admin")
    pd.testing.assert_frame_equal(imported_entries(db), entries().astype(str), check_dtype=False)
    bad = entries()
    bad.loc[0, "credit_code"] = "91110000600037341X"
    write_exchange(bad, tmp_path / "bad.csv")
    with pytest.raises(InvalidExchange):
        import_lists(db, tmp_path / "bad.csv", actor="cli", role="admin")
    assert len(db.list_entries()) == len(entries())
    row = {"entity_type": "employer", "entity_id": "E01", "corrected_date": "2025-02-01", "source": "objection:C1"}
    db.write_with_audit(
        corrections_table,
        [row | {"recorded_at": now_iso()}],
        [audit_row(actor="investigator:k3", role="investigator", action="correction", detail=row)],
    )
    assert db.credit_corrections().to_dict("records") == [row]
    assert [r["action"] for r in db.audit_rows()] == ["list_import", "correction"]
    assert json.loads(next(iter(db.audit_rows()))["detail"])["rows"] == len(entries())
    assert db.audit_verify().ok
