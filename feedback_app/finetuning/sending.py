"""Send a job's message to its queue, by task name.

The task (`tasks.run_job`) stands at the top of finetuning, over the runners and everything
they call; the job services at the bottom send its message by name, so no import goes upward
and the web process never imports a runner to send one.
"""

from __future__ import annotations

from celery import current_app
from django.conf import settings

RUN_JOB = "finetuning.run_job"


def send_run_job(job_id: int, *, queue: str) -> None:
    """Send `run_job(job_id)` to `queue`, with the hard time limit of every job."""
    app = current_app
    options = {"args": [job_id], "queue": queue, "time_limit": settings.JOB_TIME_LIMIT_SECONDS}
    if app.conf.task_always_eager:  # send_task ignores eager mode; apply_async honoured it
        app.loader.import_default_modules()  # Celery's autodiscovery registers the task's name
        app.tasks[RUN_JOB].apply_async(**options)
        return
    app.send_task(RUN_JOB, **options)
