"""Scheduled jobs, registered in one place (`JOBS`) with explicit ids: nightly re-scoring with
the champion models, weekly retraining (new candidate versions, never promoted here) and ring
refresh. `JobRunner` runs them without overlap; `build_scheduler` schedules them (APScheduler
3.x, job store persisted in the results database)."""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import sqlalchemy as sa

from api.errors import JobAlreadyRunning, UnknownJob
from explain.reasons import reasons_from_contributions
from features.build import build_features
from features.graph_features import add_graph_features
from features.rings import RingResult, detect_rings
from graph.contract import ENTITY_TYPES
from graph.dataset import Dataset
from graph.factory import open_store
from graph.projection import Projection
from riskgraph.pipeline import evaluate_rules, save_feature_matrices
from riskgraph.results import ResultsDB, jobs_table, now_iso
from riskgraph.settings import Settings
from scoring.grades import apply_caps, credit_points, grades
from scoring.registry import ModelRecord, ModelRegistry
from scoring.score import EntityScores, score_entity_type

log = logging.getLogger("riskgraph.api.jobs")


# -- the jobs -----------------------------------------------------------------------------------

def rescore(settings: Settings) -> str:
    """Re-run features, rules, rings and scoring on the store's current snapshot with the champion
    models (no new versions unless a type has no champion yet) and replace the served results."""
    db = ResultsDB(settings.results_database_url)
    registry = ModelRegistry(db)
    dataset = _current_dataset(settings)
    rules, rings, models = _score(dataset, settings, _ScratchRegistry(db))
    tables = []
    for t, es in models.items():
        if es.table.empty:
            continue
        champ = registry.champion(t)
        if champ is None:  # first model of this type: register it like the pipeline does
            champ = registry.register(entity_type=t, kind=es.kind, data_hash=dataset.content_hash,
                                      features=list(es.matrix.columns) if es.matrix is not None else [],
                                      params={}, metrics=es.metrics, model=es.model, promote=True)
        tables.append(_with_champion(es, champ, registry.load(champ.version) if champ.kind == "supervised" else None,
                                     settings))
    scores = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    manifest = {"job": "rescore", "scored_at": now_iso(), "input_hash": dataset.content_hash,
                "models": {t: es.kind for t, es in models.items()}}
    save_feature_matrices(settings.home / "features", models)
    db.replace_results({"scores": scores, "rule_hits": rules.hits, "rings": rings.rings,
                        "ring_members": rings.members, "ring_edges": rings.edges,
                        "runs": pd.DataFrame([{"manifest": json.dumps(manifest)}])})
    return f"rescored {len(scores)} entities with {len(tables)} champion models"


def retrain(settings: Settings) -> str:
    """Train new model versions on the current snapshot; they stay candidates until promoted."""
    db = ResultsDB(settings.results_database_url)
    dataset = _current_dataset(settings)
    _, _, models = _score(dataset, settings, _CandidateRegistry(db))
    made = [es.model_version for es in models.values() if es.model_version]
    return "new candidate versions: " + (", ".join(made) or "none")


def refresh_rings(settings: Settings) -> str:
    """Detect rings again on the current snapshot and replace the ring tables."""
    db = ResultsDB(settings.results_database_url)
    rings = detect_rings(_current_dataset(settings))
    manifest = db.read("runs")
    manifest_json = json.loads(manifest["manifest"].iloc[-1]) if len(manifest) else {}
    manifest_json["rings_refreshed_at"] = now_iso()
    db.replace_results({"rings": rings.rings, "ring_members": rings.members, "ring_edges": rings.edges,
                        "runs": pd.DataFrame([{"manifest": json.dumps(manifest_json, default=str)}])})
    return f"{len(rings.rings)} rings"


@dataclass(frozen=True)
class JobSpec:
    id: str
    name: str
    description: str
    run: Callable[[Settings], str]
    schedule: Callable[[Settings], str]      # crontab expression from settings


JOBS: dict[str, JobSpec] = {spec.id: spec for spec in (
    JobSpec("nightly-rescore", "Nightly re-scoring", rescore.__doc__ or "", rescore,
            lambda s: s.job_rescore_cron),
    JobSpec("weekly-retrain", "Weekly retraining", retrain.__doc__ or "", retrain,
            lambda s: s.job_retrain_cron),
    JobSpec("ring-refresh", "Ring refresh", refresh_rings.__doc__ or "", refresh_rings,
            lambda s: s.job_rings_cron),
)}


