"""Workers die and people cancel: the Job row must still end in a true state."""

import os
import signal
import time

import pytest

from feedback_app.annotation.importing import check_records
from feedback_app.annotation.services import prompts_import
from feedback_app.core.models import Job, Project
from feedback_app.finetuning import jobs, services
from tests.workers import wait_for_job

LONG_DPO = {"epochs": 200, "batch_size": 2, "max_length": 48}


@pytest.fixture
def long_training(tiny_policy, make_snapshot):
    """A project whose DPO job would run for minutes: 8 pairs x 200 epochs."""
    project = Project.objects.create(name="faults", candidates_per_task=2)
    prompts_import(project=project, records=check_records([(1, {"prompt": "x"})], k=2))
    services.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    pairs = [
        {"prompt": f"The value {i} is", "chosen": " useful and valid.", "rejected": " an error."}
        for i in range(8)
    ]
    make_snapshot(project, pairs)
    return project


def wait_until_training(job, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == "running" and job.metric_history:
            return job
        assert job.status in ("queued", "running"), f"{job.status}: {job.error}"
        time.sleep(0.2)
    pytest.fail(f"job never started training:\n{job.log_tail}")


@pytest.mark.slow
def test_a_worker_killed_mid_training_leaves_the_job_failed_and_retryable(
    start_worker, long_training
):
    worker = start_worker()
    job = services.job_launch(project=long_training, kind="train_dpo", params=LONG_DPO)
    wait_until_training(job)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    job.refresh_from_db()
    assert job.status == "running"  # nobody is left to say otherwise...
    time.sleep(float(os.environ.get("JOB_STALE_AFTER_SECONDS", 4)) + 1)
    assert jobs.jobs_sweep_stale() == 1  # ...until the sweep notices the silence
    job.refresh_from_db()
    assert job.status == "failed" and "heartbeat" in job.error and job.retryable
    retry = jobs.job_retry(job=job)
    assert retry.status == "queued" and retry.params == job.params


@pytest.mark.slow
def test_a_cancelled_job_stops_within_seconds(start_worker, long_training):
    start_worker()
    job = services.job_launch(project=long_training, kind="train_dpo", params=LONG_DPO)
    wait_until_training(job)
    asked = time.monotonic()
    jobs.job_cancel(job=job)
    job = wait_for_job(job, timeout=30)
    stopped_after = time.monotonic() - asked
    assert job.status == "cancelled", job.error
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    assert not Job.objects.filter(status="running").exists()


def test_the_sweep_runs_periodically_from_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-stale-jobs"]
    assert entry["task"] == "finetuning.sweep_stale_jobs"
    from feedback_app.celery import app

    app.loader.import_default_modules()
    assert "finetuning.sweep_stale_jobs" in app.tasks
