"""Celery tasks: thin adapters that hand a job id to the job services."""

from __future__ import annotations

import os

from celery import current_task, shared_task

from . import jobs
from .runners import RUNNERS


@shared_task(name="finetuning.run_job", acks_late=True)
def run_job(job_id: int) -> str | None:
    """Claim and run one job; its row records progress and outcome."""
    worker = f"{current_task.request.hostname or 'worker'}:{os.getpid()}"
    return jobs.job_execute(job_id=job_id, worker=worker, runners=RUNNERS)


@shared_task(name="finetuning.sweep_stale_jobs")
def sweep_stale_jobs() -> int:
    """Fail running jobs whose worker stopped sending heartbeats (periodic, from beat)."""
    return jobs.jobs_sweep_stale()
