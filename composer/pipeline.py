"""The composer: the only place that runs the stages, for the `pipeline` command and every
scheduled job alike.

ingest -> store snapshot (staged) -> resolution (golden persons; SAME_PERSON links into the staged
snapshot) -> projection -> features -> rules ->
rings -> scores -> explanations -> outputs (staged) -> ONE commit (composer/runs.py). Rules and rings run in a forked
worker while the features build, and report.html is drawn in one while the other outputs are
written (riskgraph/forked.py): both cores, the same results. Nothing of a run is visible
before its commit; a failure anywhere leaves the served state as the last committed run left it.
"""

from __future__ import annotations

import logging
import platform
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

import riskgraph
from composer.alerts import build_alerts, carry_ring_ids, current_subjects
from composer.decided import apply_decided, start_resolving
from composer.engine_stages import monitoring_file, output_files, rings_grouped_by, rules_worker
from composer.engines import Engine, open_engine
from composer.governance import Challenger, audit_pipeline_promotions, pipeline_gate
from composer.labels import training_rows
from composer.monitoring import (
    keep_references,
    monitoring_inputs,
    raise_drift_alerts,
    run_profile,
    save_profile,
)
from composer.protect import protect_hits
from composer.resolution import (
    expand_scores,
    same_person_links,
    with_golden,
)
from composer.run_files import monitor_and_report, save_feature_matrices, stage_outputs, write_json, write_results
from composer.runs import SCORES_PARQUET, Run, preflight, private_dir, run_dir
from composer.supervision import SCHEMES_PARQUET, supervise
from explain.catalogue import Catalogue, built_in
from explain.context import reason_context
from explain.fairness import fairness_table
from explain.reasons import entity_reasons
from explain.report import model_plots
from features.build import build_features, reference_date
from features.graph_features import add_graph_features
from features.rings import NEEDS_HITS, RING_KINDS, RingResult, assemble_rings, find_rings
from features.signals import with_signals
from graph.contract import ENTITY_TYPES, PROTECTED_COLUMNS, TABLES, Level, column_level
from graph.dataset import Dataset
from graph.dictionary import ColumnLabel, load_dictionary
from graph.factory import field_cipher, masking_tokens, open_store
from graph.projection import Projection
from graph.resolve.model import load_libraries
from riskgraph.errors import NoSnapshot
from riskgraph.forked import Forked
from riskgraph.results import ResultsDB
from riskgraph.row_groups import ROW_GROUP_ROWS
from riskgraph.server_keys import Tokens
from riskgraph.settings import Settings
from rules.engine import RuleResult, evaluate
from rules.pack import DEFAULT_PACK_DIR, load_packs
from scoring.baseline import baseline_metrics
from scoring.registry import ModelRegistry
from scoring.score import (
    EntityScores,
    Modelled,
    RowScorer,
    champion_risk_of_challenger_matrix,
    finish_entity_type,
    model_entity_type,
)

log = logging.getLogger("composer.pipeline")
CATALOGUE_JSON = "catalogue.json"  # the run's reason catalogue, beside its feature matrices


class ModelSource(str, Enum):
    """Where a run's models come from."""

    FIT = "fit"  # fit new versions and promote them at the commit (the default)
    CHAMPION = "champion"  # score with each type's champion (fit only a type without one)
    CANDIDATE = "candidate"  # fit new versions, commit them as candidates; serve nothing new


