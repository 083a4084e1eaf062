"""Issue 25: every long job shows an ETA from its step rate (core/eta.py, one pure rule)."""

import doctest
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from feedback_app.core import eta

T0 = datetime(2026, 1, 1, 12, 0, 0)


def test_the_module_examples_hold():
    assert doctest.testmod(eta).failed == 0


@pytest.mark.parametrize(
    ("progress", "elapsed", "left"),
    [(0.5, 100, 100.0), (0.25, 30, 90.0), (0.9, 90, 10.0), (0.1, 60, 540.0)],
)
def test_time_left_is_the_remaining_progress_at_the_rate_so_far(progress, elapsed, left):
    at = T0 + timedelta(seconds=elapsed)
    assert eta.eta_seconds(progress=progress, started_at=T0, heartbeat_at=at) == pytest.approx(left)


@pytest.mark.parametrize(
    ("progress", "started", "beat"),
    [
        (0.0, T0, T0 + timedelta(seconds=60)),  # no step yet: no rate
        (0.005, T0, T0 + timedelta(seconds=60)),  # too little to speak of
        (0.5, T0, T0 + timedelta(seconds=1)),  # too soon
        (0.5, None, T0),  # never started (queued)
        (0.5, T0, None),  # no heartbeat yet
        (1.0, T0, T0 + timedelta(seconds=60)),  # done
    ],
)
def test_no_estimate_before_there_is_a_rate(progress, started, beat):
    assert eta.eta_seconds(progress=progress, started_at=started, heartbeat_at=beat) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1, "about 5 s left"),
        (42, "about 40 s left"),
        (150, "about 2 min left"),
        (45 * 60, "about 45 min left"),
        (80 * 60, "about 1 h 20 min left"),
    ],
)
def test_the_estimate_reads_in_seconds_minutes_or_hours(seconds, text):
    assert eta.eta_text(seconds) == text


def test_only_a_running_job_has_an_estimate():
    beat = T0 + timedelta(seconds=60)
    job = SimpleNamespace(status="running", progress=0.25, started_at=T0, heartbeat_at=beat)
    assert eta.job_eta_text(job) == "about 3 min left"
    for status in ("queued", "failed", "cancelled", "succeeded"):
        job.status = status
        assert eta.job_eta_text(job) is None
