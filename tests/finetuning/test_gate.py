"""The promotion gate, a pure decision: each check passes or fails alone, a missing input fails
its check with a reason, and the record keeps inputs, thresholds and reasons."""

import doctest
import math

import pytest

from feedback_app.finetuning import gate
from feedback_app.finetuning.gate import GateInputs, GateThresholds, gate_decide, gate_inputs

LOOSE = GateThresholds(min_win_rate_low=0.5, max_kl=1.0, min_reward_accuracy=0.6)
GOOD = GateInputs(win_rate=0.8, win_rate_low=0.62, kl=0.4, reward_accuracy=0.9)


def test_all_checks_passing_pass_with_no_reason():
    decision = gate_decide(GOOD, LOOSE)
    assert decision.passed and decision.reasons == [] and decision.reason == "passed"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"win_rate_low": 0.49}, "win rate lower bound 0.490 < 0.500"),
        ({"kl": 1.01}, "KL to parent 1.010 > 1.000"),
        ({"reward_accuracy": 0.59}, "reward model accuracy 0.590 < 0.600"),
    ],
)
def test_each_check_alone_fails_the_gate_and_says_why(change, reason):
    inputs = GateInputs(**{**GOOD.__dict__, **change})
    decision = gate_decide(inputs, LOOSE)
    assert not decision.passed and decision.reasons == [reason]


def test_thresholds_are_inclusive_at_their_edge():
    edge = GateInputs(win_rate=0.6, win_rate_low=0.5, kl=1.0, reward_accuracy=0.6)
    assert gate_decide(edge, LOOSE).passed


def test_the_point_estimate_is_not_enough_the_lower_end_of_its_interval_decides():
    lucky = GateInputs(win_rate=0.9, win_rate_low=0.45, kl=0.1, reward_accuracy=0.9)
    assert not gate_decide(lucky, LOOSE).passed


@pytest.mark.parametrize("missing", ["win_rate_low", "kl", "reward_accuracy"])
def test_a_missing_input_fails_its_check_rather_than_passing_it(missing):
    inputs = GateInputs(**{**GOOD.__dict__, missing: None})
    decision = gate_decide(inputs, LOOSE)
    assert not decision.passed and len(decision.reasons) == 1


def test_every_failed_check_is_listed():
    bad = GateInputs(win_rate=0.1, win_rate_low=0.0, kl=9.0, reward_accuracy=0.1)
    decision = gate_decide(bad, LOOSE)
    assert len(decision.reasons) == 3 and decision.reason == "; ".join(decision.reasons)


def test_an_impossible_threshold_fails_even_a_perfect_policy():
    perfect = GateInputs(win_rate=1.0, win_rate_low=0.97, kl=0.0, reward_accuracy=1.0)
    assert not gate_decide(perfect, GateThresholds(1.0, 1.0, 0.6)).passed


def test_inputs_are_read_from_the_stored_metrics_and_junk_is_missing():
    inputs = gate_inputs(
        {"win_rate": 0.7, "win_rate_low": 0.55, "kl_to_parent": math.nan},
        {"heldout_accuracy": True},
    )
    assert inputs == GateInputs(win_rate=0.7, win_rate_low=0.55, kl=None, reward_accuracy=None)


def test_the_record_holds_inputs_thresholds_and_the_decision():
    record = gate_decide(GOOD, FULL).to_dict()
    assert record == {
        "passed": True,
        "reason": "passed",
        "reasons": [],
        "inputs": {
            "win_rate": 0.8, "win_rate_low": 0.62, "kl": 0.4, "reward_accuracy": 0.9,
            "kl_to_base": None, "lc_win_rate": None, "length_ratio": None,
            "reward_accuracy_source": "heldout", "reward_accuracy_random": None,
            "reward_pairs_random": None, "reward_accuracy_gold": None, "reward_pairs_gold": None,
            "judge_independent": True,
        },
        "thresholds": {
            "min_win_rate_low": 0.5, "max_kl": 1.0, "min_reward_accuracy": 0.6,
            "max_kl_to_base": 20.0, "min_lc_win_rate": 0.5, "max_length_ratio": 2.0,
        },
    }  # fmt: skip


FULL = GateThresholds(0.5, 1.0, 0.6, max_kl_to_base=20.0, min_lc_win_rate=0.5,
                      max_length_ratio=2.0)  # fmt: skip


def test_the_lineage_budget_length_and_an_optimised_against_judge_each_fail_the_gate():
    metrics = {
        "win_rate": 0.8, "win_rate_low": 0.62, "kl_to_parent": 0.4, "kl_to_base": 25.0,
        "lc_win_rate": 0.4, "length_ratio": 2.5, "judge_id": 7, "optimised_against": 7,
    }  # fmt: skip
    inputs = gate_inputs(metrics, {"heldout_accuracy": 0.5, "yardstick_accuracy": 0.9})
    reasons = gate_decide(inputs, FULL).reasons
    assert inputs.reward_accuracy == 0.9 and inputs.reward_accuracy_source == "yardstick"
    assert [r.split(" ")[0] for r in reasons] == ["KL", "length-controlled", "length", "judged"]


def test_the_reward_accuracy_is_read_on_the_random_yardstick_not_the_hard_held_out_split():
    inputs = gate_inputs({}, {"heldout_accuracy": 0.5, "yardstick_accuracy": 0.75})
    assert inputs.reward_accuracy == 0.75
    assert gate_inputs({}, {"heldout_accuracy": 0.5}).reward_accuracy_source == "heldout"


def test_doctests():
    assert doctest.testmod(gate).failed == 0


def test_gold_pairs_join_the_random_ones_in_the_reward_check_and_are_kept_apart():
    metrics = {"heldout_accuracy": 0.9, "yardstick_accuracy": 0.7, "yardstick_pairs": 30,
               "gold_accuracy": 0.4, "gold_pairs": 10}  # fmt: skip
    policy = {"win_rate": 0.8, "win_rate_low": 0.62, "kl_to_parent": 0.4}
    inputs = gate_inputs(policy, metrics)
    assert inputs.reward_accuracy == pytest.approx(0.625)  # (0.7 * 30 + 0.4 * 10) / 40
    assert inputs.reward_accuracy_source == "yardstick+gold"
    assert (inputs.reward_accuracy_random, inputs.reward_pairs_random) == (0.7, 30)
    assert (inputs.reward_accuracy_gold, inputs.reward_pairs_gold) == (0.4, 10)
    decision = gate_decide(inputs, GateThresholds(0.0, 100.0, 0.65))
    assert decision.reasons == [
        "reward model accuracy 0.625 < 0.650 (random 0.700 on 30 pairs, gold 0.400 on 10)"
    ]
    assert decision.to_dict()["inputs"]["reward_accuracy_gold"] == 0.4
    # Without gold, the random pairs alone decide (0.7 passes the same threshold).
    alone = gate_inputs(policy, {**metrics, "gold_accuracy": None, "gold_pairs": None})
    assert alone.reward_accuracy == 0.7 and alone.reward_accuracy_gold is None
    assert not gate_decide(alone, GateThresholds(0.0, 100.0, 0.65)).reasons
