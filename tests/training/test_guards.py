"""Guards against over-optimisation: ensemble reward, clipping, independent judge, detector."""

import json
from pathlib import Path

import pytest

from training.config import ConfigError, GRPOTrainConfig, RewardTrainConfig, RLOOTrainConfig
from training.guards import (
    EnsembleReward,
    GuardError,
    aggregate_scores,
    clip,
    divergence,
    independent_judge,
)
from training.online_rl import train_grpo, train_rloo
from training.reward import RewardScorer, train_reward


def test_aggregates_take_the_worst_case_or_mean_minus_k_std():
    members = [[1.0, 4.0, 2.0], [3.0, 0.0, 2.0]]
    assert aggregate_scores(members, "min", 1.0) == [1.0, 0.0, 2.0]
    assert aggregate_scores(members, "mean", 1.0) == [2.0, 2.0, 2.0]
    assert aggregate_scores(members, "mean_minus_std", 1.0) == [1.0, 0.0, 2.0]
    assert aggregate_scores(members, "mean_minus_std", 0.5) == [1.5, 1.0, 2.0]
    with pytest.raises(GuardError, match="^reward_aggregate: must be one of"):
        aggregate_scores(members, "max", 1.0)


def test_clipping_bounds_rewards_into_the_range():
    assert clip([-5.0, 0.5, 9.0], (-1.0, 1.0)) == [-1.0, 0.5, 1.0]
    assert clip([-5.0, 9.0], None) == [-5.0, 9.0]


def _counts(word):
    def reward(prompts, completions, **_):
        return [float(c.count(word)) for c in completions]

    reward.__name__ = f"count_{word}"
    return reward


def test_an_ensemble_reward_is_one_callable_that_records_what_it_clipped():
    ensemble = EnsembleReward([_counts("a"), _counts("b")], aggregate="min", clip_range=(0, 1))
    assert ensemble.__name__ == "reward_ensemble_min"
    scores = ensemble(prompts=["p"] * 3, completions=["aab", "aabb b", "xyz"])
    assert scores == [1.0, 1.0, 0.0]  # min(2, 1), min(2, 3) clipped to 1, min(0, 0)
    described = ensemble.describe()
    assert described["aggregate"] == "min" and described["clip_range"] == [0, 1]
    assert described["clipped_share"] == pytest.approx(1 / 3)
    assert described["mean_member_std"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)


def test_bad_guard_settings_are_refused_by_name():
    with pytest.raises(ConfigError, match="^reward_clip_range: must be None or"):
        GRPOTrainConfig(reward_clip_range=(1.0, -1.0))
    with pytest.raises(ConfigError, match="^reward_aggregate: must be one of"):
        RLOOTrainConfig(reward_aggregate="max")
    assert GRPOTrainConfig.from_dict({"reward_clip_range": [-2, 2]}).reward_clip_range == (-2, 2)
    assert GRPOTrainConfig().beta > 0  # a KL tie by default, unlike TRL's GRPO


