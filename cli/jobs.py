"""`riskgraph jobs list|run JOB_ID`: the scheduled jobs from the command line."""

from __future__ import annotations

import sys

import click

from riskgraph.settings import Settings

pass_settings = click.make_pass_decorator(Settings, ensure=True)


@click.group("jobs")
def jobs() -> None:
    """Scheduled jobs: nightly re-scoring, weekly retraining, ring refresh."""


@jobs.command("list")
@pass_settings
def jobs_list(settings: Settings) -> None:
    """Every registered job with its schedule, next run and last run."""
    from api.jobs import JOBS, JobRunner, next_run_times
    from riskgraph.results import ResultsDB

    runner = JobRunner(settings, ResultsDB.of(settings))
    nxt = next_run_times(settings)
    for job_id, spec in JOBS.items():
        last = runner.history(job_id, limit=1)
        last_txt = f"{last[0]['status']} {last[0]['finished_at'] or last[0]['started_at']}" if last else "never run"
        at = nxt[job_id]
        when = at.isoformat(timespec="minutes") if at else "-"
        click.echo(f"{job_id:16s} {spec.schedule(settings):14s} next {when}  last {last_txt}")


@jobs.command("run")
@click.argument("job_id")
@pass_settings
def jobs_run(settings: Settings, job_id: str) -> None:
    """Run JOB_ID now, in this process (refused while another run of it is going)."""
    from api.jobs import JobRunner
    from riskgraph.results import ResultsDB

    runner = JobRunner(settings, ResultsDB.of(settings))
    run_id, status = runner.run(job_id)
    last = runner.history(job_id, limit=1)[0]
    click.echo(f"{job_id} run {run_id} {status}: {last['message'] or ''}")
    sys.exit(0 if status == "succeeded" else 1)
