"""The life of a Job row: store and send, claim, run, finish, cancel, sweep.

The row is the truth. A message is sent only after the row is committed; a worker claims the row
with one conditional UPDATE (so a redelivered or re-sent message never runs it twice); while it
runs, a heartbeat thread stamps the row and picks up cancel requests. The sweep (`jobs_sweep`,
run by its own process, never inside a job worker) fails running jobs whose heartbeat went stale
(the worker died) or that outran the time limit, sends again the message of a queued job that no
worker took, and fails it in the end; all of them stay retryable. Every write a worker makes is
conditional on the row still running, so a late worker never brings back a swept or cancelled
job.

Nothing here knows the kinds of job: the caller names the queue (`services.job_launch`, from
the registry in `kinds.py`) and the runners (`tasks.run_job`).
"""

from __future__ import annotations

import logging
import time
import traceback as tb
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from feedback_app.common.errors import Conflict, Problem
from feedback_app.core.audit import Origin, about_job, record
from feedback_app.core.models import Job
from training.env import limit_threads
from training.launch import RankFailed

from .reporting import JobCancelled, JobReporter, drop_connection
from .sending import send_run_job

log = logging.getLogger(__name__)

TRACEBACK_TAIL = 4000
# A running job whose heartbeat missed this many beats has no live worker holding it (cancel).
SILENT_BEATS = 3
# Tries of a job's final write through a database outage, with 1, 2, 4, 8... s in between.
FINISH_ATTEMPTS = 6


Runner = Callable[[Job, JobReporter], dict | None]


def _enqueue(job: Job) -> None:
    send_run_job(job.pk, queue=job.queue or settings.CELERY_TASK_DEFAULT_QUEUE)


def job_create(
    *, project, kind: str, params: dict, queue: str, user=None, retry_of: Job | None = None
) -> Job:
    """Store a queued job for `queue` and send its message once the transaction commits.

    Inside a transaction that rolls back, nothing is sent. The params are stored as given:
    the caller has checked them (`services.job_launch`).
    """
    job = Job.objects.create(
        project=project,
        kind=kind,
        params=params,
        created_by=user,
        retry_of=retry_of,
        queue=queue,
        sent_at=timezone.now(),
        send_count=1,
    )
    transaction.on_commit(lambda: _enqueue(job))
    return job


def job_resend(*, job: Job, now: datetime | None = None) -> bool:
    """Send the message of a still-queued job again (its first may be lost); False if not queued.

    Safe however often it happens: the claim is atomic, so a duplicate message does nothing.
    """
    now = now or timezone.now()
    if not Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        sent_at=now, send_count=F("send_count") + 1, updated_at=now
    ):
        return False
    _enqueue(job)
    return True


def queue_list(queues: Iterable[str]) -> str:
    """Queue names as stored in `Job.worker_queues`: ",a,b," so that ",a," matches exactly."""
    names = sorted(queues)
    return f",{','.join(names)}," if names else ""


def job_claim(*, job_id: int, worker: str, queues: Iterable[str] = ()) -> bool:
    """Move a queued job to running; False if someone else has it or it was cancelled.

    `queues` are those the claiming worker consumes: its heartbeats then count as a sign of life
    for each of them (`queues_last_seen`).
    """
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            worker=worker[:200],
            worker_queues=queue_list(queues)[:500],
            updated_at=now,
        )
    )


def _finish(job_id: int, **fields: Any) -> bool:
    """Write a final state, but only over a running job (the sweep may have failed it).

    Tried again through a short database outage: a job that did its work must not be left
    running and then swept as lost.
    """
    for attempt in range(FINISH_ATTEMPTS):
        try:
            now = timezone.now()
            return bool(
                Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
                    finished_at=now, updated_at=now, **fields
                )
            )
        except DatabaseError as exc:
            if attempt == FINISH_ATTEMPTS - 1 or connection.in_atomic_block:
                raise  # inside a transaction nothing can be retried; only tests run jobs in one
            log.warning("final write of job %s failed, trying again: %s", job_id, exc)
            drop_connection()
            time.sleep(2**attempt)
    return False  # not reached


