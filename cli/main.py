"""The `riskgraph` command: one group, one subcommand per job."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from riskgraph import faults
from riskgraph.errors import RiskGraphError
from riskgraph.settings import Settings


class _Group(click.Group):
    """Turns domain errors into one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RiskGraphError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:  # a full or read-only disk met mid-run: the run was not committed
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}; the served state is unchanged", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.pass_context
def cli(ctx: click.Context, log_level: str) -> None:
    """RiskGraph: graph-based credit grading and fraud detection."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.umask(0o077)  # everything a command writes (personal data included) is private to its user
    ctx.obj = Settings()
    faults.check(ctx.obj.fault)


pass_settings = click.make_pass_decorator(Settings)


@cli.command()
@click.option("--data", "data", required=True, type=click.Path(path_type=Path), help="dataset folder (CSV/Parquet)")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="output folder")
@click.option("--store", "store", default=None, help="graph store URL (default memory://<home>/store)")
@click.option(
    "--models",
    "models",
    default="fit",
    show_default=True,
    type=click.Choice(["fit", "champion", "candidate"]),
    help="fit new models and promote them, score with the champions, or fit candidates only",
)
@click.option("--wait", is_flag=True, help="wait for a run holding the home instead of refusing")
@click.option(
    "--engine",
    "engine",
    default=None,
    type=click.Choice(["pandas", "spark"]),
    help="stage engine (default: the engine setting, pandas); spark: see docs/scale.md",
)
@click.option(
    "--refit-resolution",
    is_flag=True,
    help="fit the person-resolution model again instead of reusing the served run's (docs/resolution.md)",
)
@pass_settings
def pipeline(
    settings: Settings,
    data: Path,
    out: Path,
    store: str | None,
    models: str,
    wait: bool,
    engine: str | None,
    refit_resolution: bool,
) -> None:
    """Ingest, features, rules, rings, train, score and write the outputs, committed as one run."""
    from composer.pipeline import ModelSource, run_pipeline

    if refit_resolution:
        settings = settings.model_copy(update={"resolve_refit": True})

    result = run_pipeline(
        data=data, out=out, settings=settings, store_url=store, models=ModelSource(models), wait=wait, engine=engine
    )
    m = result.manifest
    click.echo(
        f"run {result.run_id} committed: scored {len(result.scores):,} entities, "
        f"{len(result.rule_hits):,} rule hits, "
        f"{result.rings['ring_id'].nunique() if len(result.rings) else 0:,} rings -> {out}"
    )
    from scoring.disclosure import withheld

    for t, info in m["models"].items():
        auc = info["metrics"].get("roc_auc")
        what = "OOF ROC-AUC" if info["kind"] == "supervised" else "ROC-AUC on its labels"
        shown = withheld(info["metrics"]) or (f"{what} {auc:.3f}" if auc is not None else "")
        click.echo(f"  {t:9s} {info['kind']:12s} {info['version'] or '-':40s} {shown}")
    for t, d in (m.get("shadow") or {}).items():
        psi = d["gate"]["figures"].get("score_psi")
        click.echo(
            f"  {t}: candidate {d['challenger']} shadow-scored against {d['champion']}"
            + (f" (score PSI {psi:.3f})" if psi is not None else "")
            + (
                ": the gate would accept it"
                if d["promoted"]
                else f": the gate would refuse it ({'; '.join(d['gate']['problems'])})"
            )
        )
    for t, d in (m.get("promotion") or {}).items():
        if not d["promoted"]:
            click.echo(
                f"  {t}: {d['champion']} stays champion; the gate refused {d['challenger']} "
                f"({'; '.join(d['gate']['problems'])}): `riskgraph models compare` / `models promote --force-reason`"
            )
    total = sum(m["timings_s"].values())
    beside = m.get("worker_timings_s") or {}
    also = (
        f"; beside them on the second core: {', '.join(f'{k} {v:.1f}s' for k, v in beside.items())}" if beside else ""
    )
    click.echo(f"  done in {total:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in m['timings_s'].items())}{also})")


@cli.command()
@click.option("--persons", required=True, type=click.IntRange(min=50), help="number of persons")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path))
@click.option(
    "--label-share",
    default=0.3,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="share of the truth given as labels (past investigations)",
)
@click.option(
    "--difficulty",
    default="standard",
    show_default=True,
    type=click.Choice(["standard", "realistic"]),
    help="realistic: camouflage, weaker signals, wrong and late labels, drift, lawful look-alikes (synth/realistic.py)",
)
@pass_settings
def synth(settings: Settings, persons: int, seed: int, out: Path, label_share: float, difficulty: str) -> None:
    """Generate a synthetic dataset with planted fraud; the whole truth goes to OUT/truth/."""
    from synth.generator import generate

    counts = generate(
        persons=persons, seed=seed, out=out, label_share=label_share, progress=settings.progress, difficulty=difficulty
    )
    click.echo(f"wrote {sum(counts.values()):,} rows to {out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


@cli.command()
@click.option("--store", "store", default=None, help="graph store URL")
@click.option("--host", default=None, help="default 127.0.0.1")
@click.option("--port", default=None, type=int, help="default 8000")
@pass_settings
def serve(settings: Settings, store: str | None, host: str | None, port: int | None) -> None:
    """Serve the HTTP API and pages (default http://127.0.0.1:8000)."""
    import uvicorn

    from api.app import create_app

    settings = settings.model_copy(
        update={"store_url": store or settings.store, "host": host or settings.host, "port": port or settings.port}
    )
    from api.http_limits import HeaderLimitedProtocol

    app = create_app(settings)
    click.echo(f"serving on http://{settings.host}:{settings.port}/", err=True)
    # request heads over api_max_header_bytes get 431 before uvicorn parses them (api/http_limits.py)
    http = HeaderLimitedProtocol.configure(settings.api_max_header_bytes)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", http=http)


@cli.group()
def neo4j() -> None:
    """A local Neo4j server for development and tests."""


def _neo4j_home(settings: Settings) -> Path:
    return settings.home / "neo4j"


@neo4j.command("start")
@click.option("--port", default=7687, show_default=True, type=int)
@click.option("--password", default=None, help="require this password (default: auth off)")
@click.option("--timeout", default=240.0, show_default=True, type=float, help="seconds to wait for Bolt")
@pass_settings
def neo4j_start(settings: Settings, port: int, password: str | None, timeout: float) -> None:
    """Start Neo4j in the background (fetches its classpath once)."""
    from graph import neo4j_server

    st = neo4j_server.start(_neo4j_home(settings), port=port, password=password, timeout_s=timeout)
    click.echo(f"neo4j running (pid {st.pid}) at {st.bolt_url}")


@neo4j.command("stop")
@pass_settings
def neo4j_stop(settings: Settings) -> None:
    """Stop the server started by `riskgraph neo4j start`."""
    from graph import neo4j_server

    click.echo("neo4j stopped" if neo4j_server.stop(_neo4j_home(settings)) else "neo4j was not running")


@neo4j.command("status")
@click.option("--port", default=7687, show_default=True, type=int)
@pass_settings
def neo4j_status(settings: Settings, port: int) -> None:
    """Say whether the local server is running."""
    from graph import neo4j_server

    st = neo4j_server.status(_neo4j_home(settings), port=port)
    click.echo(st.message)
    sys.exit(0 if st.running else 1)


@cli.group()
def models() -> None:
    """The model registry."""


@models.command("list")
@click.option("--entity-type", default=None)
@pass_settings
def models_list(settings: Settings, entity_type: str | None) -> None:
    """Every model version, newest first (* = champion)."""
    from riskgraph.results import ResultsDB
    from scoring.disclosure import withheld
    from scoring.registry import ModelRegistry

    for r in ModelRegistry(ResultsDB.of(settings)).list(entity_type):
        auc = r.metrics.get("roc_auc")
        shown = withheld(r.metrics) or (f"ROC-AUC {auc:.3f}" if auc is not None else "")
        click.echo(
            f"{'*' if r.champion else ' '} {r.version:42s} {r.entity_type:9s} {r.kind:12s} {r.created_at}  {shown}"
        )


@models.command("show")
@click.argument("version")
@pass_settings
def models_show(settings: Settings, version: str) -> None:
    """One model version's record as JSON."""
    from dataclasses import asdict

    from riskgraph.results import ResultsDB
    from scoring.registry import ModelRegistry

    rec = ModelRegistry(ResultsDB.of(settings)).get(version)
    click.echo(json.dumps(asdict(rec), indent=2, ensure_ascii=False, default=str))


@models.command("promote")
@click.argument("version")
@click.option("--force-reason", default=None, help="promote although the gate refuses, for this stated reason")
@pass_settings
def models_promote(settings: Settings, version: str, force_reason: str | None) -> None:
    """Make VERSION the champion of its entity type, through the promotion gate (audited)."""
    from composer.governance import promote
    from riskgraph.results import ResultsDB

    done = promote(settings, ResultsDB.of(settings), version, actor="cli", role="admin", force_reason=force_reason)
    _say_promoted(done)


@models.command("rollback")
@click.argument("entity_type")
@click.option("--force-reason", default=None, help="roll back although the gate refuses, for this stated reason")
@pass_settings
def models_rollback(settings: Settings, entity_type: str, force_reason: str | None) -> None:
    """Make the previous ENTITY_TYPE champion the champion again, through the gate (audited)."""
    from composer.governance import rollback
    from riskgraph.results import ResultsDB

    done = rollback(settings, ResultsDB.of(settings), entity_type, actor="cli", role="admin", force_reason=force_reason)
    _say_promoted(done)


@models.command("compare")
@click.argument("champion")
@click.argument("challenger")
@pass_settings
def models_compare(settings: Settings, champion: str, challenger: str) -> None:
    """Two versions side by side on the served run (metrics, score PSI, grade migration, gate) as JSON."""
    from composer.governance import compare
    from riskgraph.results import ResultsDB

    report = compare(settings, ResultsDB.of(settings), champion=champion, challenger=challenger)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False, default=str))


