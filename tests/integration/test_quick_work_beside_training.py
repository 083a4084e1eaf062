"""Issue 25: quick work never waits behind training. `make run` starts two real workers
(bin/workers: quick work, and the training queue in its own process); while a training job
runs, a quality refresh and a round's generation still finish."""

import fcntl
import time

import pytest
from celery import current_app

from feedback_app.annotation.importing import check_records
from feedback_app.annotation.quality_refresh import REFRESH_QUALITY
from feedback_app.annotation.services import prompts_import
from feedback_app.core.models import Job, Project
from feedback_app.finetuning import services, versions
from feedback_app.finetuning.kinds import KINDS, QUEUE_TRAINING
from tests.workers import ROOT, wait_for_job


def _start_make_run_workers(worker_processes, cache) -> None:
    proc = worker_processes(
        "workers", ["env", f"BASE_MODEL_CACHE={cache}", str(ROOT / "bin" / "workers")], "ready."
    )
    deadline = time.monotonic() + 60
    while not all(f"{name}@" in proc.log_path.read_text() for name in ("worker", "trainer")):
        assert time.monotonic() < deadline, proc.log_path.read_text()[-3000:]
        time.sleep(0.2)
    while proc.log_path.read_text().count(" ready.") < 2:
        assert time.monotonic() < deadline, proc.log_path.read_text()[-3000:]
        time.sleep(0.2)


@pytest.mark.slow
def test_a_refresh_and_a_round_finish_while_a_training_job_runs(
    worker_processes, tiny_policy, tmp_path
):
    from training.bootstrap import cache_key, corpus_documents
    from training.config import BootstrapConfig

    _start_make_run_workers(worker_processes, tmp_path / "base-model")
    project = Project.objects.create(name="beside", candidates_per_task=2, annotations_per_task=1)
    records = [{"prompt": f"The list type {i} is"} for i in range(3)]
    prompts_import(project=project, records=check_records(enumerate(records, 1), k=2))
    versions.model_register(project=project, kind="policy", name="tiny", weights=tiny_policy)

    # The training job: building a base model, held in its cache's lock (as a second builder
    # of the same model is) until this test lets go, so it is surely running meanwhile.
    (tmp_path / "base-model").mkdir()
    key = cache_key(BootstrapConfig.tiny(), corpus_documents())
    with open(tmp_path / "base-model" / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        training = services.job_launch(
            project=project, kind="build_base", params={"size": "tiny", "first_round": None}
        )
        assert KINDS[training.kind].queue == QUEUE_TRAINING
        wait_for_job(training, timeout=120, until=("running", "failed"))
        assert training.status == "running", training.error

        refreshed = current_app.send_task(REFRESH_QUALITY, args=[project.pk]).get(timeout=120)
        round_job = services.job_launch(
            project=project, kind="generate", params={"max_new_tokens": 4, "seed": 1}
        )
        round_job = wait_for_job(round_job, timeout=300)

        training.refresh_from_db()
        assert training.status == Job.Status.RUNNING  # still training, behind its lock
    assert refreshed["project"] == project.pk and not refreshed.get("missing")
    assert round_job.status == "succeeded", round_job.error
    assert round_job.outputs["round"] == 1 and round_job.outputs["tasks"] == 3
    training = wait_for_job(training, timeout=300)
    assert training.status == "succeeded", training.error


def test_scoring_is_quick_work_not_queued_behind_training():
    """The review queue's scoring is a forward pass per candidate: the quick worker runs it."""
    assert KINDS["review_scores"].queue != QUEUE_TRAINING
    assert KINDS["generate"].queue != QUEUE_TRAINING
