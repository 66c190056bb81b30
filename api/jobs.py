"""Scheduled jobs, registered in one place (`JOBS`) with explicit ids: nightly re-scoring with
the champion models, weekly retraining (new candidate versions, never promoted here) and ring
refresh. `JobRunner` runs them without overlap; `build_scheduler` schedules them (APScheduler
3.x, job store persisted in the results database)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa

from api.errors import JobAlreadyRunning, UnknownJob
from composer.pipeline import ModelSource, run_pipeline
from composer.runs import live_runs
from riskgraph.results import ResultsDB
from riskgraph.results_schema import jobs_table
from riskgraph.settings import Settings

log = logging.getLogger("riskgraph.api.jobs")


# -- the jobs: each is one composer run (composer/pipeline.py), committed once --------------------


def rescore(settings: Settings) -> str:
    """Re-run features, rules, rings and scoring on the served run's snapshot with the champion
    models (a type without a champion gets its first model) and serve the result as a new run."""
    result = run_pipeline(data=None, out=None, settings=settings, models=ModelSource.CHAMPION, kind="nightly-rescore")
    return f"run {result.run_id}: rescored {len(result.scores)} entities with the champion models"


def retrain(settings: Settings) -> str:
    """Train new model versions on the served run's snapshot; they are committed as candidates
    (never promoted here) and the served results do not change."""
    result = run_pipeline(data=None, out=None, settings=settings, models=ModelSource.CANDIDATE, kind="weekly-retrain")
    made = [m.model_version for m in result.models.values() if m.model_version and m.fitted]
    return f"run {result.run_id}: new candidate versions: " + (", ".join(made) or "none")


def refresh_rings(settings: Settings) -> str:
    """Detect rings again on the served snapshot. Ring features feed the scores, so this is a
    whole re-scoring run with the champion models: rings and grades always come from one run."""
    result = run_pipeline(data=None, out=None, settings=settings, models=ModelSource.CHAMPION, kind="ring-refresh")
    return f"run {result.run_id}: {result.rings['ring_id'].nunique() if len(result.rings) else 0} rings"


@dataclass(frozen=True)
class JobSpec:
    id: str
    name: str
    description: str
    run: Callable[[Settings], str]
    schedule: Callable[[Settings], str]  # crontab expression from settings


JOBS: dict[str, JobSpec] = {
    spec.id: spec
    for spec in (
        JobSpec("nightly-rescore", "Nightly re-scoring", rescore.__doc__ or "", rescore, lambda s: s.job_rescore_cron),
        JobSpec("weekly-retrain", "Weekly retraining", retrain.__doc__ or "", retrain, lambda s: s.job_retrain_cron),
        JobSpec("ring-refresh", "Ring refresh", refresh_rings.__doc__ or "", refresh_rings, lambda s: s.job_rings_cron),
    )
}


# -- running without overlap ---------------------------------------------------------------------


class JobRunner:
    """Runs registered jobs, one run per job at a time (also across processes, through the
    `job_runs` table), recording every run; `on_success` is called after a run succeeds."""

    # APScheduler's persisted job store needs a module-level callable; it finds the runner here.
    scheduled: ClassVar[JobRunner | None] = None

    def __init__(self, settings: Settings, db: ResultsDB, on_success: Callable[[str], None] | None = None) -> None:
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
        """A run of this job with a fresh heartbeat (a killed one stops beating: stale in 3 min)."""
        return bool(live_runs(self.db, self.settings, kind=job_id))

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
        timezone=settings.job_timezone,
    )
    for spec in JOBS.values():
        scheduler.add_job(
            "api.jobs:run_scheduled",
            CronTrigger.from_crontab(spec.schedule(settings), timezone=settings.job_timezone),
            args=[spec.id],
            id=spec.id,
            name=spec.name,
            replace_existing=True,
        )
    JobRunner.scheduled = runner
    return scheduler


def next_run_times(settings: Settings) -> dict[str, datetime | None]:
    """When each job fires next according to its schedule (works without a running scheduler)."""
    from apscheduler.triggers.cron import CronTrigger

    now = datetime.now(UTC)
    return {
        spec.id: CronTrigger.from_crontab(spec.schedule(settings), timezone=settings.job_timezone).get_next_fire_time(
            None, now
        )
        for spec in JOBS.values()
    }
