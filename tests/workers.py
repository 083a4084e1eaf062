"""Fixtures for tests that need real Celery worker processes and a tiny local model.

Loaded for every test package by `pytest_plugins` in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def _database_url() -> str:
    """The test database (pytest-django renamed it) as a URL the worker can read."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


# Short heartbeats and sweeps so the fault tests see a dead worker in seconds, not a minute.
# (Unclaimed jobs are sent again after 3 s without a worker, and failed only after 10 minutes:
# no test waits for that; tests/finetuning/test_jobs.py covers it with a clock.)
WORKER_ENV = {
    "JOB_HEARTBEAT_SECONDS": "0.5",
    "JOB_STALE_AFTER_SECONDS": "4",
    "JOB_SWEEP_EVERY_SECONDS": "0.5",
    "JOB_UNCLAIMED_WARN_SECONDS": "2",
    "JOB_UNCLAIMED_RESEND_SECONDS": "3",
    "JOB_UNCLAIMED_FAIL_SECONDS": "600",
}


def _purge_queues() -> None:
    """Drop messages a previous test left, so this worker only runs what this test sends."""
    from feedback_app.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "generation", "training"):
            conn.default_channel.queue_declare(queue=queue)
            conn.default_channel.queue_purge(queue)


def _wait_for(proc: subprocess.Popen, log: Path, line: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while line not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, 9)
            pytest.fail(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture
def worker_processes(transactional_db, tmp_path, settings):
    """Start real processes against the test database and broker; all stopped afterwards.

    Yields `start(name, command)`: the command runs under bin/supervise (as in `make run`) in
    its own process group, so a test can SIGKILL one process of it or the whole group.
    """
    for name, value in WORKER_ENV.items():
        setattr(settings, name, float(value))
    _purge_queues()
    procs: list[subprocess.Popen] = []
    env = {
        **os.environ,
        **WORKER_ENV,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "VAR_DIR": str(settings.VAR_DIR),
    }

    def start(
        name: str, command: list[str], ready: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        log = tmp_path / f"{name}-{len(procs)}.log"
        proc = subprocess.Popen(
            [str(ROOT / "bin" / "supervise"), *command], cwd=ROOT, env={**env, **(extra_env or {})},
            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        procs.append(proc)
        proc.log_path = log
        _wait_for(proc, log, ready, name)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)  # whatever the group still holds (a stuck child)


@pytest.fixture
def start_worker(worker_processes):
    """Start a real `celery worker` (not eager mode) for every queue, as `make worker` does.

    The pool is the project's (settings: solo on the filesystem broker, prefork on Redis).
    `env` adds to the worker's environment (a worker profile: `TRAIN_PROCESSES=2`).
    """

    def start(env: dict[str, str] | None = None) -> subprocess.Popen:
        command = [
            sys.executable, "-m", "celery", "-A", "feedback_app", "worker",
            "--queues", "default,generation,training", "--concurrency", "1",
            "--loglevel", "INFO", "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        return worker_processes("worker", command, "ready.", env)

    return start


@pytest.fixture
def start_sweeper(worker_processes):
    """Start the job sweeper process (`manage.py sweep_jobs`), as `make run` does."""

    def start() -> subprocess.Popen:
        command = [sys.executable, "manage.py", "sweep_jobs"]
        return worker_processes("sweeper", command, "Sweeper ready")

    return start


@pytest.fixture
def celery_worker_process(start_worker):
    return start_worker()


@pytest.fixture(scope="session")
def tiny_policy() -> str:
    """A tiny bootstrapped causal LM (seconds to build; cached in .cache/test-models)."""
    from training.bootstrap import bootstrap_base_model
    from training.config import BootstrapConfig

    cache = Path(os.environ.get("TRAINING_TEST_CACHE", ROOT / ".cache" / "test-models"))
    return bootstrap_base_model(cache, BootstrapConfig.tiny()).output_dir


def wait_for_job(job, *, timeout: float = 300, until=("succeeded", "failed", "cancelled")):
    """Poll the job row until its status is in `until`; fail with its log if time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        job.refresh_from_db()
        if job.status in until:
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job.pk} ({job.kind}) still {job.status}:\n{job.log_tail}")
        time.sleep(0.25)