# -- stages -------------------------------------------------------------------------------------

def _current_dataset(settings: Settings) -> Dataset:
    store = open_store(settings.store_url, settings)
    try:
        return store.dataset()
    finally:
        store.close()


def _score(dataset: Dataset, settings: Settings, registry: ModelRegistry) -> tuple[Any, RingResult, dict[str, EntityScores]]:
    proj = Projection(dataset)
    features = add_graph_features(build_features(dataset, proj), proj)
    rules = evaluate_rules(dataset, settings)
    rings = detect_rings(dataset)
    models = {t: score_entity_type(t, dataset=dataset, proj=proj, features=features[t], rule_result=rules,
                                   rings=rings.members, settings=settings, registry=registry)
              for t in ENTITY_TYPES}
    return rules, rings, models


class _ScratchRegistry(ModelRegistry):
    """Registers nothing: the version of a scratch fit is a placeholder replaced by the champion's."""

    def register(self, *, entity_type: str, kind: str, data_hash: str, features: list[str],
                 params: dict[str, Any], metrics: dict[str, Any], model: Any | None,
                 promote: bool = False) -> ModelRecord:
        return ModelRecord(f"scratch-{entity_type}", entity_type, kind, now_iso(), data_hash, features,
                           params, metrics, False)


class _CandidateRegistry(ModelRegistry):
    """Registers every new version without promoting it (unless the type has no champion at all)."""

    def register(self, *, entity_type: str, kind: str, data_hash: str, features: list[str],
                 params: dict[str, Any], metrics: dict[str, Any], model: Any | None,
                 promote: bool = False) -> ModelRecord:
        return super().register(entity_type=entity_type, kind=kind, data_hash=data_hash, features=features,
                                params=params, metrics=metrics, model=model, promote=False)


def _with_champion(es: EntityScores, champ: ModelRecord, model: Any | None, settings: Settings) -> pd.DataFrame:
    """The scores table of a scratch fit, re-scored by the champion model where it has one."""
    table = es.table.copy()
    table["model_version"] = champ.version
    if model is None or es.matrix is None:
        return table
    X = es.matrix.reindex(index=table["entity_id"])
    risk = np.asarray(model.predict_proba(X), dtype=float)
    points = credit_points(risk, settings.scorecard)
    score_grade = pd.Series(grades(points, settings.bands), index=table.index)
    cap = table["grade_cap"].replace("", np.nan)
    final = apply_caps(score_grade, cap)
    cap_items = table["reasons"].map(lambda r: [i for i in json.loads(r) if i.get("feature") == "grade_cap"])
    reasons = pd.Series("[]", index=table.index)
    top = pd.Series(risk, index=table.index).sort_values(ascending=False, kind="mergesort").index[: settings.model.explain_top]
    if len(top):
        Xt = X.iloc[top].set_axis(top)
        contrib = model.contributions(Xt)
        reasons.loc[top] = reasons_from_contributions(contrib, Xt.reindex(columns=contrib.columns),
                                                      settings.model.reasons_per_entity).to_numpy()
    with_caps = [json.dumps(json.loads(r) + c, ensure_ascii=False) if c and g != sg else r
                 for r, c, g, sg in zip(reasons, cap_items, final, score_grade)]
    table["risk_score"] = risk.round(6)
    table["credit_points"] = points.round(1)
    table["score_grade"] = score_grade.to_numpy()
    table["grade"] = final.to_numpy()
    table["reasons"] = with_caps
    return table


# -- running without overlap ---------------------------------------------------------------------