def _say_promoted(done: dict[str, Any]) -> None:
    click.echo(f"{done['version']} is now the {done['entity_type']} champion (was {done['previous'] or '-'})")
    if done["forced"]:
        click.echo(f"  forced past the gate: {'; '.join(done['gate']['problems'])}; reason: {done['forced']}")
    for w in done["warnings"]:
        click.echo(f"  warning: {w}", err=True)


@cli.group()
def rules() -> None:
    """Rule packs: list them, try them on a dataset."""


@rules.command("list")
@pass_settings
def rules_list(settings: Settings) -> None:
    """Every rule of the configured packs, with pack version and thresholds."""
    from rules.catalog import list_rules
    from rules.pack import DEFAULT_PACK_DIR

    table = list_rules(settings.rule_packs or DEFAULT_PACK_DIR)
    cols = ["pack", "version", "rule_id", "entity_type", "severity_level", "grade_cap", "enabled", "title_en"]
    click.echo(table[cols].to_string(index=False))


@rules.command("test")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path))
@pass_settings
def rules_test(settings: Settings, data: Path) -> None:
    """Hits per rule on a dataset folder (nothing is stored)."""
    from graph.dataset import load_dataset
    from rules.catalog import test_rules
    from rules.pack import DEFAULT_PACK_DIR, load_packs

    table = test_rules(
        load_dataset(data),
        load_packs(settings.rule_packs or DEFAULT_PACK_DIR),
        overrides=settings.rule_overrides,
        disabled=settings.rules_disabled,
    )
    click.echo(table.to_string(index=False))


