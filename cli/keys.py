"""`riskgraph keys create|list|revoke`: institution API keys (stored hashed with the server's pepper)."""

from __future__ import annotations

import click

from riskgraph.api_keys import KeyStore
from riskgraph.settings import Settings

pass_settings = click.make_pass_decorator(Settings, ensure=True)


def _store(settings: Settings) -> KeyStore:
    from riskgraph.api_keys import Pepper
    from riskgraph.results import ResultsDB

    db = ResultsDB.of(settings)
    return KeyStore(db.engine, Pepper.of(settings.home, settings.secret_key_file))


@click.group("keys")
def keys() -> None:
    """Institution API keys: role, institution, region scope, expiry, rate limit."""


@keys.command("create")
@click.option(
    "--role", required=True, type=click.Choice(["inspector", "approval_system", "investigator", "model_owner", "admin"])
)
@click.option("--institution", required=True, help="the institution the key is issued to")
@click.option("--region", default=None, help="region scope: the key sees only entities of this region")
@click.option(
    "--expires", default=None, help="expiry date (2027-01-01: valid until that day begins, UTC) or ISO date-time"
)
@click.option("--rate", default=None, type=click.FloatRange(min=0, min_open=True), help="requests per second")
@click.option(
    "--burst", default=None, type=click.IntRange(min=1), help="requests at once beyond the rate (default: the rate)"
)
@pass_settings
def keys_create(
    settings: Settings,
    role: str,
    institution: str,
    region: str | None,
    expires: str | None,
    rate: float | None,
    burst: int | None,
) -> None:
    """Create a key and print it ONCE (only its keyed digest is stored)."""
    try:
        key, rec = _store(settings).create(
            role=role, institution=institution, region=region, expires_at=expires, rate=rate, burst=burst
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    click.echo(
        f"key id {rec.key_id}: {rec.role} for {rec.institution}" + (f", region {rec.region}" if rec.region else "")
    )
    click.echo("the key (shown once; store it now, it cannot be shown again):", err=True)
    click.echo(key)


@keys.command("list")
@pass_settings
def keys_list(settings: Settings) -> None:
    """Every key: id, role, institution, region, expiry, rate, created, revoked (never the key)."""
    rows = _store(settings).list()
    click.echo(
        f"{'id':14s} {'role':16s} {'institution':24s} {'region':8s} {'expires':26s} {'rate':>12s} {'created':26s} revoked"
    )
    for k in rows:
        rate = f"{k.rate:g}/s,{k.burst}" if k.rate is not None else "-"
        click.echo(
            f"{k.key_id:14s} {k.role:16s} {k.institution[:24]:24s} {k.region or '-':8s} {k.expires_at or '-':26s} "
            f"{rate:>12s} {k.created_at:26s} {k.revoked_at or '-'}"
        )


@keys.command("revoke")
@click.argument("key_id")
@pass_settings
def keys_revoke(settings: Settings, key_id: str) -> None:
    """Revoke KEY_ID: the server refuses it (401) within `api_keys_refresh_s` seconds."""
    rec = _store(settings).revoke(key_id)
    click.echo(f"key {rec.key_id} ({rec.role}, {rec.institution}) revoked at {rec.revoked_at}")
