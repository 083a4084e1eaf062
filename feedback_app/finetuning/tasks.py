"""Celery tasks: thin adapters that hand a job id to the job services.

Sent by name (`sending.py`), so the job services below never import this module. The sweep is
not a task: a worker that is wedged or dead would never run it. The `sweep_jobs` management
command runs it in its own process (docs/architecture.md, "Jobs").
"""

from __future__ import annotations

import logging
import os

from celery import current_task, shared_task

from feedback_app.core.models import Job

from . import autopilot, jobs, kinds, services
from .sending import RUN_JOB

log = logging.getLogger(__name__)


@shared_task(name=RUN_JOB, acks_late=True)
def run_job(job_id: int) -> str | None:
    """Claim and run one job; its row records progress and outcome. On success, launch the job
    it named to follow it, if any (the base model's build names the first round). Then the
    project's autopilot, if on, takes its next step (the sweeper's pass would, seconds later)."""
    worker = f"{current_task.request.hostname or 'worker'}:{os.getpid()}"
    queues = run_job.app.amqp.queues.consume_from  # the queues this worker serves
    status = jobs.job_execute(
        job_id=job_id,
        worker=worker,
        runners=kinds.RUNNERS,
        queues=queues,
        torch_kinds=kinds.TORCH_KINDS,
    )
    if status == Job.Status.SUCCEEDED:
        services.job_launch_next(job_id=job_id)
    if status is not None:
        try:
            autopilot.autopilot_after_job(job_id=job_id)
        except Exception:  # the job's outcome is recorded; the sweeper advances it instead
            log.exception("autopilot after job %s could not advance", job_id)
    return status