def test_the_judge_is_never_the_training_reward(tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    with pytest.raises(GuardError, match="is the reward the policy is optimised against"):
        independent_judge([str(a)], judge=str(tmp_path / "." / "a"))
    with pytest.raises(GuardError, match="^judge: no reward model independent"):
        independent_judge([a, b], pool=[b, a])
    with pytest.raises(GuardError, match="is the reward the policy"):
        independent_judge([a], judge=[c, a])  # an ensemble that contains it
    lexicon = _counts("x")
    with pytest.raises(GuardError):
        independent_judge([lexicon], judge=lexicon)
    judge = independent_judge([a], judge=lambda p, t: len(t))
    assert judge.score(["p", "q"], ["ab", "abc"]) == [2.0, 3.0]


def test_the_judge_comes_from_the_pool_members_not_trained_against(
    tiny_base_model, toy_pairs, tmp_path
):
    rm = tmp_path / "rm"
    train_reward(tiny_base_model, toy_pairs[:4], rm, RewardTrainConfig(epochs=1, batch_size=4))
    judge = independent_judge([tmp_path / "other"], pool=[tmp_path / "other", rm])
    assert judge.members == [str(rm)]
    texts = [p["chosen"] for p in toy_pairs[:2]]
    prompts = [p["prompt"] for p in toy_pairs[:2]]
    assert judge.score(prompts, texts) == pytest.approx(
        RewardScorer(rm).score_completions(prompts, texts)
    )


@pytest.mark.parametrize(
    ("proxy", "judge", "stop"),
    [
        ([0, 1, 2], [0, 0, -1], True),  # proxy up, judge down
        ([0, 1, 2], [1, 1, 1], True),  # proxy up, judge flat
        ([0, 1, 2], [0, 1, 2], False),  # both up: learning, not hacking
        ([2, 1, 0], [0, -1, -2], False),  # proxy not rising
        ([0, 1], [0, -1], False),  # fewer evaluations than the window
        ([5, 0, 1, 2], [0, 9, 8, 8], True),  # only the last window counts
        ([0, 2, 1], [0, -1, -1], True),  # rising on the whole (slope > 0, last > first)
        ([0, 3, 0], [0, -1, -2], False),  # back where it started
    ],
)
def test_the_divergence_rule_on_hand_made_curves(proxy, judge, stop):
    decision = divergence(proxy, judge, window=3)
    assert decision.stop is stop
    if stop:
        assert "training reward rose" in decision.reason and "independent judge" in decision.reason


def test_the_divergence_rule_ignores_a_small_proxy_rise_and_counts_a_small_judge_rise_as_none():
    assert divergence([0, 0.1, 0.2], [0, 0, 0], window=3).stop
    assert not divergence([0, 0.1, 0.2], [0, 0, 0], window=3, min_rise=0.5).stop
    assert not divergence([0, 1, 2], [0, 0.1, 0.2], window=3).stop
    assert divergence([0, 1, 2], [0, 0.1, 0.2], window=3, tolerance=0.2).stop


@pytest.fixture(scope="module")
def prompts(toy_pairs):
    return [{"prompt": p["prompt"]} for p in toy_pairs]


def _rl(cls, **changes):
    values = {
        "learning_rate": 3e-3,
        "batch_size": 8,
        "num_generations": 4,
        "max_completion_length": 6,
    }
    return cls(**{**values, **changes})


def test_the_detector_stops_a_run_whose_proxy_rises_while_the_judge_falls(
    tiny_base_model, prompts, tmp_path
):
    """The proxy rewards the letter e, the judge penalises it: hacking by construction."""
    proxy = _counts("e")

    def judge(prompt, text):
        return -float(text.count("e"))

    config = _rl(GRPOTrainConfig, epochs=4, judge_every=2, judge_prompts=8, divergence_window=3)
    result = train_grpo(tiny_base_model, proxy, prompts, tmp_path, config, judge=judge)
    m = result.metrics
    d = m["divergence"]
    assert result.stopped and m["stopped_by"] == "divergence detector"
    assert d["stopped"] and "independent judge fell" in d["reason"]
    assert m["global_step"] == d["stopped_at_step"] < m["max_steps"]
    proxy_curve = [p["proxy"] for p in d["curve"]]
    judge_curve = [p["judge"] for p in d["curve"]]
    assert proxy_curve[-1] > proxy_curve[-3] and judge_curve[-1] < judge_curve[-3]
    assert all(p["kl"] >= 0 for p in d["curve"]) and d["curve"][0]["step"] == 0
    assert m["guards"]["judge"] == "judge" and m["guards"]["beta"] == config.beta
    saved = json.loads((Path(result.output_dir) / "metrics.json").read_text())
    assert saved["stopped"] and saved["metrics"]["divergence"]["reason"] == d["reason"]


def test_a_detector_without_an_independent_judge_is_refused(tiny_base_model, prompts, tmp_path):
    proxy = _counts("e")
    with pytest.raises(GuardError, match="^judge: no reward model independent"):
        train_grpo(tiny_base_model, proxy, prompts, tmp_path, _rl(GRPOTrainConfig, judge_every=1))


def test_grpo_and_rloo_train_against_a_clipped_reward_model_ensemble(
    tiny_base_model, toy_pairs, prompts, tmp_path
):
    members = []
    for seed in (0, 1):
        out = tmp_path / f"rm{seed}"
        config = RewardTrainConfig(epochs=1, batch_size=4, seed=seed, learning_rate=1e-3)
        train_reward(tiny_base_model, toy_pairs, out, config)
        members.append(str(out))
    changes = {"reward_clip_range": (-0.5, 0.5), "batch_size": 4, "epochs": 0.5}
    for train, cls in ((train_grpo, GRPOTrainConfig), (train_rloo, RLOOTrainConfig)):
        config = _rl(cls, reward_aggregate="mean_minus_std", **changes)
        result = train(tiny_base_model, members, prompts, tmp_path / cls.__name__, config)
        reward = result.metrics["guards"]["reward"]
        assert reward["members"] == members and reward["aggregate"] == "mean_minus_std"
        assert reward["clip_range"] == [-0.5, 0.5] and reward["mean_member_std"] > 0
        assert "last/rewards/reward_ensemble_mean_minus_std/mean" in result.metrics
        assert all(-0.5 <= h["reward"] <= 0.5 for h in result.history if "reward" in h)
        assert result.metrics["divergence"] is None and not result.stopped


def test_an_ensemble_cannot_be_handed_to_trl_as_a_path(tiny_base_model, prompts, tmp_path):
    with pytest.raises(ValueError, match="^reward_as: 'path' takes one reward model directory"):
        train_grpo(tiny_base_model, _counts("e"), prompts, tmp_path, reward_as="path")
