"""The stages of issue 22 as ordinary jobs on a real Celery worker: a reward-model ensemble,
GRPO against it, best-of-n SFT and online DPO end to end, each judged by a reward model other
than the one it was optimised against; and the divergence detector stopping a GRPO run whose
proxy rises while its judge falls, saying so on the job page."""

import shutil

import pytest
from django.urls import reverse

from feedback_app.annotation.importing import check_records
from feedback_app.annotation.services import prompts_import
from feedback_app.core.models import ModelVersion, Project
from feedback_app.finetuning import services, versions
from tests.workers import wait_for_job

PROMPTS = ["The list type is", "A function call", "The with statement", "Each module object"]
GOOD, BAD = " useful and simple.", " raises an error."
PAIRS = [{"prompt": p, "chosen": GOOD, "rejected": BAD} for p in PROMPTS]
TINY = {"epochs": 1, "batch_size": 4, "max_length": 64}
SAMPLE = {"max_new_tokens": 8, "generate_batch_size": 8}


def _negated(reward_dir, out_dir):
    """The reward model with its score head negated: a judge that falls exactly as it rises."""
    import torch

    from training.reward import load_reward_model

    shutil.copytree(reward_dir, out_dir)
    model, tokenizer = load_reward_model(reward_dir, train=False)
    with torch.no_grad():
        model.score.weight.neg_()
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture
def guarded_project(tiny_policy, make_snapshot, tmp_path):
    from training.config import RewardTrainConfig
    from training.reward import train_reward

    project = Project.objects.create(name="guards", candidates_per_task=2)
    records = check_records(enumerate(({"prompt": p} for p in PROMPTS), 1), k=2)
    prompts_import(project=project, records=records)
    base = versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    rm_dir = tmp_path / "rm"
    train_reward(tiny_policy, PAIRS, rm_dir, RewardTrainConfig(batch_size=4, max_length=64))
    reward = versions.model_register(project=project, kind="reward", name="rm", weights=rm_dir)
    snapshot = make_snapshot(project, PAIRS)
    return project, base, reward, snapshot


def _ok(job):
    job = wait_for_job(job, timeout=600)
    assert job.status == "succeeded", f"{job.kind}: {job.error}\n{job.traceback}\n{job.log_tail}"
    return job


@pytest.mark.slow
def test_an_ensemble_trains_as_a_job_and_grpo_optimises_against_its_worst_case(
    start_worker, guarded_project
):
    start_worker()
    project, base, rm, snapshot = guarded_project
    job = _ok(
        services.job_launch(
            project=project, kind="train_ensemble",
            params={**TINY, "members": 2, "snapshot": snapshot.pk, "base": base.pk},
        )
    )  # fmt: skip
    ensemble = ModelVersion.objects.get(pk=job.outputs["model_version"])
    assert (ensemble.kind, ensemble.stage) == ("reward", "ensemble")
    assert len(ensemble.metrics["members"]) == 2 and "heldout_accuracy" not in ensemble.metrics

    online = {**TINY, "num_generations": 2, "max_completion_length": 8, "eval_prompts": 2}
    job = _ok(
        services.job_launch(
            project=project, kind="train_grpo",
            params={**online, "snapshot": snapshot.pk, "reward_model": ensemble.pk},
        )
    )  # fmt: skip
    assert job.params["judge"] == rm.pk  # defaulted to another of the project's reward models
    guards = job.outputs["metrics"]["guards"]
    assert len(guards["reward"]["members"]) == 2 and guards["reward"]["aggregate"] == "min"
    assert guards["beta"] > 0  # a KL term by default
    policy = ModelVersion.objects.get(pk=job.outputs["model_version"])
    assert policy.metrics["judge"] == "rm" and policy.metrics["judge_id"] == rm.pk


