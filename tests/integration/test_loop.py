"""The whole loop on a real worker process: generate, rank, snapshot, train, evaluate, promote."""

import pytest

from feedback_app.annotation.importing import check_records
from feedback_app.annotation.models import Candidate, Task
from feedback_app.annotation.services import prompts_import
from feedback_app.annotation.simulation import simulate
from feedback_app.common.rendering import RENDER_VERSION
from feedback_app.core.models import DatasetSnapshot, Job, Membership, ModelVersion, Project
from feedback_app.finetuning import services, versions
from tests.workers import wait_for_job

PROMPTS = [
    "The list type is", "A function call", "The with statement", "Each module object",
    "A dictionary maps", "The import system", "A class definition", "The return value",
    "An iterator is", "The for statement", "A generator function", "The built-in function",
    "A string literal", "The try statement", "A context manager", "The default value",
]  # fmt: skip


def run(project, kind, params, timeout=300):
    job = services.job_launch(project=project, kind=kind, params=params)
    job = wait_for_job(job, timeout=timeout)
    assert job.status == "succeeded", f"{kind}: {job.error}\n{job.traceback}\n{job.log_tail}"
    assert job.progress == 1.0 and job.finished_at is not None and job.heartbeat_at is not None
    return job


@pytest.mark.slow
def test_one_full_turn_of_the_loop_on_a_real_worker(start_worker, tiny_policy, make_user):
    start_worker()
    project = Project.objects.create(name="loop", candidates_per_task=3, annotations_per_task=2)
    prompts_import(
        project=project, records=check_records(enumerate(({"prompt": p} for p in PROMPTS), 1), k=3)
    )
    base = versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    bots = [make_user(f"bot-{i}") for i in range(2)]
    for bot in bots:
        Membership.objects.create(project=project, user=bot)
    gen = {"max_new_tokens": 12, "temperature": 1.0, "seed": 1}

    first = run(project, "generate", gen)
    assert first.outputs["round"] == 1 and first.outputs["tasks"] == len(PROMPTS)
    # Which engine generated is recorded on the job (no CUDA/vLLM here: transformers).
    assert first.outputs["engine"]["name"] == "transformers" and first.outputs["engine"]["reason"]
    assert Candidate.objects.filter(task__project=project, model_version=base).count() == 3 * len(
        PROMPTS
    )

    assert simulate(project=project, annotators=bots).submitted == 2 * len(PROMPTS)

    snap_job = run(project, "build_dataset", {"test_fraction": 0.25, "min_agreement": 0.5})
    snapshot = DatasetSnapshot.objects.get(pk=snap_job.outputs["snapshot"])
    assert snapshot.counts["train"] > 0 and snapshot.counts["test"] > 0

    rm_job = run(project, "train_reward", {"epochs": 2, "batch_size": 8, "max_length": 64})
    reward = ModelVersion.objects.get(pk=rm_job.outputs["model_version"])
    assert reward.kind == "reward" and "heldout_accuracy" in reward.metrics
    assert rm_job.metric_history, "training progress was not recorded while it ran"

    dpo_job = run(
        project,
        "train_dpo",
        {"epochs": 2, "batch_size": 8, "max_length": 64, "learning_rate": 5e-4},
    )
    policy = ModelVersion.objects.get(pk=dpo_job.outputs["model_version"])
    assert policy.parent == base and policy.snapshot == snapshot
    assert any("loss" in h for h in dpo_job.metric_history)

    eval_job = run(
        project, "evaluate", {"policy": policy.pk, "prompt_limit": 4, "max_new_tokens": 12}
    )
    policy.refresh_from_db()
    assert 0.0 <= policy.metrics["win_rate"] <= 1.0 and policy.metrics["kl_to_parent"] is not None
    assert eval_job.outputs["judge"] == reward.name

    run(project, "promote", {"model_version": policy.pk})
    policy.refresh_from_db()
    assert policy.is_active and not ModelVersion.objects.get(pk=base.pk).is_active

    second = run(project, "generate", gen)
    assert second.outputs["round"] == 2
    round_two = Candidate.objects.filter(task__round=2, task__project=project)
    assert round_two.count() == 3 * len(PROMPTS)
    assert set(round_two.values_list("model_version", flat=True)) == {policy.pk}
    assert set(round_two.values_list("render_version", flat=True)) == {RENDER_VERSION}
    # Rendered in the worker process, certified for this one: pages serve it as stored.
    assert all(c.html_is_current() for c in round_two)
    assert Task.objects.filter(project=project, round=2).count() == len(PROMPTS)
    assert set(Job.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.slow
def test_a_round_can_mix_two_model_versions_head_to_head(start_worker, tiny_policy):
    start_worker()
    project = Project.objects.create(name="h2h", candidates_per_task=4, annotations_per_task=1)
    prompts_import(
        project=project, records=check_records([(1, {"prompt": "The list type is"})], k=4)
    )
    a = versions.model_register(project=project, kind="policy", name="a", weights=tiny_policy)
    b = versions.model_register(project=project, kind="policy", name="b", weights=tiny_policy)
    run(project, "generate", {"model_versions": [a.pk, b.pk], "max_new_tokens": 8})
    sources = list(
        Candidate.objects.filter(task__project=project).values_list("model_version", flat=True)
    )
    assert sorted(sources) == sorted([a.pk, a.pk, b.pk, b.pk])
