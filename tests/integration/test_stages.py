"""Every policy stage after the reward model runs end to end on a real Celery worker: SFT, KTO,
GRPO and RLOO each train a tiny model, report progress and metrics over steps, register a
version with its parent, job and stage, and are evaluated against the parent like DPO."""

import pytest

from feedback_app.annotation.importing import check_records
from feedback_app.annotation.services import prompts_import
from feedback_app.core.models import Job, ModelVersion, Project
from feedback_app.finetuning import services, versions
from tests.workers import wait_for_job

PROMPTS = ["The list type is", "A function call", "The with statement", "Each module object"]
GOOD, BAD = " useful and simple.", " raises an error."
SFT_ROWS = [{"prompt": p, "completion": GOOD} for p in PROMPTS]
KTO_ROWS = [
    {"prompt": p, "completion": c, "label": c == GOOD} for p in PROMPTS for c in (GOOD, BAD)
]
PAIRS = [{"prompt": p, "chosen": GOOD, "rejected": BAD} for p in PROMPTS]
TINY = {"epochs": 1, "batch_size": 4, "max_length": 64, "eval_prompts": 2}
ONLINE = {**TINY, "num_generations": 2, "max_completion_length": 8}


@pytest.fixture
def stage_project(tiny_policy, make_snapshot, tmp_path):
    from training.config import RewardTrainConfig
    from training.reward import train_reward

    project = Project.objects.create(name="stages", candidates_per_task=2)
    records = check_records(enumerate(({"prompt": p} for p in PROMPTS), 1), k=2)
    prompts_import(project=project, records=records)
    base = versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    rm_dir = tmp_path / "rm"
    train_reward(tiny_policy, PAIRS, rm_dir, RewardTrainConfig(batch_size=4, max_length=64))
    reward = versions.model_register(project=project, kind="reward", name="rm", weights=rm_dir)
    # Another seed: the judge of the online RL runs, which never judge by their own reward.
    seed_dir = tmp_path / "rm-seed1"
    train_reward(
        tiny_policy, PAIRS, seed_dir, RewardTrainConfig(batch_size=4, max_length=64, seed=1)
    )
    versions.model_register(project=project, kind="reward", name="rm-seed1", weights=seed_dir)
    snapshots = {
        "train_sft": make_snapshot(project, SFT_ROWS, kind="sft"),
        "train_kto": make_snapshot(project, KTO_ROWS, kind="kto"),
        "prompts": make_snapshot(project, PAIRS),
    }
    return project, base, reward, snapshots


@pytest.mark.slow
def test_each_policy_stage_trains_registers_and_evaluates_on_a_real_worker(
    start_worker, stage_project
):
    start_worker()
    project, base, reward, snapshots = stage_project
    cases = {
        "train_sft": (ModelVersion.Stage.SFT, {**TINY, "snapshot": snapshots["train_sft"].pk}),
        "train_kto": (ModelVersion.Stage.KTO, {**TINY, "snapshot": snapshots["train_kto"].pk}),
        "train_grpo": (ModelVersion.Stage.GRPO, {**ONLINE, "snapshot": snapshots["prompts"].pk}),
        "train_rloo": (ModelVersion.Stage.RLOO, {**ONLINE, "snapshot": snapshots["prompts"].pk}),
    }
    for kind, (stage, params) in cases.items():
        job = services.job_launch(project=project, kind=kind, params=params)
        job = wait_for_job(job, timeout=600)
        assert job.status == "succeeded", f"{kind}: {job.error}\n{job.traceback}\n{job.log_tail}"
        assert job.progress == 1.0 and job.metric_history, kind
        version = ModelVersion.objects.get(pk=job.outputs["model_version"])
        assert (version.stage, version.parent, version.job_id) == (stage, base, job.pk)
        assert version.snapshot_id == params["snapshot"] and not version.is_active
        assert "train_loss" in version.metrics or "loss" in str(version.metrics), kind
        # Evaluated as every policy is: win rate against its parent by a reward model, KL.
        assert 0.0 <= version.metrics["win_rate"] <= 1.0, kind
        assert version.metrics["kl_to_parent"] is not None
        # The active reward model judges, except a policy optimised against it (judges.py).
        online = kind in ("train_grpo", "train_rloo")
        assert version.metrics["judge"] == ("rm-seed1" if online else "rm"), kind
        if kind in ("train_grpo", "train_rloo"):
            assert any("reward" in h for h in job.metric_history), kind
    assert set(Job.objects.values_list("status", flat=True)) == {"succeeded"}