class JobRunner:
    """Runs registered jobs, one run per job at a time (also across processes, through the
    `job_runs` table), recording every run; `on_success` is called after a run succeeds."""

    # APScheduler's persisted job store needs a module-level callable; it finds the runner here.
    scheduled: ClassVar["JobRunner | None"] = None

    def __init__(self, settings: Settings, db: ResultsDB,
                 on_success: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.on_success = on_success
        self._locks = {job_id: threading.Lock() for job_id in JOBS}
        self._threads: list[threading.Thread] = []

    def spec(self, job_id: str) -> JobSpec:
        if job_id not in JOBS:
            raise UnknownJob(f"no job {job_id!r}; jobs: {', '.join(JOBS)}")
        return JOBS[job_id]

    def running(self, job_id: str) -> bool:
        return self._locks[self.spec(job_id).id].locked() or self._running_elsewhere(job_id)

    def run(self, job_id: str) -> tuple[int, str]:
        """Run now in this thread; returns (run id, status)."""
        run_id = self._claim(job_id)
        return run_id, self._execute(job_id, run_id)

    def start(self, job_id: str) -> int:
        """Start a run in a background thread; returns its run id at once."""
        run_id = self._claim(job_id)
        th = threading.Thread(target=self._execute, args=(job_id, run_id), name=f"job-{job_id}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [th]
        th.start()
        return run_id

    def join(self, timeout: float | None = None) -> None:
        """Wait for background runs (tests, shutdown)."""
        for th in list(self._threads):
            th.join(timeout)

    def _claim(self, job_id: str) -> int:
        lock = self._locks[self.spec(job_id).id]
        if not lock.acquire(blocking=False):
            raise JobAlreadyRunning(f"job {job_id!r} is already running")
        try:
            if self._running_elsewhere(job_id):
                raise JobAlreadyRunning(f"job {job_id!r} is already running in another process")
            return self.db.job_started(job_id)
        except BaseException:
            lock.release()
            raise

    def _execute(self, job_id: str, run_id: int) -> str:
        spec = JOBS[job_id]
        try:
            log.info("job %s run %d started", job_id, run_id)
            message = spec.run(self.settings)
            self.db.job_finished(run_id, "succeeded", message)
            log.info("job %s run %d succeeded", job_id, run_id)
            status = "succeeded"
        except Exception as exc:  # recorded in job_runs and logged, not swallowed
            log.exception("job %s run %d failed", job_id, run_id)
            self.db.job_finished(run_id, "failed", f"{type(exc).__name__}: {exc}"[:2000])
            status = "failed"
        finally:
            self._locks[job_id].release()
        if status == "succeeded" and self.on_success is not None:
            self.on_success(job_id)
        return status

    def _running_elsewhere(self, job_id: str) -> bool:
        since = (datetime.now(timezone.utc) - timedelta(seconds=self.settings.job_stale_after_s)).isoformat(timespec="seconds")
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(jobs_table.c.id).where(
                (jobs_table.c.job_id == job_id) & (jobs_table.c.status == "running")
                & (jobs_table.c.started_at >= since)).limit(1)).first()
        return row is not None

    def history(self, job_id: str | None = None, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(jobs_table).order_by(jobs_table.c.id.desc()).limit(limit)
        if job_id:
            q = q.where(jobs_table.c.job_id == job_id)
        if status:
            q = q.where(jobs_table.c.status == status)
        with self.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


def run_scheduled(job_id: str) -> None:
    """Entry point of scheduled runs (referenced by name in the persisted job store)."""
    runner = JobRunner.scheduled
    if runner is None:
        log.warning("scheduled job %s fired with no runner; skipped", job_id)
        return
    try:
        runner.run(job_id)
    except JobAlreadyRunning:
        log.warning("scheduled job %s skipped: previous run still going", job_id)


def build_scheduler(settings: Settings, runner: JobRunner) -> Any:
    """A BackgroundScheduler with every job of `JOBS` under its explicit id (not yet started)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=settings.results_database_url, tablename="scheduler_jobs")},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone=settings.job_timezone)
    for spec in JOBS.values():
        scheduler.add_job("api.jobs:run_scheduled", CronTrigger.from_crontab(spec.schedule(settings),
                                                                              timezone=settings.job_timezone),
                          args=[spec.id], id=spec.id, name=spec.name, replace_existing=True)
    JobRunner.scheduled = runner
    return scheduler


def next_run_times(settings: Settings) -> dict[str, datetime | None]:
    """When each job fires next according to its schedule (works without a running scheduler)."""
    from apscheduler.triggers.cron import CronTrigger

    now = datetime.now(timezone.utc)
    return {spec.id: CronTrigger.from_crontab(spec.schedule(settings), timezone=settings.job_timezone)
            .get_next_fire_time(None, now) for spec in JOBS.values()}
