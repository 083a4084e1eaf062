"""Send a job's message to its queue, by task name.

The task (`tasks.run_job`) stands at the top of finetuning, over the runners and everything
they call; the job services at the bottom send its message by name, so no import goes upward
and the web process never imports a runner to send one.
"""

from __future__ import annotations

from django.conf import settings

from feedback_app.common.sending import send_by_name

RUN_JOB = "finetuning.run_job"


def send_run_job(job_id: int, *, queue: str) -> None:
    """Send `run_job(job_id)` to `queue`, with the hard time limit of every job."""
    send_by_name(RUN_JOB, args=[job_id], queue=queue, time_limit=settings.JOB_TIME_LIMIT_SECONDS)
