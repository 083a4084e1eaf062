"""Progress, metrics, log lines and heartbeats of a running job, written to its row.

The reporter is what a runner holds: `training/` functions get its progress callback, which
answers whether a cancel was requested. Every write requires the row to be running, so a late
worker never brings back a swept or cancelled job (docs/architecture.md, "Jobs").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from feedback_app.core.models import Job

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 200
HISTORY_LIMIT = 5000


class JobCancelled(Exception):
    """Raised inside a runner when the job was asked to stop."""


def drop_connection() -> None:
    """Close this thread's database connection so the next query opens a fresh one."""
    with contextlib.suppress(Exception):
        connection.close()


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
        self.recorded: dict[str, Any] = {}  # outputs known before the end (see `record`)
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
        """Stamp the row and read the cancel flag every JOB_HEARTBEAT_SECONDS until stopped.

        A database error costs one beat, not the thread: the next beat tries again on a fresh
        connection. (A thread that stopped at the first error let the sweep fail healthy jobs.)
        """
        failures = 0
        try:
            while not self._stop.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    self._beat_once()
                except Exception as exc:
                    failures += 1
                    log.warning(
                        "heartbeat of job %s failed (%d in a row), trying again: %s",
                        self.job_id, failures, exc, exc_info=failures == 1,
                    )  # fmt: skip
                    drop_connection()
                    continue
                if failures:
                    log.warning(
                        "heartbeat of job %s resumed after %d failures", self.job_id, failures
                    )
                    failures = 0
        finally:
            drop_connection()

    def _beat_once(self) -> None:
        now = timezone.now()
        Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(heartbeat_at=now)
        row = Job.objects.filter(pk=self.job_id).values("cancel_requested", "status").first()
        if row is None or row["cancel_requested"] or row["status"] != Job.Status.RUNNING:
            self.cancel.set()

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

    def record(self, **outputs: Any) -> None:
        """Write outputs known before the job ends (where it runs, which engine) to the row
        now, so a job that fails or is cancelled shows them too; the final outputs keep them."""
        with self._lock:
            self.recorded.update(outputs)
            recorded = dict(self.recorded)
        try:
            Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(outputs=recorded)
        except DatabaseError as exc:
            log.warning("outputs of job %s not recorded yet: %s", self.job_id, exc)

    def log(self, line: str) -> None:
        with self._lock:
            stamp = timezone.now().strftime("%H:%M:%S")
            self.lines.append(f"{stamp} {line}")
            del self.lines[:-LOG_TAIL_LINES]
            self._dirty = True

    def progress_between(
        self, start: float, end: float, *, label: str = ""
    ) -> Callable[[int, int, dict], bool]:
        """A callback whose 0..1 maps onto [start, end] of the job's bar (for multi-stage jobs).

        With a `label`, the note beside the bar counts the steps ("Pretraining: step 120/400").
        """

        def callback(step: int, total: int, metrics: dict) -> bool:
            fraction = step / total if total else 0.0
            with self._lock:
                self._fraction = start + (end - start) * max(0.0, min(1.0, fraction))
                if label:
                    self._note = f"{label}: step {step}/{total}"[:200]
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
        """Write progress, metrics and log to the row (if anything changed).

        A database error is logged and the write left for the next flush: progress is worth
        less than the job, which must not fail because the database was busy for a moment.
        """
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
        try:
            Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(**fields)
        except DatabaseError as exc:
            log.warning(
                "progress of job %s not written, trying at the next flush: %s", self.job_id, exc
            )
            if connection.in_atomic_block:
                raise  # cannot recover inside a transaction; only tests run jobs in one
            drop_connection()
            with self._lock:
                self._dirty = True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