@pytest.mark.slow
def test_best_of_n_sft_and_online_dpo_run_as_jobs_judged_by_another_reward_model(
    start_worker, guarded_project, tmp_path
):
    start_worker()
    project, base, rm, snapshot = guarded_project
    judge = versions.model_register(
        project=project, kind="reward", name="judge", weights=_negated(rm.weights, tmp_path / "j")
    )
    cases = {
        "train_best_of_n": ("best_of_n", {"n": 2}),
        "train_online_dpo": ("online_dpo", {"iterations": 1, "samples": 2}),
    }
    for kind, (stage, own) in cases.items():
        params = {**TINY, **SAMPLE, **own, "eval_prompts": 2, "snapshot": snapshot.pk}
        job = _ok(services.job_launch(project=project, kind=kind, params=params))
        assert job.params["reward_model"] == rm.pk and job.params["judge"] == judge.pk, kind
        version = ModelVersion.objects.get(pk=job.outputs["model_version"])
        assert (version.stage, version.parent_id, version.job_id) == (stage, base.pk, job.pk)
        assert version.metrics["judge"] == "judge", kind  # never rm, which it was trained against
        metrics = job.outputs["metrics"]
        if kind == "train_best_of_n":
            assert metrics["best_of_n"]["rows"] >= 2 and metrics["best_of_n"]["n"] == 2
        else:  # the human pairs went in with the policy's own
            assert metrics["human_pairs"] == len(PAIRS) and metrics["iterations"][0]["human_pairs"]


@pytest.mark.slow
def test_the_detector_stops_a_grpo_job_whose_proxy_rises_while_the_judge_falls(
    start_worker, guarded_project, tmp_path, client, make_user
):
    """The judge is the proxy with its sign flipped: whatever the policy learns to please the
    proxy with, the judge dislikes by exactly as much (tests/training/test_guards.py's
    construction, through the job path). It is registered as learnt from the snapshot's
    held-out split, the proxy from its training split, and the job names no judge: the
    default (finetuning/judges.py) takes it, not the newer reward model on the proxy's pairs."""
    start_worker()
    project, base, rm, snapshot = guarded_project
    rm.snapshot = snapshot
    rm.save()
    judge = versions.model_register(
        project=project, kind="reward", name="minus-rm", snapshot=snapshot,
        weights=_negated(rm.weights, tmp_path / "j"), metrics={"data_split": "test"},
    )  # fmt: skip
    versions.model_register(  # another seed on the proxy's pairs: newer, never the default
        project=project, kind="reward", name="rm-again", weights=rm.weights, snapshot=snapshot
    )
    params = {
        **TINY, "epochs": 8, "learning_rate": 3e-3, "num_generations": 2,
        "max_completion_length": 6, "eval_prompts": 0, "snapshot": snapshot.pk,
        "reward_model": rm.pk, "judge_every": 1, "judge_prompts": 4, "divergence_window": 3,
    }  # fmt: skip
    job = _ok(services.job_launch(project=project, kind="train_grpo", params=params))
    assert job.params["judge"] == judge.pk
    metrics = job.outputs["metrics"]
    divergence = metrics["divergence"]
    assert metrics["stopped_by"] == "divergence detector" and divergence["stopped"]
    assert str(judge.weights) in divergence["judge"]  # the judge named, not the proxy
    assert job.outputs["stopped"] == f"stopped by the divergence detector: {divergence['reason']}"
    assert metrics["global_step"] < metrics["max_steps"]  # it ended early, the policy kept
    assert ModelVersion.objects.filter(pk=job.outputs["model_version"], stage="grpo").exists()

    client.force_login(make_user("boss", is_staff=True))
    page = client.get(reverse("finetuning:job", args=[job.pk])).content.decode()
    assert 'data-testid="detector-stop"' in page and "Stopped by the divergence detector" in page
    assert 'data-testid="divergence-curve"' in page and "minus-rm" in page
    api = client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert api["status"] == "succeeded" and api["outputs"]["stopped"].startswith("stopped by")