def duration(seconds: float) -> str:
    """Seconds as people read them in a message: "45 s", "3 minutes", "6 hours"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60)} minutes"
    return f"{seconds / 3600:.3g} hours"


def _silent_after() -> timedelta:
    return timedelta(seconds=SILENT_BEATS * settings.JOB_HEARTBEAT_SECONDS)


def job_cancel(*, job: Job, origin: Origin | None = None) -> Job:
    """Cancel at once if no live worker holds the job; otherwise ask it to stop (`job.cancel`
    recorded when someone asked: `origin`; a job already finished records nothing).

    Queued, or running with a heartbeat silent for `SILENT_BEATS` beats (its worker died or is
    stuck): the row is cancelled now, and since every worker write requires a running row, a
    late worker cannot bring it back. A live job gets the flag and stops within seconds.
    """
    with transaction.atomic():
        job = _cancel(job)
        record("job.cancel", origin=origin, **about_job(job))
    return job


def _cancel(job: Job) -> Job:
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, finished_at=now, updated_at=now
    ):
        job.refresh_from_db()
        return job
    silent = Job.objects.filter(
        pk=job.pk, status=Job.Status.RUNNING, heartbeat_at__lt=now - _silent_after()
    )
    if silent.update(
        status=Job.Status.CANCELLED,
        cancel_requested=True,
        error=(
            "Cancelled on request. No worker was holding it (no heartbeat for "
            f"{duration(_silent_after().total_seconds())}), so it ended at once."
        ),
        finished_at=now,
        updated_at=now,
    ):
        job.refresh_from_db()
        return job
    updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        cancel_requested=True, updated_at=now
    )
    job.refresh_from_db()
    if not updated and job.status not in Job.ACTIVE:
        raise Conflict(Problem("status", f"job is already {job.status}"))
    return job


def jobs_sweep_stale(*, now: datetime | None = None) -> int:
    """Fail running jobs whose heartbeat is older than JOB_STALE_AFTER_SECONDS."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    return Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Job.Status.FAILED,
        error=(
            "The worker stopped sending heartbeats (none for "
            f"{duration(settings.JOB_STALE_AFTER_SECONDS)}): it was probably killed (out of "
            "memory?) or lost. Retry."
        ),
        finished_at=now,
        updated_at=now,
    )


