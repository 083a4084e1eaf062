"""Launch jobs: check the params by the kind's rules, store the row, send it to its queue.

Model versions (`versions.py`) and rounds (`rounds.py`) are written by the runners; this module
stands over the registry (`kinds.py`), which stands over the runners.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import IO, Any

from django.db import transaction
from django.utils import timezone

from feedback_app.common.errors import Conflict, Problem, ServiceError
from feedback_app.core.access import check_writable
from feedback_app.core.audit import Origin, about_job, record
from feedback_app.core.models import Job, Project
from feedback_app.workspace import archive

from . import jobs, kinds, versions

log = logging.getLogger(__name__)


def job_launch(*, project: Project, kind: str, params: Any, origin: Origin | None = None) -> Job:
    """Check the parameters, store a queued job, and send it to its queue after commit.

    A project with a base model and no policy yet gets it registered as its first policy
    ("base"), so its first round needs nothing else. Archived projects launch nothing.
    Recorded (`job.launch`) when someone asked (`origin`); the autopilot and the demo set-up
    launch as steps of their own, recorded at their level."""
    check_writable(project)
    if project.base_model:
        versions.base_version_ensure(project)
    clean = kinds.check_params(project, kind, params)
    with transaction.atomic():
        job = jobs.job_create(
            project=project,
            kind=kind,
            params=clean,
            queue=kinds.KINDS[kind].queue_name,
            user=origin.user if origin else None,
        )
        record("job.launch", origin=origin, **about_job(job))
    return job


def archive_import_launch(
    *, file: IO[bytes], name: str | None = None, origin: Origin | None = None
) -> Job:
    """An archive import as a job: the upload's cheap checks now (400s naming the member, 409 a
    taken name), its hidden project, and a queued `import_archive` job that writes the rows in
    chunks (workspace/archive/staged.py). Recorded as `job.launch`; `project.import` follows
    when the job has written the last row."""
    staged = archive.archive_stage(file=file, name=name, origin=origin)
    try:
        with transaction.atomic():
            job = jobs.job_create(
                project=staged.project,
                kind="import_archive",
                params={"upload": staged.path.name, "archived": staged.archived,
                        "rows": staged.rows},
                queue=kinds.KINDS["import_archive"].queue_name,
                user=origin.user if origin else None,
            )  # fmt: skip
            record("job.launch", origin=origin, **about_job(job))
    except BaseException:
        staged.path.unlink(missing_ok=True)
        staged.project.delete()
        raise
    return job


def job_retry(*, job: Job, origin: Origin | None = None) -> Job:
    """A new queued job with the same kind and parameters as a failed or cancelled one.

    The params were checked when the first job was launched; the queue is the kind's today.
    """
    if not job.retryable:
        raise Conflict(
            Problem("status", f"only failed or cancelled jobs can be retried, not {job.status}")
        )
    with transaction.atomic():
        new = jobs.job_create(
            project=job.project,
            kind=job.kind,
            params=job.params,
            queue=kinds.KINDS[job.kind].queue_name,
            user=origin.user if origin else None,
            retry_of=job,
        )
        record("job.retry", origin=origin, **about_job(new))
    return new


def job_launch_next(*, job_id: int) -> Job | None:
    """Launch the job a succeeded job named to follow it (`outputs["next"]`: kind and params).

    The chain of the first run: the base model's build names the first round. The next job is
    launched like any (checked by its kind's rules, sent on commit); its id, or why it was
    refused, is added to the first job's outputs. The first job stays succeeded either way.
    Once only: the worker calls this right after the job succeeds, and the sweep calls it for
    a job whose worker died before it could (`jobs_launch_next_pending`); the row lock (and
    SQLite's write lock) makes the second caller see the first one's answer.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("project", "created_by")
        job = job.get(pk=job_id)
        spec = job.outputs.get("next")
        done = {"next_job", "next_refused"} & job.outputs.keys()
        if job.status != Job.Status.SUCCEEDED or not spec or done:
            return None
        try:
            # Launched by the system on behalf of whoever launched the first job (its creator).
            origin = Origin(user=job.created_by)
            launched = job_launch(
                project=job.project, kind=spec["kind"], params=spec["params"], origin=origin
            )
        except ServiceError as exc:
            log.warning("job %s: the next job was refused: %s", job.pk, exc)
            Job.objects.filter(pk=job.pk).update(outputs={**job.outputs, "next_refused": str(exc)})
            return None
        Job.objects.filter(pk=job.pk).update(outputs={**job.outputs, "next_job": launched.pk})
        return launched


# A job whose next job is still unlaunched this long after it finished lost its worker in
# between (the worker launches it at once); older ones are left alone, see below.
NEXT_GRACE = timedelta(seconds=30)
NEXT_WINDOW = timedelta(days=1)


def jobs_launch_next_pending(*, now: datetime | None = None) -> list[Job]:
    """Launch the next jobs that succeeded jobs named but nobody launched (the sweep's part).

    The worker launches a job's next job right after marking it succeeded; a worker killed in
    between would leave the first run's chain stopped after the base model's build, with no
    round to rank. Only jobs that finished within the last day are looked at: a chain found
    days later is better started by hand than by surprise.
    """
    now = now or timezone.now()
    pending = (
        Job.objects.filter(
            status=Job.Status.SUCCEEDED,
            finished_at__lte=now - NEXT_GRACE,
            finished_at__gte=now - NEXT_WINDOW,
            outputs__has_key="next",
        )
        .exclude(outputs__has_key="next_job")
        .exclude(outputs__has_key="next_refused")
        .values_list("pk", flat=True)
    )
    launched = []
    for job_id in list(pending):
        job = job_launch_next(job_id=job_id)
        if job is not None:
            log.warning("job %s: its next job %s launched by the sweep", job_id, job.pk)
            launched.append(job)
    return launched
