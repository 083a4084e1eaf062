import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.config import RewardTrainConfig
from training.reward import RewardScorer, train_reward


@pytest.fixture(scope="module")
def reward_run(tiny_base_model, toy_pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm")
    config = RewardTrainConfig(learning_rate=2e-3, epochs=6, batch_size=4, min_steps=0)
    return train_reward(tiny_base_model, toy_pairs, out, config)


def test_reward_model_loss_falls_and_it_ranks_chosen_above_rejected(reward_run, toy_pairs):
    losses = [h["loss"] for h in reward_run.history if "loss" in h]
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    scorer = RewardScorer(reward_run.output_dir)
    chosen = scorer.score_completions(
        [p["prompt"] for p in toy_pairs], [p["chosen"] for p in toy_pairs]
    )
    rejected = scorer.score_completions(
        [p["prompt"] for p in toy_pairs], [p["rejected"] for p in toy_pairs]
    )
    assert all(c > r for c, r in zip(chosen, rejected, strict=True))


def test_reward_run_saves_config_metrics_and_history(reward_run, tiny_base_model):
    out = reward_run.output_dir
    saved = json.loads(Path(f"{out}/training_config.json").read_text())
    assert saved["kind"] == "RewardTrainConfig" and saved["config"]["epochs"] == 6
    metrics = json.loads(Path(f"{out}/metrics.json").read_text())
    assert metrics["stopped"] is False and len(metrics["history"]) >= 12
    assert metrics["metrics"]["pairs_used"] == 8 and metrics["metrics"]["pairs_per_s"] > 0
    base = load_file(f"{tiny_base_model}/model.safetensors")
    trained = load_file(f"{out}/model.safetensors")
    key = next(k for k in trained if k.endswith("h.0.attn.c_attn.weight"))
    base_key = next(k for k in base if k.endswith("h.0.attn.c_attn.weight"))
    assert not torch.equal(base[base_key], trained[key])


def test_scorer_scores_plain_texts_and_chats(reward_run):
    scorer = RewardScorer(reward_run.output_dir)
    assert len(scorer.score(["a", "a longer text here"])) == 2
    chat = [{"role": "user", "content": "hi"}]
    assert len(scorer.score_completions([chat], ["hello"])) == 1


def test_stopped_reward_training_still_saves_a_loadable_model(tiny_base_model, toy_pairs, tmp_path):
    result = train_reward(
        tiny_base_model,
        toy_pairs,
        tmp_path,
        RewardTrainConfig(epochs=3, batch_size=2),
        progress=lambda step, total, m: step >= 2,
    )
    assert result.stopped and result.metrics["global_step"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["stopped"] is True
    assert len(RewardScorer(tmp_path).score(["x"])) == 1


def test_a_reward_model_depends_on_its_seed_not_on_what_ran_before(
    tiny_base_model, toy_pairs, tmp_path
):
    """The new score head is seeded: test order once changed a later test's reward model."""
    scores = []
    for run, noise in enumerate((1, 2)):
        torch.manual_seed(noise)  # whatever ran before left the global RNG somewhere else
        out = tmp_path / str(run)
        train_reward(tiny_base_model, toy_pairs[:4], out, RewardTrainConfig(epochs=1, batch_size=4))
        scores.append(RewardScorer(out).score([" a useful value.", " an error."]))
    assert scores[0] == scores[1]


def test_few_pairs_train_for_at_least_min_steps_steps_and_say_how_many_epochs_ran(
    tiny_base_model, toy_pairs, tmp_path
):
    """One epoch of 8 pairs at batch 4 is 2 steps: min_steps raises the epochs to reach 6."""
    config = RewardTrainConfig(epochs=1, batch_size=4, min_steps=6)
    result = train_reward(tiny_base_model, toy_pairs, tmp_path / "a", config)
    assert result.metrics["global_step"] == 6 and result.metrics["epochs_run"] == 3.0
    plain = train_reward(tiny_base_model, toy_pairs, tmp_path / "b", config.replace(min_steps=0))
    assert plain.metrics["global_step"] == 2 and plain.metrics["epochs_run"] == 1.0
