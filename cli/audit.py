"""`riskgraph audit verify|export|check`: the tamper-evident audit log from the command line
(the chain, seals and head file are described in riskgraph/audit_chain.py and docs/security.md)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from riskgraph.settings import Settings

if TYPE_CHECKING:
    from riskgraph.results import ResultsDB

pass_settings = click.make_pass_decorator(Settings, ensure=True)


def _db(settings: Settings) -> ResultsDB:
    from riskgraph.results import ResultsDB

    return ResultsDB(settings.results_database_url, home=settings.home, secret_key_file=settings.secret_key_file)


def _instant(text: str | None, name: str) -> str | None:
    """An ISO date or date-time (UTC when no offset is given) as the audit log writes `at`."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not an ISO date or date-time", param_hint=name) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)  # rows are written with seconds or milliseconds: whole seconds compare right
    return when.isoformat(timespec="seconds" if when.microsecond == 0 else "milliseconds")


@click.group("audit")
def audit() -> None:
    """The audit log: verify its hash chain, export a signed extract."""


@audit.command("verify")
@pass_settings
def audit_verify(settings: Settings) -> None:
    """Check every row's link, hash and seal, and the sealed head file (exit 1 naming the first
    broken row on any altered, deleted, inserted or reordered row)."""
    verdict = _db(settings).audit_verify()
    click.echo(verdict.summary(), err=not verdict.ok)
    sys.exit(0 if verdict.ok else 1)


@audit.command("export")
@click.option("--since", default=None, help="first instant (ISO date or date-time, UTC by default), inclusive")
@click.option("--until", default=None, help="last instant (ISO), exclusive")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="extract file")
@pass_settings
def audit_export(settings: Settings, since: str | None, until: str | None, out: Path) -> None:
    """A signed extract for auditors: JSON lines (a header, each row with its chain hashes and
    seal) and a last signature line (HMAC-SHA256 under the audit-seal key)."""
    from riskgraph import audit_chain

    lo, hi = _instant(since, "--since"), _instant(until, "--until")
    db = _db(settings)
    verdict = db.audit_verify()
    meta = {
        "since": lo,
        "until": hi,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain_ok": verdict.ok,
        "chain": verdict.summary(),
    }
    tmp = out.with_name(f".{out.name}.tmp")
    n = -2  # header and signature lines are not rows
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in audit_chain.extract_lines(db.audit_rows(since=lo, until=hi), db.audit_seal, meta):
            fh.write(line + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    click.echo(f"{n} audit rows written to {out} (signed under key {db.audit_seal.key_id})")
    if not verdict.ok:
        click.echo(verdict.summary(), err=True)
        sys.exit(1)


@audit.command("check")
@click.argument("extract", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@pass_settings
def audit_check(settings: Settings, extract: Path) -> None:
    """Check an extract's signature and that its rows chain one to the next."""
    from riskgraph import audit_chain

    seal = audit_chain.AuditSeal.of(settings.home, settings.secret_key_file)
    problem = audit_chain.check_extract(extract.read_text(encoding="utf-8").splitlines(), seal)
    if problem:
        click.echo(f"extract BROKEN: {problem}", err=True)
        sys.exit(1)
    click.echo(f"extract {extract}: signature holds and its rows chain")
