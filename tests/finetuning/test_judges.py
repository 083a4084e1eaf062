"""A policy is never judged by the reward model it was optimised against (finetuning/judges.py):
refused at launch (a stage's `judge`, an Evaluate job's `reward`), at promotion, and in the
runner; by default another reward model of the project is picked, or none, which a divergence
detector refuses."""

from __future__ import annotations

import pytest

from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import Job
from feedback_app.finetuning import services, versions
from feedback_app.finetuning.runners.evaluation import policy_evaluate

PAIRS = [{"prompt": f"p{i}", "chosen": " a", "rejected": " b"} for i in range(3)]


@pytest.fixture
def rl_world(loop_project, make_snapshot):
    """A base, two reward models, and a policy a GRPO job trained against the first."""
    project, base = loop_project
    make_snapshot(project, PAIRS)
    rm = versions.model_register(project=project, kind="reward", name="rm", weights="/rm")
    other = versions.model_register(project=project, kind="reward", name="rm2", weights="/rm2")
    job = Job.objects.create(project=project, kind="train_grpo", params={"reward_model": rm.pk})
    policy = versions.model_register(
        project=project, kind="policy", name="grpo", weights="/p", parent=base, job=job,
        activate_if_first=False,
    )  # fmt: skip
    return project, base, rm, other, policy


def _fields(exc: pytest.ExceptionInfo) -> list[str]:
    return [p.field for p in exc.value.problems]


def test_a_stage_against_a_reward_model_refuses_that_model_as_its_judge(rl_world):
    project, _, rm, other, _ = rl_world
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(
            project=project, kind="train_grpo", params={"reward_model": rm.pk, "judge": rm.pk}
        )
    assert _fields(caught) == ["judge"] and "optimised against" in caught.value.problems[0].message
    job = services.job_launch(
        project=project, kind="train_best_of_n", params={"reward_model": rm.pk}
    )
    assert job.params["judge"] == other.pk  # the default: another reward model of the project


def test_a_divergence_detector_without_an_independent_judge_is_a_400_naming_judge(rl_world):
    project, _, rm, other, _ = rl_world
    other.delete()
    params = {"reward_model": rm.pk, "judge_every": 2}
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(project=project, kind="train_rloo", params=params)
    assert _fields(caught) == ["judge"]
    # Without the detector the run may go ahead: its evaluation is skipped, never self-judged.
    job = services.job_launch(project=project, kind="train_rloo", params={"reward_model": rm.pk})
    assert job.params["judge"] is None


def test_evaluating_a_policy_with_the_reward_model_it_was_optimised_against_is_refused(rl_world):
    project, _, rm, other, policy = rl_world
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(
            project=project, kind="evaluate", params={"policy": policy.pk, "reward": rm.pk}
        )
    assert _fields(caught) == ["reward"]
    job = services.job_launch(project=project, kind="evaluate", params={"policy": policy.pk})
    assert job.params["reward"] == other.pk  # rm is the active one, yet not chosen
    other.delete()
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(project=project, kind="evaluate", params={"policy": policy.pk})
    assert _fields(caught) == ["reward"] and "independent" in caught.value.problems[0].message


def test_the_evaluation_runner_refuses_the_training_reward_even_if_asked_directly(rl_world):
    _, _, rm, _, policy = rl_world
    with pytest.raises(ValueError, match="optimised against"):
        policy_evaluate(policy=policy, reward=rm, prompts=["p"], config=None, reporter=None)


def test_a_policy_judged_by_its_training_reward_cannot_be_promoted(rl_world):
    project, _, rm, other, policy = rl_world
    policy.metrics = {"win_rate": 0.9, "judge_id": rm.pk}
    policy.save()
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(project=project, kind="promote", params={"model_version": policy.pk})
    assert _fields(caught) == ["model_version"]
    policy.metrics = {"win_rate": 0.9, "judge_id": other.pk}
    policy.save()
    services.job_launch(project=project, kind="promote", params={"model_version": policy.pk})
