import pytest

from training.config import EvalConfig
from training.evaluate import compare_policies, preference_accuracy_policy


def test_a_policy_against_itself_has_zero_margin_and_chance_accuracy(tiny_base_model, toy_pairs):
    result = preference_accuracy_policy(tiny_base_model, tiny_base_model, toy_pairs, beta=0.1)
    assert result == {"accuracy": 0.5, "mean_margin": 0.0, "pairs": 8}


def test_comparing_a_policy_with_itself_ties_and_has_zero_kl(tiny_base_model):
    config = EvalConfig(samples_per_prompt=2, max_new_tokens=8)
    result = compare_policies(
        tiny_base_model,
        tiny_base_model,
        ["A list", "The for"],
        judge=lambda p, t: len(t),
        config=config,
    )
    assert result["win_rate"] == 0.5 and result["comparisons"] == 4
    # Four ties: the Wilson interval is centred on 1/2 and wide (n = 4).
    assert result["win_rate_low"] == pytest.approx(1 - result["win_rate_high"])
    assert result["win_rate_low"] < 0.2 and result["win_rate_high"] > 0.8
    assert result["kl"] == pytest.approx(0.0, abs=1e-5)
    assert result["policy_samples"] == result["parent_samples"]
