"""Stages that make the most of few labels: a reward ensemble, best-of-n SFT, online DPO."""

import json
from pathlib import Path

import pytest

from training.best_of_n import best_of_n_kl_bound, select_best, train_best_of_n_sft
from training.config import (
    BestOfNSFTConfig,
    ConfigError,
    GenerateConfig,
    OnlineDPOConfig,
    RewardEnsembleConfig,
)
from training.ensemble import member_indices, train_reward_ensemble
from training.generate import generate
from training.online_dpo import train_online_dpo
from training.reward import RewardScorer


def count_e(prompts, completions, **_):
    """A reward that likes the letter e: easy to check which sample is best."""
    return [float(c.count("e")) for c in completions]


@pytest.fixture(scope="module")
def prompts(toy_pairs):
    return [{"prompt": p["prompt"]} for p in toy_pairs[:4]]


def test_bootstrap_members_train_on_resamples_of_the_same_rows():
    rows = member_indices(20, 3, seed=0, bootstrap=True)
    assert [len(r) for r in rows] == [20, 20, 20] and all(0 <= i < 20 for r in rows for i in r)
    assert len({tuple(r) for r in rows}) == 3  # each member sees a different resample
    assert member_indices(4, 2, 0, bootstrap=False) == [[0, 1, 2, 3]] * 2


def test_an_ensemble_is_trained_in_one_call_into_loadable_members(
    tiny_base_model, toy_pairs, tmp_path
):
    seen = []
    config = RewardEnsembleConfig(
        members=2, epochs=1, batch_size=4, learning_rate=1e-3, min_steps=0
    )
    result = train_reward_ensemble(
        tiny_base_model, toy_pairs, tmp_path, config, lambda s, t, m: seen.append((s, t))
    )
    members = result.metrics["members"]
    assert members == [str(tmp_path / "member-0"), str(tmp_path / "member-1")]
    assert [s for s, _ in seen] == [1, 2, 3, 4] and {t for _, t in seen} == {4}
    texts = [" a useful value.", " an error."]
    scores = [RewardScorer(m).score_completions(["x", "x"], texts) for m in members]
    assert scores[0] != scores[1]  # different seeds and resamples: different members
    saved = json.loads((tmp_path / "training_config.json").read_text())
    assert saved["kind"] == "RewardEnsembleConfig" and saved["config"]["members"] == 2


def test_best_of_n_keeps_the_reward_best_sample_of_each_prompt():
    rows = select_best(["p", "q"], [[" a", " bb"], [" ", " c"]], [[1.0, 0.5], [9.0, -1.0]])
    assert [(r["prompt"], r["completion"]) for r in rows] == [("p", " a"), ("q", " c")]
    assert best_of_n_kl_bound(1) == 0 and best_of_n_kl_bound(8) == pytest.approx(1.2044, abs=1e-4)


def test_best_of_n_sft_fine_tunes_on_the_best_of_n_samples(tiny_base_model, prompts, tmp_path):
    config = BestOfNSFTConfig(n=4, max_new_tokens=6, epochs=1, batch_size=4, learning_rate=1e-3)
    result = train_best_of_n_sft(tiny_base_model, count_e, prompts, tmp_path, config)
    m = result.metrics["best_of_n"]
    assert m["n"] == 4 and m["rows"] == 4 and result.metrics["method"] == "best_of_n_sft"
    assert m["mean_reward_best"] > m["mean_reward_all"]
    kept = [json.loads(line) for line in (tmp_path / "best_of_n_rows.jsonl").open()]
    # The kept rows are the best of the policy's own samples (the same seed samples them again).
    again = generate(
        tiny_base_model,
        [p["prompt"] for p in prompts],
        GenerateConfig(num_samples=4, max_new_tokens=6, seed=config.seed),
    ).samples
    for row, samples in zip(kept, again, strict=True):
        assert row["reward"] == max(s.text.count("e") for s in samples if s.text.strip())
    assert result.metrics["global_step"] == 1
    saved = json.loads((tmp_path / "training_config.json").read_text())
    assert saved["kind"] == "BestOfNSFTConfig"
    assert generate(tmp_path, ["A"], GenerateConfig(num_samples=1, max_new_tokens=3)).samples[0]


def test_online_dpo_labels_its_own_samples_and_trains_with_the_human_pairs(
    tiny_base_model, toy_pairs, prompts, tmp_path
):
    config = OnlineDPOConfig(
        iterations=2, samples=4, max_new_tokens=6, epochs=1, batch_size=4, learning_rate=1e-3
    )
    human = toy_pairs[:2]
    result = train_online_dpo(tiny_base_model, count_e, prompts, human, tmp_path, config)
    its = result.metrics["iterations"]
    assert [i["iteration"] for i in its] == [0, 1] and all(i["human_pairs"] == 2 for i in its)
    assert all(i["generated_pairs"] >= 1 for i in its)
    assert result.metrics["global_step"] == sum(i["global_step"] for i in its) >= 2
    pairs = [json.loads(line) for line in (tmp_path / "online_dpo_pairs.jsonl").open()]
    assert {p["iteration"] for p in pairs} == {0, 1}
    for p in pairs:  # best against worst by the reward
        assert p["reward_chosen"] == p["chosen"].count("e") > p["rejected"].count("e")
    assert {h["iteration"] for h in result.history} == {0.0, 1.0}
    assert json.loads((tmp_path / "training_config.json").read_text())["kind"] == "OnlineDPOConfig"
    assert generate(tmp_path, ["A"], GenerateConfig(num_samples=1, max_new_tokens=3)).samples[0]
    assert not list(Path(tmp_path).glob("iteration-*"))  # intermediate policies not kept


def test_bad_few_label_settings_are_refused_by_name():
    with pytest.raises(ConfigError, match="^members: must be an integer in"):
        RewardEnsembleConfig(members=1)
    with pytest.raises(ConfigError, match="^reward_aggregate: must be one of"):
        BestOfNSFTConfig(reward_aggregate="max")
    with pytest.raises(ConfigError, match="^samples: must be an integer in"):
        OnlineDPOConfig(samples=1)
