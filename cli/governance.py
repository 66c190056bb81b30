"""`riskgraph replay`: past decisions reprinted exactly (model governance from the command line)."""

from __future__ import annotations

import click

from riskgraph.settings import Settings

pass_settings = click.make_pass_decorator(Settings, ensure=True)


@click.command("replay")
@click.argument("decision_id")
@pass_settings
def replay(settings: Settings, decision_id: str) -> None:
    """Print the credit answer sent under DECISION_ID, byte-identical apart from `replayed_at`
    (while its run is retained: RISKGRAPH_RETENTION_RUNS). The replay is audited."""
    from api.audit import AuditWriter
    from api.replay import Replayer, find_decision
    from riskgraph.results import ResultsDB

    db = ResultsDB.of(settings)
    body = Replayer(settings, db).replay(decision_id)
    decision = find_decision(db, decision_id)
    db.append_audit(
        [
            AuditWriter.row(
                actor="cli",
                role="admin",
                action="replay",
                entity_type=decision.entity_type,
                entity_id=decision.entity_id,
                model_version=decision.model_version,
                grade=decision.grade,
                decision_id=decision_id,
                run_id=decision.run_id,
            )
        ]
    )
    click.echo(body.decode())
