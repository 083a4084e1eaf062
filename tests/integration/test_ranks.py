"""A training job on a worker whose profile says two processes runs as two ranks under
torchrun: it trains, reports rank 0's progress to the job row and records where and how it ran;
a cancel stops every rank and the launcher (nothing left behind)."""

from __future__ import annotations

import time

import psutil
import pytest

from feedback_app.core.models import Job, ModelVersion, Project
from feedback_app.finetuning import jobs, services, versions
from tests.workers import wait_for_job

PROMPTS = ["The list type is", "A function call", "The with statement", "Each module object"]
PAIRS = [{"prompt": p, "chosen": " useful and simple.", "rejected": " an error."} for p in PROMPTS]
TWO_RANKS = {"TRAIN_PROCESSES": "2", "TRAIN_THREADS_PER_PROCESS": "1"}
# batch 2 a rank = the global batch 4 of one process; few steps: cheap
TINY = {"epochs": 1, "batch_size": 2, "max_length": 64}


@pytest.fixture
def dpo_project(tiny_policy, make_snapshot):
    project = Project.objects.create(name="ranks", candidates_per_task=2)
    base = versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    snapshot = make_snapshot(project, PAIRS * 4)
    return project, base, snapshot


def _rank_processes(worker: psutil.Process) -> list[psutil.Process]:
    """The worker's launcher and rank processes (torchrun keeps them its children)."""
    found = []
    for p in worker.children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "training.rank" in cmd or "torch.distributed.run" in cmd:
            p.info_cmd = p.cmdline()
            found.append(p)
    return found


@pytest.mark.slow
def test_a_dpo_job_runs_as_two_ranks_on_a_worker_with_two_processes(start_worker, dpo_project):
    start_worker(env=TWO_RANKS)
    project, base, snapshot = dpo_project
    params = {**TINY, "snapshot": snapshot.pk, "policy": base.pk}
    job = wait_for_job(services.job_launch(project=project, kind="train_dpo", params=params))
    assert job.status == "succeeded", f"{job.error}\n{job.traceback}\n{job.log_tail}"
    ran_on = job.outputs["ran_on"]
    assert (ran_on["launcher"], ran_on["processes"], ran_on["backend"]) == ("torchrun", 2, "gloo")
    assert job.progress == 1.0 and job.metric_history  # rank 0's steps reached the row
    version = ModelVersion.objects.get(pk=job.outputs["model_version"])
    assert "launch" not in version.metrics and version.parent == base


@pytest.mark.slow
def test_a_job_profile_override_runs_one_process_on_a_two_process_worker(start_worker, dpo_project):
    start_worker(env=TWO_RANKS)
    project, base, snapshot = dpo_project
    params = {**TINY, "snapshot": snapshot.pk, "policy": base.pk, "profile": {"processes": 1}}
    job = wait_for_job(services.job_launch(project=project, kind="train_dpo", params=params))
    assert job.status == "succeeded", f"{job.error}\n{job.traceback}\n{job.log_tail}"
    assert (job.outputs["ran_on"]["launcher"], job.outputs["ran_on"]["processes"]) == (
        "in-process",
        1,
    )


@pytest.mark.slow
def test_cancel_of_a_two_rank_job_leaves_no_process_behind(start_worker, dpo_project):
    worker = psutil.Process(start_worker(env=TWO_RANKS).pid)
    project, base, snapshot = dpo_project
    params = {**TINY, "epochs": 50, "snapshot": snapshot.pk, "policy": base.pk}
    job = services.job_launch(project=project, kind="train_dpo", params=params)
    deadline = time.monotonic() + 120
    ranks: list[psutil.Process] = []
    while sum("training.rank" in " ".join(p.info_cmd) for p in ranks) < 2:
        assert time.monotonic() < deadline, "two ranks never started"
        time.sleep(0.2)
        try:
            ranks = _rank_processes(worker)
        except psutil.Error:
            ranks = []
    jobs.job_cancel(job=Job.objects.get(pk=job.pk))
    job = wait_for_job(job, timeout=120)
    assert job.status == "cancelled"
    _, alive = psutil.wait_procs(ranks, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
    assert job.outputs["ran_on"]["processes"] == 2  # recorded before the work started
