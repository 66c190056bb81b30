"""`riskgraph postgres start|stop|status`: the local PostgreSQL of riskgraph/postgres_server.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from riskgraph.errors import RiskGraphError
from riskgraph.postgres_server import (
    DEFAULT_PORT,
    HOST,
    START_TIMEOUT_S,
    default_data_dir,
    one_line,
    start,
    status,
    stop,
)


class _Group(click.Group):
    """Domain errors become one `error: ...` line and exit code 2 (also when used on its own)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RiskGraphError as exc:
            click.echo(f"error: {one_line(str(exc))}", err=True)
            sys.exit(2)


def _default_data_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path:
    if value is not None:
        return value
    from riskgraph.settings import Settings

    settings = ctx.find_object(Settings) or Settings()
    return default_data_dir(settings.home)


_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    callback=_default_data_dir,
    show_default="<RISKGRAPH_HOME>/postgres; as root /var/lib/postgresql/riskgraph-<home digest>",
    help="the cluster's folder",
)


@click.group(cls=_Group)
def postgres() -> None:
    """A local PostgreSQL server for development and tests (e.g. for RISKGRAPH_RESULTS_URL)."""


@postgres.command("start")
@_data_dir_option
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--timeout",
    default=START_TIMEOUT_S,
    show_default=True,
    type=float,
    help="seconds to wait until it accepts connections",
)
def postgres_start(data_dir: Path, port: int, timeout: float) -> None:
    """Start PostgreSQL in the background (creates the cluster on first use)."""
    url = start(data_dir, port=port, timeout_s=timeout)
    click.echo(f"postgres running at {url}; to use it: export RISKGRAPH_RESULTS_URL={url}")


@postgres.command("stop")
@_data_dir_option
def postgres_stop(data_dir: Path) -> None:
    """Stop the server started by `riskgraph postgres start`."""
    click.echo("postgres stopped" if stop(data_dir) else "postgres was not running")


@postgres.command("status")
@_data_dir_option
def postgres_status(data_dir: Path) -> None:
    """Say whether the local server is running (exit 0) or not (exit 1)."""
    st = status(data_dir)
    if st is None:
        click.echo(f"postgres not running (data dir {Path(data_dir).absolute()})")
        sys.exit(1)
    if not st["accepting"]:
        click.echo(
            f"postgres process {st['pid']} is alive ({st['state']}) but does not accept "
            f"connections on {HOST}:{st['port']} yet"
        )
        sys.exit(1)
    click.echo(f"postgres running (pid {st['pid']}) at {st['url']}")