@dataclass
class StageTimer:
    timings: dict[str, float] = field(default_factory=dict)
    worker: dict[str, float] = field(default_factory=dict)  # stages a forked worker ran beside these
    peak_mib: dict[str, int] = field(default_factory=dict)  # this process's peak RSS at each stage's end

    @contextmanager
    def stage(self, name: str, bar: tqdm) -> Iterator[None]:
        t0 = time.perf_counter()
        bar.set_description(name)
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        self.peak_mib[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        log.info("stage %s done in %.2fs (peak %d MiB)", name, self.timings[name], self.peak_mib[name])
        bar.update(1)


@dataclass
class PipelineResult:
    run_id: str
    dataset: Dataset
    scores: pd.DataFrame
    rule_hits: pd.DataFrame
    rings: pd.DataFrame
    models: dict[str, EntityScores]
    manifest: dict[str, Any]
    golden: Dataset | None = None  # the dataset the stages worked on: one person per human


STAGES = (
    "ingest",
    "read",
    "resolve",
    "projection",
    "features",
    "rules",
    "rings",
    "scoring",
    "explain",
    "monitoring",
    "outputs",
    "commit",
)


def run_pipeline(
    *,
    data: Path | None,
    out: Path | None,
    settings: Settings,
    store_url: str | None = None,
    models: ModelSource = ModelSource.FIT,
    kind: str = "pipeline",
    wait: bool = False,
    engine: str | None = None,
) -> PipelineResult:
    """One run, committed once. `data` None re-scores the served run's snapshot (the jobs);
    `out` None keeps the output files only in the run's folder under the home. `engine` (default:
    the `engine` setting) runs the stages on pandas or Spark (composer/engines/)."""
    url = store_url or settings.store
    folders = {"home": settings.home} | ({"output": out} if out is not None else {})
    preflight(folders, settings.min_free_bytes)
    db = ResultsDB.of(settings)
    store = open_store(url, settings)
    tokens = masking_tokens(settings)  # keyed pseudonyms of shared identifiers in ring evidence
    timer = StageTimer()
    bar = tqdm(total=len(STAGES), disable=not settings.progress, unit="stage", leave=False)
    stages: Engine | None = None
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-background")
    workers: list[Forked[Any]] = []  # stopped if the run fails before their results are taken
    serves = models is not ModelSource.CANDIDATE
    try:
        stages = open_engine(settings, engine)
        with Run(settings, db, store, kind=kind, serves=serves, wait=wait, out_dir=out) as run:
            with timer.stage("ingest", bar):
                # resolution on the second core as soon as the persons are read (while the rest is
                # read and this process stages the snapshot)
                early: list[Forked[Any]] = []
                try:
                    if data is not None:
                        loaded = stages.load_dataset(
                            data, lambda p: early.append(start_resolving(db, p, settings, run.run_id))
                        )
                        columns, content_hash, source = load_dictionary(data), loaded.content_hash, str(data)
                    else:
                        snapshot = _served_snapshot(db, store)
                        loaded, columns = store.dataset(snapshot.id), _served_catalogue(db, settings).columns
                        content_hash = snapshot.content_hash
                        source = f"snapshot {snapshot.id} of run {db.served_run_id()}"
                    decided = apply_decided(db, loaded)
                    if not early:
                        early.append(start_resolving(db, loaded, settings, run.run_id))
                    snapshot = store.stage(loaded) if data is not None else snapshot
                except BaseException:
                    for started in early:
                        started.cancel()
                    raise
                resolving = early[0]
                run.snapshot_id = snapshot.id if serves else None
                run.fault("after_ingest")
            with timer.stage("read", bar):
                if store.dataset(snapshot.id) is not loaded:  # the store's read-back (Neo4j) is what runs on
                    decided = apply_decided(db, store.dataset(snapshot.id))
                records, labels, label_conflicts = decided.records, decided.labels, decided.label_conflicts
            with timer.stage("resolve", bar):  # one node per human from here on (docs/resolution.md)
                load_libraries()  # while the worker runs: the next run's worker is forked with them
                resolved, timer.worker["resolve"] = resolving.result()
                golden = with_golden(records, resolved).golden
                assert golden is not None
                if data is not None:  # into the snapshot this run staged: visible with its commit only
                    resolved.summary["same_person_links"] = store.stage_same_person(
                        snapshot.id, same_person_links(resolved.records)
                    )
                run.fault("after_resolve")
                dataset = golden
            # rules, then the rings read from their hits, on the second core while the projection, the
            # features and the other rings are built here (with the Spark engine: here, first;
            # composer/engine_stages.py)
            signals = rules_worker(stages, _rules_and_their_rings, dataset, settings, tokens)
            try:
                with timer.stage("projection", bar):
                    proj = Projection(dataset)
                with timer.stage("features", bar):
                    excluded = model_excluded_columns(dataset, columns, settings.model.use_protected_attributes)
                    features = stages.features(dataset, proj, exclude=excluded)
                with timer.stage("rings", bar), rings_grouped_by(stages):
                    kinds = tuple(k for k in RING_KINDS if k not in WORKER_RING_KINDS)
                    found = find_rings(dataset, kinds, None, settings.rings, proj.column_codes.sharing_ids(), tokens)
            except BaseException:
                signals.cancel()
                raise
            with timer.stage("rules", bar):  # the wait for the worker
                rule_result, found_by_worker, worker = signals.result()
                ring_result = assemble_rings(dataset, found | found_by_worker, settings.rings)
                # the official schemes beside the model: their outcomes, and the caps the policy sets
                rule_result, outcomes, policy = supervise(dataset, rule_result, db, reference_date(dataset))
                # rings keep the ids of the served run's rings they continue (docs/cases.md)
                previous = _served_alert_tables(db) if serves else {}
                ring_result, lineage = carry_ring_ids(ring_result, previous.get("ring_members"), settings.alerts)
            timer.worker |= worker
            with timer.stage("scoring", bar):
                registry = ModelRegistry(db)
                # a label's training row as the data stood at its as_of (nothing after the decision)
                then = training_rows(
                    dataset,
                    dataset.tables.get("labels", labels),  # as named on golden persons
                    lambda cut: model_matrices(cut, settings, excluded, tokens),
                    settings.model.label_max_cuts,
                    settings.model.label_cut_lanes,
                    timer.worker,
                )
                # a `fit` run's new versions meet their champions' gate before they are finished
                through_the_gate = (
                    (lambda fitted: pipeline_gate(registry, fitted)) if models is ModelSource.FIT else None
                )
                scored = score_types(
                    dataset,
                    proj,
                    features,
                    rule_result,
                    ring_result,
                    settings,
                    registry,
                    run_id=run.run_id,
                    use_champion=models is ModelSource.CHAMPION,
                    training=then,
                    scorer=stages,
                    gate=through_the_gate,
                )
                gated = {t: m.promotion for t, m in scored.items() if m.promotion is not None}
                # a retraining run's candidates, shadow-scored against the champions on this run
                shadow = pipeline_gate(registry, _fitted(scored)) if models is ModelSource.CANDIDATE else {}
                # report.html's figures (its slowest part) on the second core during the explanations;
                # forked before the baselines' thread starts
                plots = Forked(model_plots, scored, name="plots") if serves else None
                if plots is not None:
                    workers.append(plots)
                # the attribute-only baseline beside each supervised model, for report.html: in a
                # thread during the explanations (LightGBM must not train in a forked worker, its
                # OpenMP pool does not survive a fork); taken before the report's worker is forked
                supervised = [t for t, m in scored.items() if m.kind == "supervised"]
                baselines_later = background.submit(
                    lambda: {t: baseline_metrics(dataset, t, settings.model) for t in supervised}
                )
                run.fault("after_scoring")
            with timer.stage("explain", bar):
                catalogue = run_catalogue(rule_result, columns)
                explain_types(scored, dataset, proj, rule_result, ring_result, settings, catalogue)
                golden_scores = pd.concat([m.table for m in scored.values()], ignore_index=True)
                scores = expand_scores(golden_scores, resolved.records)  # keyed by person_id again
                subjects, items = current_subjects(
                    ring_result, rule_result.hits, golden_scores, rule_result.serious, settings.alerts
                )
                alerts, alert_items = build_alerts(
                    subjects,
                    items,
                    previous.get("alerts"),
                    previous.get("alert_items"),
                    settings.alerts,
                    run_id=run.run_id,
                    now=run_started_at(run.run_id),
                )
            with timer.stage("monitoring", bar):
                # drift against the served run and the training populations: what it compares with
                # is read here; the comparison runs beside the report on the second core
                monitoring: dict[str, Any] | None = None
                compare_with = monitoring_inputs(settings, db, registry, scored) if serves else None
                if not serves:  # a retraining run: only its candidates' training references
                    keep_references(registry, scored, run_profile(scored, rule_result.hits))
            manifest = {
                "run_id": run.run_id,
                "kind": kind,
                "models_from": models.value,
                "riskgraph_version": riskgraph.__version__,
                "input": source,
                "input_hash": content_hash,
                "store": _redact(url),
                "snapshot_id": snapshot.id,
                "snapshot_loaded_at": snapshot.loaded_at.isoformat(),
                "row_counts": records.row_counts(),
                "resolution": resolved.summary,
                "amendments": {"applied": decided.amendments_applied, "not_applied": decided.amendment_notes},
                "labels": {
                    "from_file": int((labels["source"] == "labels.csv").sum()),
                    "from_cases": int((labels["source"] == "case").sum()),
                    "conflicts": label_conflicts.to_dict("records"),
                    # training rows built from the data as it stood at their label's as_of
                    "point_in_time_rows": {t: len(rows) for t, rows in then.items()},
                },
                "skipped": dataset.skipped + [f"rule {r}: {why}" for r, why in rule_result.skipped],
                "models": {
                    t: {"version": m.model_version, "kind": m.kind, "fitted": m.fitted, "metrics": m.public_metrics()}
                    for t, m in scored.items()
                },
                "promotion": gated,
                "shadow": shadow,
                "bands": settings.bands.model_dump(),
                "schemes": sorted(f"{n} {v}" for n, v in set(zip(outcomes["scheme"], outcomes["scheme_version"]))),
                "policy": f"{policy.id} {policy.version}" if policy else None,
                "scorecard": settings.scorecard.model_dump(),
                "python": platform.python_version(),
                "engine": stages.describe(),
            }
            tables: list[str] = []
            with timer.stage("outputs", bar):
                baselines = baselines_later.result()
                if serves:
                    assert plots is not None
                    figures = plots.result()
                    staging = private_dir(run.out_staging or run.folder / "out")
                    # report.html (plots: the slowest file) on the second core while the rest is written
                    report = Forked(
                        monitor_and_report,
                        staging / "report.html",
                        scores,
                        scored,
                        ring_result,
                        manifest,
                        settings,
                        fairness_table(dataset, golden_scores, reference_date(dataset)),
                        baselines,
                        compare_with,
                        rule_result.hits,
                        figures,
                        name="report",
                    )
                    written: Forked[None] | None = None
                    matrices: Future[None] | None = None
                    try:
                        kept = private_dir(run.folder / "features")
                        scores.to_parquet(kept / SCORES_PARQUET, index=False, row_group_size=ROW_GROUP_ROWS)
                        outcomes.to_parquet(kept / SCHEMES_PARQUET, index=False)
                        (kept / CATALOGUE_JSON).write_text(catalogue.to_json(), encoding="utf-8")
                        run.fault("stage_outputs")
                        # personal values in rule evidence (a diagnosis, ...) encrypted before any write
                        hits = protect_hits(rule_result.hits, field_cipher(settings))
                        files = output_files(scores, hits, ring_result, resolved, stages)
                        written = Forked(stage_outputs, staging, files, name="output files")  # beside the database
                        # the model matrices (Parquet, mostly outside the GIL) in a thread beside the database
                        # writes, started after the stage's last fork (a fork must not copy a running thread)
                        matrices = background.submit(save_feature_matrices, kept, scored)
                        outcomes.drop(columns=["evidence"]).to_csv(staging / "schemes.csv", index=False)
                        write_results(db, run, scores, hits, ring_result, tables)
                        for name, frame in (
                            ("alerts", alerts),
                            ("alert_items", alert_items),
                            ("ring_lineage", lineage),
                            ("labels", labels.assign(as_of=labels["as_of"].dt.strftime("%Y-%m-%d"))),
                            ("label_conflicts", label_conflicts),
                        ):
                            tables.append(db.write_run_table(run.run_id, name, frame))
                        written.result()
                        matrices.result()
                        profile, monitoring, timings = report.result()
                        timer.worker |= timings
                        keep_references(registry, scored, profile)
                        save_profile(kept, profile, monitoring)
                        stage_outputs(staging, monitoring_file(monitoring))
                    except BaseException:
                        report.cancel()
                        if written is not None:
                            written.cancel()
                        if matrices is not None:
                            wait_for([matrices])  # no thread writes into the run's folder once it fails
                        raise
            manifest["timings_s"] = timer.timings
            manifest["worker_timings_s"] = timer.worker
            manifest["peak_rss_mib"] = timer.peak_mib
            if serves:
                write_json(run.out_staging or run.folder / "out", "manifest.json", manifest)
            with timer.stage("commit", bar):
                promoted = {
                    t: m.model_version
                    for t, m in scored.items()
                    if m.model_version and (m.fitted and models is ModelSource.FIT or registry.champion(t) is None)
                }
                run.commit(
                    manifest=manifest,
                    tables=tables,
                    champions=_champions(scored) if serves else {},
                    promote=promoted,
                )
        if monitoring is not None:
            raise_drift_alerts(db, monitoring)
        audit_pipeline_promotions(db, run.run_id, gated, kind, promoted)
        manifest["timings_s"] = timer.timings
        return PipelineResult(
            run.run_id, records, scores, rule_result.hits, ring_result.members, scored, manifest, golden=dataset
        )
    finally:
        background.shutdown(wait=False, cancel_futures=True)
        for child in workers:
            child.cancel()
        bar.close()
        store.close()
        if stages is not None:
            stages.close()


def score_types(
    dataset: Dataset,
    proj: Projection,
    features: dict[str, pd.DataFrame],
    rule_result: RuleResult,
    ring_result: RingResult,
    settings: Settings,
    registry: ModelRegistry,
    *,
    run_id: str | None = None,
    use_champion: bool = False,
    types: Sequence[str] = ENTITY_TYPES,
    training: dict[str, pd.DataFrame] | None = None,
    scorer: RowScorer | None = None,
    gate: Callable[[dict[str, Challenger]], dict[str, dict[str, Any]]] | None = None,
) -> dict[str, EntityScores]:
    """Each entity type scored from its model matrix (features, then rule and ring signals);
    `scorer` (a stage engine) scores the rows.

    With `gate` (composer/governance.py `pipeline_gate`), each version this run trained for a
    type that has a champion goes through the gate between scoring's two phases: a refused
    version is never finished (no reasons, grades or triage), its champion's scoring of the run
    is. Where both are trained models the champion scores the run before the gate, whose score
    PSI compares the two on the same rows. Each type's decision is its `promotion`."""
    hits, members = rule_result.hits, ring_result.members

    def modelled(t: str, X: pd.DataFrame, champion: bool, every_label: pd.DataFrame | None = None) -> Modelled:
        return model_entity_type(
            t,
            X=X,
            dataset=dataset,
            proj=proj,
            rings=members,
            settings=settings,
            registry=registry,
            run_id=run_id,
            use_champion=champion,
            training_rows=(training or {}).get(t),
            scorer=scorer,
            every_label=every_label,
        )

    # each type's matrix, kept for its champion only where a gate may need one
    matrices, phase = {}, {}
    for t in types:
        X = with_signals(features[t], hits, members, t)
        phase[t] = modelled(t, X, use_champion)
        if gate is not None:
            matrices[t] = X
    decisions: dict[str, dict[str, Any]] = {}
    if gate is not None:
        challengers, champions = {}, {}
        for t, m in phase.items():
            record = registry.champion(t) if m.fitted and m.version else None
            if record is None:
                continue
            risk_of_champion = None
            if record.kind == m.kind == "supervised":
                champions[t] = modelled(t, matrices[t], True, m.every_label)
                risk_of_champion = champion_risk_of_challenger_matrix(champions[t], m)
            challengers[t] = Challenger(m.version, m.X, m.model_risk, risk_of_champion)
        decisions = gate(challengers)
        for t, decision in decisions.items():
            if not decision["promoted"]:  # the champion keeps serving
                phase[t] = champions.get(t) or modelled(t, matrices[t], True, phase[t].every_label)
        del matrices, champions
    scored = {
        t: finish_entity_type(
            m,
            dataset=dataset,
            proj=proj,
            hits=hits,
            settings=settings,
            serious=rule_result.serious,
            money=rule_result.money,
            scorer=scorer,
        )
        for t, m in phase.items()
    }
    for t, decision in decisions.items():
        scored[t].promotion = decision
    return scored


def model_matrices(dataset: Dataset, settings: Settings, excluded: set[str], tokens: Tokens) -> dict[str, pd.DataFrame]:
    """Every type's model matrix (features, rule and ring signals) of a dataset, as the stages
    build it: for the labels' point-in-time rows (the data cut at an as_of, composer/labels.py)."""
    proj = Projection(dataset)
    features = add_graph_features(build_features(dataset, proj, exclude=excluded), proj)
    rule_result = evaluate_rules(dataset, settings)
    found = find_rings(dataset, RING_KINDS, rule_result.hits, settings.rings, proj.column_codes.sharing_ids(), tokens)
    members = assemble_rings(dataset, found, settings.rings).members
    return {t: with_signals(features[t], rule_result.hits, members, t) for t in ENTITY_TYPES}


def run_catalogue(rule_result: RuleResult, columns: dict[str, ColumnLabel] | None = None) -> Catalogue:
    """The reason catalogue of a run: the built-in wording, the run's rules, the data dictionary."""
    rules = {rid: (rule_result.codes.get(rid, f"RG-R-{rid}"), en, zh) for rid, (en, zh) in rule_result.titles.items()}
    return built_in().for_run(rules=rules, columns=columns or {})


def protected_columns(columns: dict[str, ColumnLabel]) -> set[str]:
    """Input columns at the sensitive_personal level: the contract's (gender, birth_date,
    diagnosis) and those the data dictionary classifies so."""
    return set(PROTECTED_COLUMNS) | {c for c, label in columns.items() if label.level is Level.SENSITIVE}


def model_excluded_columns(dataset: Dataset, columns: dict[str, ColumnLabel], use_sensitive: bool = False) -> set[str]:
    """Input columns kept out of the models, by their level (graph/contract.py `Level`): personal
    ones always (the contract's are skipped by the features themselves; an extra column the data
    dictionary declares personal), sensitive_personal ones unless `use_sensitive` (the
    `model.use_protected_attributes` setting). An extra column the dictionary does not classify
    is protected like personal data at rest and in answers, but stays a model feature, as the
    data contract promises for extra attributes (docs/data-contract.md)."""
    barred = {Level.PERSONAL} | (set() if use_sensitive else {Level.SENSITIVE})
    out = set() if use_sensitive else set(PROTECTED_COLUMNS)
    for name, df in dataset.tables.items():
        table = TABLES.get(name)
        if table is None or table.entity_type is None:
            continue
        for col in map(str, df.columns):
            label = columns.get(col)
            declared = label.level if label else None
            level = column_level(name, col, declared)
            # unclassified extras stay features unless their name says sensitive
            if table.column(col) is None and (declared is not None or level is Level.SENSITIVE) and level in barred:
                out.add(col)
    return out


def _served_catalogue(db: ResultsDB, settings: Settings) -> Catalogue:
    """The served run's catalogue (its data dictionary), for runs that re-score its snapshot."""
    run_id = db.served_run_id()
    path = run_dir(settings, run_id) / "features" / CATALOGUE_JSON if run_id else None
    if path is not None and path.exists():
        return Catalogue.from_json(path.read_text(encoding="utf-8"))
    return built_in()


def explain_types(
    scored: dict[str, EntityScores],
    dataset: Dataset,
    proj: Projection,
    rule_result: RuleResult,
    ring_result: RingResult,
    settings: Settings,
    catalogue: Catalogue | None = None,
) -> None:
    """Fill each type's reasons column: words for the explained rows' contributions, with their
    ring and same-day-partner context, in the run's catalogue (by default: its rules' titles)."""
    catalogue = catalogue or run_catalogue(rule_result)
    for t, m in scored.items():
        if m.contributions is None:
            continue
        context = reason_context(dataset, proj, t, m.contributions.index, ring_result.members)
        m.table["reasons"] = entity_reasons(m, context, catalogue, settings.model.reasons_per_entity).to_numpy()


def _served_snapshot(db: ResultsDB, store: Any) -> Any:
    """The store snapshot of the served run (what the jobs re-score)."""
    run_id = db.served_run_id()
    run = db.run(run_id) if run_id else None
    if run is None or not run["snapshot_id"]:
        raise NoSnapshot("nothing is served yet: run `riskgraph pipeline --data DIR --out DIR` first")
    info = store.snapshot(run["snapshot_id"])
    if info is None:
        raise NoSnapshot(f"the served run {run_id}'s snapshot {run['snapshot_id']} is missing from the store")
    return info


ALERT_TABLES = ("ring_members", "alerts", "alert_items")  # what a run reads of the served run's results


def _served_alert_tables(db: ResultsDB) -> dict[str, pd.DataFrame]:
    """The served run's ring members, alerts and alert items (empty before the first run)."""
    run_id = db.served_run_id()
    if run_id is None:
        return {}
    return {name: db.read_run_table(run_id, name) for name in ALERT_TABLES}


def run_started_at(run_id: str) -> str:
    """A run's start time (ISO, UTC, to the second), read from its time-ordered id."""
    return datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC).isoformat(timespec="seconds")