@cli.command("rings")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", default=None, type=click.Path(path_type=Path), help="write rings.csv here")
@pass_settings
def rings_cmd(settings: Settings, data: Path, out: Path | None) -> None:
    """Detect rings in a dataset folder and print a summary (the rules run first: facility
    rings read their hits)."""
    from composer.pipeline import evaluate_rules
    from features.rings import detect_rings
    from graph.dataset import load_dataset

    dataset = load_dataset(data)
    result = detect_rings(dataset, evaluate_rules(dataset, settings).hits, settings.rings)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        result.members[["ring_id", "ring_type", "ring_score", "entity_type", "entity_id"]].to_csv(out, index=False)
    cols = [c for c in ("ring_id", "ring_type", "ring_score", "size", "money_at_stake", "why") if c in result.rings]
    click.echo(f"{len(result.rings)} rings")
    if len(result.rings):
        click.echo(result.rings.sort_values("ring_score", ascending=False)[cols].head(30).to_string(index=False))


@cli.group()
def lists() -> None:
    """List exchange with the national credit platform (docs/credit-policy.md)."""


@lists.command("export")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="FILE.csv or FILE.json")
@click.option("--authority", default="", help="who lists (written in each entry)")
@pass_settings
def lists_export(settings: Settings, out: Path, authority: str) -> None:
    """The served run's serious-discredit list entries and scheme grades (audited)."""
    from composer.supervision import export_served_lists

    n = export_served_lists(settings, out, authority=authority)
    click.echo(f"exported {n:,} entries -> {out}")


