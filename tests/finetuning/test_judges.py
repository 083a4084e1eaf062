"""A policy is never judged by the reward model it was optimised against (finetuning/judges.py):
refused at launch (a stage's `judge`, an Evaluate job's `reward`), at promotion, and in the
runner; nor one that learnt from the same pairs (another seed). By default a reward model on
the other split of the proxy's snapshot is picked, else one whose data is unknown, or none,
which a divergence detector refuses."""

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
    assert job.params["judge"] == other.pk  # the default: here one whose data is unknown


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


# --- the judge must not share the proxy's training data ------------------------------------


@pytest.fixture
def split_world(loop_project, tmp_path):
    """A snapshot with both splits; the proxy rm on its training split; `seed2`, another seed
    on the same split (the newest: the old default); `held_out` on its test split."""
    from tests.conftest import new_snapshot

    project, base = loop_project
    snap = new_snapshot(tmp_path, project, PAIRS)
    snap.counts = {**snap.counts, "test": 2}
    snap.save()

    def reward(name, split=None):
        metrics = {"data_split": split} if split else {}
        return versions.model_register(
            project=project, kind="reward", name=name, weights=f"/{name}", snapshot=snap,
            metrics=metrics,
        )  # fmt: skip

    rm = reward("rm")
    held_out = reward("held-out", "test")
    seed2 = reward("seed2", "train")
    job = Job.objects.create(project=project, kind="train_grpo", params={"reward_model": rm.pk})
    policy = versions.model_register(
        project=project, kind="policy", name="grpo", weights="/p", parent=base, job=job,
        activate_if_first=False,
    )  # fmt: skip
    return project, snap, rm, held_out, seed2, policy


def test_training_data_is_disjoint_only_across_splits_cut_alike():
    from feedback_app.finetuning.judges import TrainingData, disjoint

    train = TrainingData("train", 0.1, 0, True)
    assert disjoint(train, TrainingData("test", 0.1, 0, True)) is True
    assert disjoint(TrainingData("test", 0.1, 0, True), train) is True
    assert disjoint(train, train) is False  # another seed on the same pairs
    assert disjoint(train, TrainingData("test", 0.1, 1, True)) is False  # another cut: overlap
    assert disjoint(train, TrainingData("test", 0.1, 0, False)) is False  # eval set not held out
    assert disjoint(train, None) is None and disjoint(None, train) is None


def test_the_default_judge_is_one_trained_on_the_held_out_split_not_another_seed(split_world):
    """On the old rule (any other reward model, the active then the newest) this is `seed2`."""
    project, _, rm, held_out, seed2, policy = split_world
    job = services.job_launch(project=project, kind="train_rloo", params={"reward_model": rm.pk})
    assert job.params["judge"] == held_out.pk
    job = services.job_launch(project=project, kind="evaluate", params={"policy": policy.pk})
    assert job.params["reward"] == held_out.pk
    held_out.delete()  # only a same-data judge left: none by default, the detector refused
    job = services.job_launch(project=project, kind="train_rloo", params={"reward_model": rm.pk})
    assert job.params["judge"] is None
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(
            project=project, kind="train_rloo", params={"reward_model": rm.pk, "judge_every": 2}
        )
    assert _fields(caught) == ["judge"] and "held-out split" in caught.value.problems[0].message


def test_a_judge_trained_on_the_same_pairs_is_refused_at_launch_evaluation_and_promotion(
    split_world,
):
    project, _, rm, held_out, seed2, policy = split_world
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(
            project=project, kind="train_grpo", params={"reward_model": rm.pk, "judge": seed2.pk}
        )
    assert _fields(caught) == ["judge"] and "same pairs" in caught.value.problems[0].message
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(
            project=project, kind="evaluate", params={"policy": policy.pk, "reward": seed2.pk}
        )
    assert _fields(caught) == ["reward"] and "same pairs" in caught.value.problems[0].message
    policy.metrics = {"win_rate": 0.9, "judge_id": seed2.pk}
    policy.save()
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(project=project, kind="promote", params={"model_version": policy.pk})
    assert _fields(caught) == ["model_version"] and "same pairs" in str(caught.value.problems)
    policy.metrics = {"win_rate": 0.9, "judge_id": held_out.pk}
    policy.save()
    services.job_launch(project=project, kind="promote", params={"model_version": policy.pk})


def test_a_reward_model_learns_from_the_held_out_split_only_when_asked_and_it_has_pairs(
    split_world, loop_project
):
    project, snap, *_ = split_world
    _, base = loop_project
    params = {"snapshot": snap.pk, "base": base.pk}
    job = services.job_launch(project=project, kind="train_reward", params=params)
    assert job.params["data_split"] == "train"
    job = services.job_launch(
        project=project, kind="train_reward", params={**params, "data_split": "test"}
    )
    assert job.params["data_split"] == "test"
    for bad in ("both", ["test"]):
        with pytest.raises(InvalidInput) as caught:
            services.job_launch(
                project=project, kind="train_reward", params={**params, "data_split": bad}
            )
        assert _fields(caught) == ["data_split"]
    snap.counts = {**snap.counts, "test": 0}
    snap.save()
    with pytest.raises(InvalidInput) as caught:
        services.job_launch(
            project=project, kind="train_ensemble", params={**params, "data_split": "test"}
        )
    assert _fields(caught) == ["data_split"] and "no test pairs" in str(caught.value.problems)
