"""Issue 13 on a real worker: the base model is built by a job that reports its progress, and its
success launches the loop demo's first round, which the worker then generates."""

import time

import pytest

from feedback_app.annotation.models import Candidate
from feedback_app.core.models import Job, ModelVersion
from feedback_app.finetuning import demo as loop_demo
from feedback_app.finetuning import services
from tests.workers import wait_for_job


@pytest.fixture
def fresh_base_cache(tmp_path, monkeypatch, settings):
    """An empty model cache for the worker (set before it starts), so the build really runs.

    One torch thread: on this shared 2-core machine under load, torch's default two threads made
    the tiny build take over ten minutes (measured; one thread: 52 s at load 14).
    """
    cache = tmp_path / "base-model"
    monkeypatch.setenv("BASE_MODEL_CACHE", str(cache))
    monkeypatch.setenv("TORCH_THREADS", "1")
    settings.BASE_MODEL_CACHE = cache
    return cache


@pytest.mark.slow  # pretrains the tiny base model (400 steps): a learning run
def test_the_base_model_job_reports_progress_then_round_one_is_generated(
    fresh_base_cache, start_worker
):
    start_worker()
    loop = loop_demo.loop_demo_bootstrap(model_size="tiny")
    build = loop.job
    assert (build.kind, build.queue, loop.base) == ("build_base", "training", None)

    build = wait_for_job(build, timeout=600)

    assert build.status == "succeeded", f"{build.error}\n{build.traceback}\n{build.log_tail}"
    steps = [h["step"] for h in build.metric_history]
    assert steps and steps[-1] == 400 and steps == sorted(steps), "no progress while it ran"
    assert build.progress_note == "Pretraining: step 400/400"
    base = ModelVersion.objects.get(pk=build.outputs["model_version"])
    assert (base.name, base.stage, base.is_active, base.job_id) == ("base", "base", True, build.pk)
    assert base.weights.startswith(str(fresh_base_cache)) and not build.outputs["cached"]

    # The worker records the next job's id just after marking the build succeeded: wait for it.
    deadline = time.monotonic() + 60
    while not {"next_job", "next_refused"} & build.outputs.keys() and time.monotonic() < deadline:
        time.sleep(0.25)
        build.refresh_from_db()
    assert "next_refused" not in build.outputs, build.outputs["next_refused"]
    first_round = Job.objects.get(pk=build.outputs["next_job"])
    assert first_round.kind == "generate" and first_round.params["model_versions"] == [base.pk]
    first_round = wait_for_job(first_round, timeout=600)
    assert first_round.status == "succeeded", f"{first_round.error}\n{first_round.log_tail}"
    assert first_round.outputs["round"] == 1 and first_round.outputs["tasks"] == 24
    assert Candidate.objects.filter(task__project=loop.project, model_version=base).count() == 96

    # The cache stays: built once, a second build of the same size finishes at once from it.
    again = services.job_launch(project=loop.project, kind="build_base", params={"size": "tiny"})
    again = wait_for_job(again, timeout=300)
    assert again.status == "succeeded" and again.outputs["cached"] is True
    assert again.outputs["model_version"] == base.pk and "next" not in again.outputs
