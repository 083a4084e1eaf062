"""Ask a worker to refresh a project's quality report soon after rankings arrive, debounced.

The report lives in `preferences` (above this layer), so its task is sent by name. A submit
asks for a refresh at most once a project per `QUALITY_REFRESH_SECONDS`: the first submit of a
window sends the task with that countdown, so it runs after the window closes and reads every
ranking submitted in it. The check is a dictionary look-up in this process first and one
`cache.add` (atomic across processes with Redis) only when this process has not sent one
lately: the submit path stays free of a round trip almost always.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from feedback_app.common.sending import send_by_name
from feedback_app.core.models import Job

REFRESH_QUALITY = "preferences.refresh_quality"

_sent_at: dict[int, float] = {}  # project -> when this process last sent (monotonic)


def send_refresh(project_id: int, *, countdown: float = 0) -> None:
    """Send `refresh_quality(project_id)` to the default queue (eagerly in eager mode).

    Notes when it is due, so the dashboards can say a refresh is on its way (`refresh_pending`).
    """
    due = timezone.now().timestamp() + countdown
    cache.set(_due_key(project_id), due, timeout=24 * 3600)
    send_by_name(REFRESH_QUALITY, args=[project_id], countdown=countdown)


def refresh_soon(project_id: int) -> None:
    """Refresh within `QUALITY_REFRESH_SECONDS` unless a refresh is already on its way.

    Call after the ranking is committed (`transaction.on_commit`), so the refresh it may send
    is sure to read it. 0 seconds turns the refresh after submits off.
    """
    window = settings.QUALITY_REFRESH_SECONDS
    if window <= 0:
        return
    now = time.monotonic()
    if now - _sent_at.get(project_id, -window) < window:
        return
    _sent_at[project_id] = now
    if cache.add(f"quality-refresh:{project_id}", 1, timeout=window):
        send_refresh(project_id, countdown=window)


def _due_key(project_id: int) -> str:
    return f"quality-refresh-due:{project_id}"


@dataclass(frozen=True)
class RefreshPending:
    starts_in_s: float  # > 0: a debounced refresh waiting out its window (0: due now)
    behind: list[Job]  # jobs running on the quick worker's queues: it starts after them


def refresh_pending(*, project_id: int, computed_at: datetime | None) -> RefreshPending | None:
    """The refresh sent for this project and not yet written (None if the report is newer).

    Behind what: the jobs running on the queue the refresh goes to and the other queue of the
    same worker (bin/workers: default and generation), which the worker finishes first.
    """
    due = cache.get(_due_key(project_id))
    if due is None or (computed_at is not None and computed_at.timestamp() >= due):
        return None
    quick = [settings.JOB_QUEUES["default"], settings.JOB_QUEUES["generation"]]
    behind = list(
        Job.objects.filter(status=Job.Status.RUNNING, queue__in=quick)
        .only("id", "kind", "progress", "queue")
        .order_by("id")
    )
    return RefreshPending(starts_in_s=max(0.0, due - timezone.now().timestamp()), behind=behind)
