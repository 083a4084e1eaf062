"""How long a running job has left, from how fast its progress has moved: one pure rule.

The job page, its JSON, the "round being prepared" note and `manage.py watch_jobs` all show
this estimate. The rate is the job's average since it started (progress / elapsed), read from
its row: `started_at`, and `progress` as of its last write (`heartbeat_at`, stamped by every
progress write and by the heartbeat thread). The average includes the job's set-up (loading a
model, training a tokenizer), so early on it errs towards a longer wait, never a shorter one.

>>> from datetime import datetime, timedelta
>>> t0 = datetime(2026, 1, 1)
>>> eta_seconds(progress=0.25, started_at=t0, heartbeat_at=t0 + timedelta(seconds=30))
90.0
>>> eta_text(90.0)
'about 2 min left'
>>> eta_text(None) is None
True
"""

from __future__ import annotations

from datetime import datetime

# Below this much progress, or this little time, a rate says nothing yet.
MIN_PROGRESS = 0.01
MIN_ELAPSED_S = 2.0


def eta_seconds(
    *, progress: float, started_at: datetime | None, heartbeat_at: datetime | None
) -> float | None:
    """Seconds left at the average rate so far; None before there is a rate to speak of.

    rate = progress / (heartbeat_at - started_at); left = (1 - progress) / rate.
    """
    if started_at is None or heartbeat_at is None or not 0 <= progress < 1:
        return None
    elapsed = (heartbeat_at - started_at).total_seconds()
    if progress < MIN_PROGRESS or elapsed < MIN_ELAPSED_S:
        return None
    return elapsed * (1 - progress) / progress


def eta_text(seconds: float | None) -> str | None:
    """'about 40 s left', 'about 3 min left', 'about 1 h 20 min left' (None stays None)."""
    if seconds is None:
        return None
    if seconds < 60:
        return f"about {max(5, round(seconds / 5) * 5)} s left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60} min left"


def job_eta_text(job) -> str | None:
    """The estimate for a job row (status, progress, started_at, heartbeat_at): running only."""
    if job.status != "running":
        return None
    return eta_text(
        eta_seconds(progress=job.progress, started_at=job.started_at, heartbeat_at=job.heartbeat_at)
    )