def jobs_sweep_overtime(*, now: datetime | None = None) -> int:
    """Fail running jobs that started more than JOB_TIME_LIMIT_SECONDS ago.

    The prefork pool kills such a job's process itself; the solo pool cannot, so the row is
    failed here and the job's heartbeat thread, seeing it no longer running, stops the job at
    its next step.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_TIME_LIMIT_SECONDS)
    return Job.objects.filter(status=Job.Status.RUNNING, started_at__lt=cutoff).update(
        status=Job.Status.FAILED,
        error=(
            f"It ran longer than the time limit ({duration(settings.JOB_TIME_LIMIT_SECONDS)}, "
            "JOB_TIME_LIMIT_SECONDS) and was stopped. Retry with less work or a higher limit."
        ),
        finished_at=now,
        updated_at=now,
    )


def queues_last_seen() -> dict[str, datetime]:
    """When a worker consuming each queue was last seen alive: its newest job heartbeat.

    A busy worker stamps its running job every few seconds, so a queue whose only worker is
    training for hours still counts as served; a dead or wedged worker's time stands still.
    """
    seen: dict[str, datetime] = {}
    rows = (
        Job.objects.exclude(worker_queues="")
        .order_by()
        .values("worker_queues")
        .annotate(at=Max("heartbeat_at"))
    )
    for row in rows:
        for queue in row["worker_queues"].strip(",").split(","):
            if row["at"] and (queue not in seen or row["at"] > seen[queue]):
                seen[queue] = row["at"]
    return seen


def unclaimed_since(job: Job, last_seen: dict[str, datetime], *, since_send: bool = False):
    """Since when a queued job has waited with no sign of a worker for its queue.

    The later of its creation (or its last send, with `since_send`) and the last time a worker
    consuming its queue was seen: a job waiting behind a long training job on a busy worker is
    not waiting *unclaimed*.
    """
    start = (job.sent_at or job.created_at) if since_send else job.created_at
    seen = last_seen.get(job.queue)
    return max(start, seen) if seen else start


@dataclass(frozen=True)
class UnclaimedJob:
    """A queued job that no worker for its queue has shown a sign of life since a while."""

    job: Job
    waited: timedelta

    @property
    def minutes(self) -> int:
        return max(1, int(self.waited.total_seconds() // 60))


def jobs_unclaimed(*, queryset, now: datetime | None = None) -> list[UnclaimedJob]:
    """The queued jobs of `queryset` with their unclaimed wait, longest first."""
    now = now or timezone.now()
    queued = list(queryset.filter(status=Job.Status.QUEUED))
    if not queued:
        return []
    last_seen = queues_last_seen()
    waits = [UnclaimedJob(job, now - unclaimed_since(job, last_seen)) for job in queued]
    return sorted(waits, key=lambda w: w.waited, reverse=True)


def jobs_recover_unclaimed(*, now: datetime | None = None) -> tuple[int, int]:
    """Send again, and in the end fail, queued jobs that no worker took; (resent, failed).

    A message can be lost with the worker that had taken it (the filesystem broker drops a
    message at delivery; a wedged worker holds it for ever). After JOB_UNCLAIMED_RESEND_SECONDS
    of waiting with no sign of a worker for its queue since its last send, the message is sent
    again (a duplicate does nothing: the claim is atomic); after JOB_UNCLAIMED_FAIL_SECONDS since
    its creation with no such sign, it fails, retryable, saying which queue has no worker.
    """
    now = now or timezone.now()
    queued = list(Job.objects.filter(status=Job.Status.QUEUED).order_by("id"))
    if not queued:
        return 0, 0
    last_seen = queues_last_seen()
    resend_after = timedelta(seconds=settings.JOB_UNCLAIMED_RESEND_SECONDS)
    fail_after = timedelta(seconds=settings.JOB_UNCLAIMED_FAIL_SECONDS)
    resent = failed = 0
    for job in queued:
        if now - unclaimed_since(job, last_seen) > fail_after:
            sends = "once" if job.send_count == 1 else f"{job.send_count} times"
            failed += Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
                status=Job.Status.FAILED,
                error=(
                    f"No worker took this job in {duration(fail_after.total_seconds())}: is a "
                    f"worker running for queue '{job.queue}'? (Its message was sent {sends}.) "
                    "Retry once one runs."
                ),
                finished_at=now,
                updated_at=now,
            )
        elif now - unclaimed_since(job, last_seen, since_send=True) > resend_after and job_resend(
            job=job, now=now
        ):
            log.warning(
                "job %s: no worker took it from queue %s in %.0f s; message sent again",
                job.pk, job.queue, resend_after.total_seconds(),
            )  # fmt: skip
            resent += 1
    return resent, failed


@dataclass(frozen=True)
class SweepResult:
    stale: int = 0  # running jobs failed: their heartbeat went silent
    overtime: int = 0  # running jobs failed: past the time limit
    resent: int = 0  # queued jobs whose message was sent again
    unclaimed: int = 0  # queued jobs failed: no worker took them

    def __bool__(self) -> bool:
        return any((self.stale, self.overtime, self.resent, self.unclaimed))


def jobs_sweep(*, now: datetime | None = None) -> SweepResult:
    """One pass of the sweep: nothing stays running or queued for ever."""
    now = now or timezone.now()
    stale = jobs_sweep_stale(now=now)
    overtime = jobs_sweep_overtime(now=now)
    resent, unclaimed = jobs_recover_unclaimed(now=now)
    return SweepResult(stale=stale, overtime=overtime, resent=resent, unclaimed=unclaimed)


def job_execute(
    *,
    job_id: int,
    worker: str,
    runners: Mapping[str, Runner],
    queues: Iterable[str] = (),
    torch_kinds: Collection[str] = (),
) -> str | None:
    """Claim and run a job with the runner for its kind; record how it ended.

    `runners` and `torch_kinds` (the kinds that load torch: their threads are limited to
    TORCH_THREADS) come from the registry (`kinds.py`). Returns the final status, or None when
    the job was not ours to run.
    """
    if not job_claim(job_id=job_id, worker=worker, queues=queues):
        log.info("job %s not claimed (already taken, finished or cancelled)", job_id)
        return None
    job = Job.objects.select_related("project").get(pk=job_id)
    if settings.TORCH_THREADS and job.kind in torch_kinds:
        limit_threads(settings.TORCH_THREADS)
    with JobReporter(job_id) as reporter:
        try:
            outputs = runners[job.kind](job, reporter) or {}
        except JobCancelled:
            reporter.log("Stopped: cancelled on request.")
            reporter.flush()
            _finish(job_id, status=Job.Status.CANCELLED, error="Cancelled on request.")
            return Job.Status.CANCELLED
        except Exception as exc:
            log.exception("job %s failed", job_id)
            reporter.log(f"Failed: {exc}")
            reporter.flush()
            _finish(
                job_id,
                status=Job.Status.FAILED,
                error=_error_text(exc)[:2000],
                traceback=tb.format_exc()[-TRACEBACK_TAIL:],
            )
            return Job.Status.FAILED
        reporter.log("Done.")
    outputs = {**reporter.recorded, **outputs}
    _finish(job_id, status=Job.Status.SUCCEEDED, progress=1.0, outputs=outputs)
    return Job.Status.SUCCEEDED


def _error_text(exc: BaseException) -> str:
    """The job's error: a failed rank's own message (it names the rank and its error), else
    the exception's type and message."""
    if isinstance(exc, RankFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
