"""The life of a Job row: launch, claim, report, finish, cancel, sweep, retry.

The row is the truth. A message is sent only after the row is committed; a worker claims the row
with one conditional UPDATE (so a redelivered message never runs it twice); while it runs, a
heartbeat thread stamps the row and picks up cancel requests; a periodic sweep fails rows whose
heartbeat went stale (the worker died) and leaves them retryable.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback as tb
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from feedback_app.common.errors import Conflict, Problem
from feedback_app.core.models import Job

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 200
HISTORY_LIMIT = 5000
TRACEBACK_TAIL = 4000
_TORCH_KINDS = {"generate", "train_reward", "train_dpo", "evaluate"}


class JobCancelled(Exception):
    """Raised inside a runner when the job was asked to stop."""


def _enqueue(job: Job) -> None:
    from .tasks import run_job  # the task module imports services; import at call time

    queue = settings.JOB_QUEUES[job.kind]
    run_job.apply_async(args=[job.pk], queue=queue, time_limit=settings.JOB_TIME_LIMIT_SECONDS)


def job_create(*, project, kind: str, params: dict, user=None, retry_of: Job | None = None) -> Job:
    """Store a queued job and send its message once the transaction commits.

    Inside a transaction that rolls back, nothing is sent.
    """
    job = Job.objects.create(
        project=project, kind=kind, params=params, created_by=user, retry_of=retry_of
    )
    transaction.on_commit(lambda: _enqueue(job))
    return job


def job_claim(*, job_id: int, worker: str) -> bool:
    """Move a queued job to running; False if someone else has it or it was cancelled."""
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            worker=worker[:200],
            updated_at=now,
        )
    )


def _finish(job_id: int, **fields: Any) -> bool:
    """Write a final state, but only over a running job (the sweep may have failed it)."""
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
            finished_at=now, updated_at=now, **fields
        )
    )


def job_cancel(*, job: Job) -> Job:
    """Cancel at once if queued; ask a running job to stop (it checks within seconds)."""
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, finished_at=now, updated_at=now
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


def job_retry(*, job: Job, user=None) -> Job:
    """A new queued job with the same kind and parameters as a failed or cancelled one."""
    if not job.retryable:
        raise Conflict(
            Problem("status", f"only failed or cancelled jobs can be retried, not {job.status}")
        )
    return job_create(
        project=job.project, kind=job.kind, params=job.params, user=user, retry_of=job
    )


def jobs_sweep_stale(*, now=None) -> int:
    """Fail running jobs whose heartbeat is older than JOB_STALE_AFTER_SECONDS."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    return Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Job.Status.FAILED,
        error=(
            "The worker stopped sending heartbeats (none for "
            f"{settings.JOB_STALE_AFTER_SECONDS:.0f} s): it was probably killed or lost. Retry."
        ),
        finished_at=now,
        updated_at=now,
    )


class JobReporter:
    """Progress, metrics, log lines and heartbeats of one running job, written to its row.

    `progress(step, total, metrics)` is the callback `training/` functions take; it returns True
    once a cancel was requested. Writes are throttled; a background thread keeps the heartbeat
    going even while a single step takes minutes.
    """

    def __init__(self, job_id: int, *, min_write_interval: float = 1.0):
        self.job_id = job_id
        self.cancel = threading.Event()
        self.history: list[dict] = []
        self.lines: list[str] = []
        self._fraction = 0.0
        self._note = ""
        self._dirty = False
        self._last_write = 0.0
        self._interval = min_write_interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"job-{job_id}-heartbeat", daemon=True
        )

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> JobReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.JOB_HEARTBEAT_SECONDS):
                now = timezone.now()
                Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(
                    heartbeat_at=now
                )
                row = (
                    Job.objects.filter(pk=self.job_id).values("cancel_requested", "status").first()
                )
                if row is None or row["cancel_requested"] or row["status"] != Job.Status.RUNNING:
                    self.cancel.set()
        except Exception:  # a heartbeat failure must not kill the job; the sweep will notice
            log.exception("heartbeat of job %s failed", self.job_id)
        finally:
            connection.close()

    # -- reporting --------------------------------------------------------------------------
    def stage(self, note: str, fraction: float | None = None) -> None:
        """Name the current stage (shown beside the bar) and log it."""
        with self._lock:
            self._note = note[:200]
            if fraction is not None:
                self._fraction = max(0.0, min(1.0, fraction))
            self._dirty = True
        self.log(note)
        self.flush()
        if self.cancel.is_set():
            raise JobCancelled()

    def log(self, line: str) -> None:
        with self._lock:
            stamp = timezone.now().strftime("%H:%M:%S")
            self.lines.append(f"{stamp} {line}")
            del self.lines[:-LOG_TAIL_LINES]
            self._dirty = True

    def progress_between(self, start: float, end: float) -> Callable[[int, int, dict], bool]:
        """A callback whose 0..1 maps onto [start, end] of the job's bar (for multi-stage jobs)."""

        def callback(step: int, total: int, metrics: dict) -> bool:
            fraction = step / total if total else 0.0
            with self._lock:
                self._fraction = start + (end - start) * max(0.0, min(1.0, fraction))
                if metrics:
                    entry = {"step": step, **{k: v for k, v in metrics.items() if _is_number(v)}}
                    self.history.append(entry)
                    del self.history[:-HISTORY_LIMIT]
                self._dirty = True
            if time.monotonic() - self._last_write >= self._interval:
                self.flush()
            return self.cancel.is_set()

        return callback

    @property
    def progress(self) -> Callable[[int, int, dict], bool]:
        return self.progress_between(0.0, 1.0)

    def flush(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            fields = {
                "progress": self._fraction,
                "progress_note": self._note,
                "metric_history": list(self.history),
                "log_tail": "\n".join(self.lines),
                "heartbeat_at": timezone.now(),
            }
            self._dirty = False
            self._last_write = time.monotonic()
        Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(**fields)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def job_execute(*, job_id: int, worker: str, runners: dict[str, Callable]) -> str | None:
    """Claim and run a job with the runner for its kind; record how it ended.

    Returns the final status, or None when the job was not ours to run.
    """
    if not job_claim(job_id=job_id, worker=worker):
        log.info("job %s not claimed (already taken, finished or cancelled)", job_id)
        return None
    job = Job.objects.select_related("project").get(pk=job_id)
    if settings.TORCH_THREADS and job.kind in _TORCH_KINDS:
        from training.env import limit_threads

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
                error=f"{type(exc).__name__}: {exc}"[:2000],
                traceback=tb.format_exc()[-TRACEBACK_TAIL:],
            )
            return Job.Status.FAILED
        reporter.log("Done.")
    _finish(job_id, status=Job.Status.SUCCEEDED, progress=1.0, outputs=outputs)
    return Job.Status.SUCCEEDED
