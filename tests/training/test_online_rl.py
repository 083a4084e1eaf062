import json
from pathlib import Path

import pytest

from training.config import (
    ConfigError,
    GenerateConfig,
    GRPOTrainConfig,
    RewardTrainConfig,
    RLOOTrainConfig,
)
from training.data import PairError
from training.generate import generate
from training.online_rl import RewardModelFunction, train_grpo, train_rloo
from training.reward import RewardScorer, train_reward


@pytest.fixture(scope="module")
def reward_model(tiny_base_model, toy_pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm")
    train_reward(tiny_base_model, toy_pairs, out, RewardTrainConfig(learning_rate=2e-3, epochs=6))
    return str(out)


@pytest.fixture(scope="module")
def prompts(toy_pairs):
    return [{"prompt": p["prompt"]} for p in toy_pairs]


def _config(cls, **changes):
    values = {"learning_rate": 1e-3, "batch_size": 8, "num_generations": 4}
    return cls(**{**values, "max_completion_length": 6, **changes})


@pytest.fixture(scope="module")
def grpo_run(tiny_base_model, reward_model, prompts, tmp_path_factory):
    seen = []

    def progress(step, total, metrics):
        seen.append((step, total, metrics))

    out = tmp_path_factory.mktemp("grpo")
    result = train_grpo(
        tiny_base_model, reward_model, prompts, out, _config(GRPOTrainConfig), progress
    )
    return result, seen


def test_grpo_reports_reward_and_kl_to_the_reference_at_every_step(grpo_run):
    result, seen = grpo_run
    # 8 prompts x 4 samples, 8 completions per step: 4 steps, each logged and reported.
    assert [(s, t) for s, t, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all("reward" in m and "kl" in m for _, _, m in seen)
    assert seen[0][2]["kl"] == 0.0  # the policy is its reference before the first update
    assert any(m["kl"] != 0.0 for _, _, m in seen[1:])
    assert [h["step"] for h in result.history if "kl" in h] == [1.0, 2.0, 3.0, 4.0]
    assert result.metrics["last_kl"] == seen[-1][2]["kl"]
    assert "last/rewards/reward_model/mean" in result.metrics  # our reward model, by name


def test_grpo_measures_generation_and_saves_a_plain_causal_lm(grpo_run):
    result, _ = grpo_run
    m = result.metrics
    assert m["method"] == "grpo" and m["reference"] == "separate copy"
    assert m["samples"] == 32 and m["generated_tokens"] > 0 and m["generation_tokens_per_s"] > 0
    assert 0 < m["generation_share"] < 1 and m["cpu_seconds"] > 0
    # No vLLM here: TRL generated with transformers, and the run says so.
    assert m["generation_engine"]["name"] == "transformers"
    assert m["generation_engine"]["use_vllm"] is False
    out = Path(result.output_dir)
    assert json.loads((out / "training_config.json").read_text())["kind"] == "GRPOTrainConfig"
    assert json.loads((out / "config.json").read_text())["use_cache"] is True
    assert generate(out, ["A list"], GenerateConfig(num_samples=1, max_new_tokens=3)).samples[0]


def test_rloo_runs_end_to_end_with_reward_and_kl(tiny_base_model, reward_model, prompts, tmp_path):
    result = train_rloo(tiny_base_model, reward_model, prompts, tmp_path, _config(RLOOTrainConfig))
    assert result.metrics["method"] == "rloo" and result.metrics["global_step"] == 4
    assert result.metrics["generation_engine"]["use_vllm"] is False
    assert all("reward" in h and "kl" in h for h in result.history if "loss" in h)
    assert json.loads((tmp_path / "training_config.json").read_text())["kind"] == "RLOOTrainConfig"


def test_the_reward_function_scores_as_our_reward_model_does(reward_model, toy_pairs):
    prompts = [p["prompt"] for p in toy_pairs[:3]]
    completions = [p["chosen"] for p in toy_pairs[:3]]
    expected = RewardScorer(reward_model).score_completions(prompts, completions)
    function = RewardModelFunction(reward_model)
    assert function(prompts=prompts, completions=completions, x=1) == pytest.approx(expected)


def test_trl_can_load_the_reward_model_from_its_directory(
    tiny_base_model, reward_model, prompts, tmp_path
):
    config = _config(GRPOTrainConfig, beta=0.0, batch_size=4, num_generations=4)
    result = train_grpo(
        tiny_base_model, reward_model, prompts[:2], tmp_path, config, reward_as="path"
    )
    assert result.metrics["reward_as"] == "path" and result.metrics["global_step"] == 2
    assert result.metrics["reference"] == "none (beta = 0)"
    assert all("reward" in h and "kl" not in h for h in result.history if "loss" in h)


def test_stopped_grpo_still_saves_a_loadable_policy(
    tiny_base_model, reward_model, prompts, tmp_path
):
    result = train_grpo(
        tiny_base_model,
        reward_model,
        prompts,
        tmp_path,
        _config(GRPOTrainConfig),
        progress=lambda step, total, m: True,
    )
    assert result.stopped and result.metrics["global_step"] == 1
    assert generate(tmp_path, ["A"], GenerateConfig(num_samples=1, max_new_tokens=3)).samples[0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("pairs", "rows[0]: preference pairs given to online RL, which takes prompts"),
        ([{"prompt": "a", "completion": " b"}] * 2, "rows[0]: SFT rows given to online RL"),
        ([{"prompt": "a"}], "rows: online RL needs at least 2 rows, got 1"),
        ([{"prompt": "a"}, {"prompt": ""}], "rows[1]['prompt']: must not be empty"),
        (
            [{"prompt": "a"}, {"prompt": "word " * 200}],
            "rows[1]['prompt']: 400 tokens, more than the 96 left by max_completion_length=32",
        ),
    ],
)
def test_unusable_prompts_are_refused_by_name_before_training(
    rows, message, toy_pairs, tiny_base_model, reward_model, tmp_path
):
    rows = toy_pairs if rows == "pairs" else rows
    with pytest.raises(PairError) as info:
        train_grpo(tiny_base_model, reward_model, rows, tmp_path / "out")
    assert str(info.value).startswith(message)
    assert not (tmp_path / "out").exists()


def test_a_missing_reward_model_is_refused_by_name(tiny_base_model, prompts, tmp_path):
    with pytest.raises(PairError, match="^reward_model: no saved model in"):
        train_rloo(tiny_base_model, tmp_path / "none", prompts, tmp_path / "out")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 6}, "batch_size: must be a multiple of num_generations=4"),
        ({"num_generations": 1}, "num_generations: must be an integer in [2, 64]"),
        ({"max_completion_length": 256}, "max_completion_length: must be < max_length=256"),
        ({"loss_type": "ppo"}, "loss_type: must be one of dapo, grpo, dr_grpo, bnpo"),
        ({"beta": -0.1}, "beta: must be a number in [0, 10]"),
    ],
)
def test_bad_online_rl_settings_are_refused_by_name(changes, message):
    with pytest.raises(ConfigError) as info:
        GRPOTrainConfig(**changes)
    assert str(info.value).startswith(message)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("train", "cls"), [(train_grpo, GRPOTrainConfig), (train_rloo, RLOOTrainConfig)]
)
def test_online_rl_raises_the_reward_models_score_of_fresh_samples(
    train, cls, tiny_base_model, reward_model, prompts, tmp_path
):
    from training.config import EvalConfig
    from training.evaluate import compare_policies

    config = _config(cls, learning_rate=3e-3, epochs=8, batch_size=16, num_generations=8)
    result = train(tiny_base_model, reward_model, prompts, tmp_path, config)
    rewards = [h["reward"] for h in result.history if "reward" in h]
    assert sum(rewards[-4:]) > sum(rewards[:4])
    texts = [p["prompt"] for p in prompts]
    judged = compare_policies(
        result.output_dir,
        tiny_base_model,
        texts,
        judge=reward_model,
        config=EvalConfig(samples_per_prompt=4, max_new_tokens=6, seed=1),
    )
    assert judged["win_rate"] > 0.6 and judged["policy_mean_score"] > judged["parent_mean_score"]
    assert judged["kl"] > 0  # it moved away from its parent to get there