def _fitted(scored: dict[str, EntityScores]) -> dict[str, Challenger]:
    """The versions this run trained, with the model matrix they scored and their risk of it."""
    return {
        t: Challenger(m.model_version, m.matrix, m.model_risk)
        for t, m in scored.items()
        if m.fitted and m.model_version and m.matrix is not None
    }


def _champions(scored: dict[str, EntityScores]) -> dict[str, str]:
    """The champion of each type while this run is served (what a rollback restores)."""
    return {t: m.model_version for t, m in scored.items() if m.model_version}


WORKER_RING_KINDS = NEEDS_HITS + ("broker",)  # found by the rules worker (balances the two cores)


def _rules_and_their_rings(
    dataset: Dataset, settings: Settings, tokens: Tokens
) -> tuple[RuleResult, dict[str, Any], dict[str, float]]:
    """The rule hits, then the rings read from them (and the broker rings), with their times."""
    t0 = time.perf_counter()
    rule_result = evaluate_rules(dataset, settings)
    t1 = time.perf_counter()
    found = find_rings(dataset, WORKER_RING_KINDS, rule_result.hits, settings.rings, tokens=tokens)
    return rule_result, found, {"rules": round(t1 - t0, 3), "rings": round(time.perf_counter() - t1, 3)}


def evaluate_rules(dataset: Dataset, settings: Settings) -> RuleResult:
    """Run the configured rule packs with the settings' overrides and disabled rules."""
    packs = load_packs(settings.rule_packs or DEFAULT_PACK_DIR)
    return evaluate(dataset, packs, overrides=settings.rule_overrides, disabled=settings.rules_disabled)


def _redact(url: str) -> str:
    """A store URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