@lists.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--authority", default="", help="who listed them, for entries that do not say")
@pass_settings
def lists_import(settings: Settings, file: Path, authority: str) -> None:
    """Validate and store an exchange file, all or nothing (audited); the next run reads it."""
    from composer.supervision import import_lists
    from riskgraph.results import ResultsDB

    import_id, n = import_lists(ResultsDB.of(settings), file, actor="cli", role="admin", authority=authority)
    click.echo(f"imported {n:,} entries as {import_id}; they take effect at the next run")


@cli.group()
def runs() -> None:
    """Committed runs: list them, serve an earlier one again."""


@runs.command("list")
@click.option("--all", "show_all", is_flag=True, help="failed and expired runs too")
@pass_settings
def runs_list(settings: Settings, show_all: bool) -> None:
    """Runs, newest first (* = served)."""
    from riskgraph.results import ResultsDB

    db = ResultsDB.of(settings)
    served = db.served_run_id()
    for r in db.runs():
        if not show_all and r["status"] not in ("committed", "running"):
            continue
        click.echo(
            f"{'*' if r['run_id'] == served else ' '} {r['run_id']:24s} {r['kind']:16s} {r['status']:10s} "
            f"started {r['started_at']}  committed {r['committed_at'] or '-'}  "
            f"snapshot {r['snapshot_id'] or '-'}{'  ' + (r['message'] or '')[:80] if show_all else ''}"
        )


@runs.command("rollback")
@click.argument("run_id")
@click.option("--wait", is_flag=True, help="wait for a run holding the home instead of refusing")
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(path_type=Path),
    help="restore the run's output files here (default: where the run wrote them)",
)
@click.option("--store", "store", default=None, help="graph store URL (default: the settings' store)")
@pass_settings
def runs_rollback(settings: Settings, run_id: str, wait: bool, out: Path | None, store: str | None) -> None:
    """Serve the retained run RUN_ID again (results, store snapshot, champions, output files)."""
    from composer.runs import rollback
    from graph.factory import open_store
    from riskgraph.results import ResultsDB

    graph = open_store(store or settings.store, settings)
    try:
        run = rollback(settings, ResultsDB.of(settings), graph, run_id, wait=wait, out=out)
    finally:
        graph.close()
    click.echo(
        f"run {run['run_id']} is served again (snapshot {run['snapshot_id']}, "
        f"outputs restored in {out or run['out_dir'] or '-'})"
    )


def _add_jobs() -> None:
    from cli.audit import audit
    from cli.governance import replay
    from cli.jobs import jobs
    from cli.keys import keys
    from cli.postgres import postgres

    cli.add_command(audit)
    cli.add_command(jobs)
    cli.add_command(keys)
    cli.add_command(postgres)
    cli.add_command(replay)


_add_jobs()


def main() -> None:
    cli(prog_name="riskgraph")


if __name__ == "__main__":
    main()
