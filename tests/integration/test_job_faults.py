"""Workers die and people cancel: the Job row must still end in a true state.

Real `celery worker` processes (the project's pool: solo on the filesystem broker, prefork on
Redis) under bin/supervise as `make run` starts them, and the real sweeper process
(`manage.py sweep_jobs`); heartbeats and sweeps are short (tests/workers.py, WORKER_ENV).
"""

import os
import signal
import subprocess
import time

import pytest

from feedback_app.annotation.importing import check_records
from feedback_app.annotation.services import prompts_import
from feedback_app.core.models import Job, Project
from feedback_app.finetuning import jobs, services, versions
from feedback_app.finetuning.tasks import run_job
from tests.workers import WORKER_ENV, _purge_queues, wait_for_job

LONG_DPO = {"epochs": 200, "batch_size": 2, "max_length": 48}
STALE = float(WORKER_ENV["JOB_STALE_AFTER_SECONDS"])


@pytest.fixture
def long_training(tiny_policy, make_snapshot):
    """A project whose DPO job would run for minutes: 8 pairs x 200 epochs."""
    project = Project.objects.create(name="faults", candidates_per_task=2)
    prompts_import(project=project, records=check_records([(1, {"prompt": "x"})], k=2))
    versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    pairs = [
        {"prompt": f"The value {i} is", "chosen": " useful and valid.", "rejected": " an error."}
        for i in range(8)
    ]
    project.training_snapshot = make_snapshot(project, pairs)
    return project


def launch_training(project) -> Job:
    params = {**LONG_DPO, "snapshot": project.training_snapshot.pk}
    return services.job_launch(project=project, kind="train_dpo", params=params)


def wait_until_training(job, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == "running" and job.metric_history:
            return job
        assert job.status in ("queued", "running"), f"{job.status}: {job.error}"
        time.sleep(0.2)
    pytest.fail(f"job never started training:\n{job.log_tail}")


def children(pid: int) -> list[int]:
    ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in ps.stdout.split()]


def idle_job_processes(supervised) -> list[int]:
    """The worker's processes that run jobs: its pool children (prefork) or itself (solo)."""
    (worker,) = children(supervised.pid)
    return children(worker) or [worker]


def build_dataset(project) -> Job:
    return services.job_launch(project=project, kind="build_dataset", params={})


def test_the_process_that_ran_a_job_killed_while_idle_does_not_stop_the_next_job(
    start_worker, long_training
):
    """The issue's recipe: a job, a pause, `kill -9` the idle process that runs jobs, a job.

    The prefork pool on the filesystem broker wedged here for good (its idle child holds the
    pool queue's lock); now the next job runs, and SIGTERM still stops the worker.
    """
    worker = start_worker()
    first = wait_for_job(build_dataset(long_training), timeout=60)
    assert first.status == "succeeded", first.error
    time.sleep(2)  # idle, waiting for the next message
    for pid in idle_job_processes(worker):
        os.kill(pid, signal.SIGKILL)
    second = wait_for_job(build_dataset(long_training), timeout=60)
    assert second.status == "succeeded", f"{second.status}:\n{worker.log_path.read_text()[-3000:]}"
    worker.terminate()
    worker.wait(timeout=30)  # a wedged worker ignored SIGTERM


def test_a_worker_killed_mid_training_has_its_job_failed_by_the_sweeper_and_its_queue_recovered(
    start_worker, start_sweeper, long_training
):
    sweeper = start_sweeper()
    worker = start_worker()
    training = wait_until_training(launch_training(long_training))
    waiting = build_dataset(long_training)  # queued behind the training job
    os.killpg(worker.pid, signal.SIGKILL)  # the whole worker, supervisor and all
    worker.wait(timeout=10)
    # A killed worker takes the messages it had with it (the filesystem broker drops a message
    # at delivery); the queue is emptied to make that certain on every broker.
    _purge_queues()
    training = wait_for_job(training, timeout=STALE + 20, until=("failed", "succeeded"))
    assert training.status == "failed" and "heartbeat" in training.error and training.retryable
    assert "Swept: 1 silent" in sweeper.log_path.read_text()
    waiting.refresh_from_db()
    assert waiting.status == "queued"
    start_worker()
    waiting = wait_for_job(waiting, timeout=60)  # ...and the sweeper sent its message again
    assert waiting.status == "succeeded", waiting.error
    assert waiting.send_count >= 2
    retry = services.job_retry(job=training)
    assert retry.status == "queued" and retry.params == training.params


def test_cancel_of_a_job_whose_worker_died_is_immediate_and_a_late_message_does_not_revive_it(
    start_worker, long_training
):
    worker = start_worker()
    training = wait_until_training(launch_training(long_training))
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    time.sleep((jobs.SILENT_BEATS + 1) * float(WORKER_ENV["JOB_HEARTBEAT_SECONDS"]))
    training = jobs.job_cancel(job=training)
    assert training.status == "cancelled", training.error  # at once: no worker holds it
    fresh = start_worker()
    run_job.apply_async(args=[training.pk], queue=training.queue)  # a late redelivery
    deadline = time.monotonic() + 30
    while f"job {training.pk} not claimed" not in fresh.log_path.read_text():
        assert time.monotonic() < deadline, fresh.log_path.read_text()[-3000:]
        time.sleep(0.2)
    training.refresh_from_db()
    assert training.status == "cancelled"


@pytest.mark.slow
def test_a_cancelled_job_stops_within_seconds(start_worker, long_training):
    start_worker()
    job = launch_training(long_training)
    wait_until_training(job)
    asked = time.monotonic()
    jobs.job_cancel(job=job)
    job = wait_for_job(job, timeout=30)
    stopped_after = time.monotonic() - asked
    assert job.status == "cancelled", job.error
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    assert not Job.objects.filter(status="running").exists()
