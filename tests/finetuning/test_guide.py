"""The guided loop's pure rules: the next step, verdicts, the KL formatter, the gate outlook."""

import pytest

from feedback_app.finetuning import guide
from feedback_app.finetuning.guide import LoopState, next_step

RANKED = dict(has_tasks=True, round_open=False, rankings_since_snapshot=0, snapshot=3)


@pytest.mark.parametrize(
    ("state", "step"),
    [
        (LoopState(has_tasks=False, round_open=False, rankings_since_snapshot=0), "generate"),
        (LoopState(has_tasks=True, round_open=True, rankings_since_snapshot=2), "rank"),
        (LoopState(has_tasks=True, round_open=False, rankings_since_snapshot=8), "snapshot"),
        (LoopState(**RANKED), "reward"),
        (LoopState(**RANKED, reward_trained=True), "policy"),
        (LoopState(**RANKED, reward_trained=True, policy=9), "evaluate"),
        (LoopState(**RANKED, reward_trained=True, policy=9, policy_verdict="better"), "promote"),
        (LoopState(**RANKED, reward_trained=True, policy=9, policy_verdict="better",
                   policy_active=True), "generate"),
        (LoopState(**RANKED, reward_trained=True, policy=9, policy_verdict="worse"), "generate"),
        (LoopState(**{**RANKED, "rankings_since_snapshot": 5}, reward_trained=True, policy=9,
                   policy_verdict="better", policy_active=True), "snapshot"),
    ],
)  # fmt: skip
def test_next_step_follows_the_turn_from_the_projects_state(state, step):
    got = next_step(state)
    assert got.step == step and got.reason
    assert got.kind == guide.STEP_KINDS[step]


def test_a_lost_policy_is_not_recommended_for_promotion_and_the_reason_says_so():
    state = LoopState(
        **RANKED, reward_trained=True, policy=9, policy_verdict="not clearly different"
    )
    assert "did not clearly win" in next_step(state).reason


def test_the_step_after_a_job_kind_is_the_next_in_the_turn():
    assert guide.step_after("build_dataset") == "reward"
    assert guide.step_after("evaluate") == "promote"
    assert guide.step_after("generate") == "rank"
    assert guide.step_after("review_scores") is None


@pytest.mark.parametrize(
    ("rate", "low", "high", "said"),
    [(0.8, 0.6, 0.9, "better"), (0.55, 0.4, 0.7, "not clearly different"),
     (0.2, 0.1, 0.45, "worse"), (None, None, None, None)],
)  # fmt: skip
def test_verdict_reads_the_whole_interval_not_the_point_estimate(rate, low, high, said):
    assert guide.verdict(rate, low, high) == said


def test_kl_is_shown_with_its_noise_and_never_as_a_bare_negative():
    assert guide.kl_display(-0.059, 0.03) == "0.00 ± 0.06"
    assert guide.kl_display(0.4321, 0.05) == "0.43 ± 0.10"
    assert not guide.kl_display(-0.059).startswith("-")
    assert "noise" in guide.kl_display(-0.059)
    assert guide.kl_display(None) == "–" and guide.kl_display(float("nan")) == "–"


def test_promote_warning_for_a_loss_or_an_interval_including_one_half_only():
    lost = {"win_rate": 0.2, "win_rate_low": 0.1, "win_rate_high": 0.4}
    unclear = {"win_rate": 0.6, "win_rate_low": 0.4, "win_rate_high": 0.75}
    won = {"win_rate": 0.8, "win_rate_low": 0.6, "win_rate_high": 0.9}
    assert "lost" in guide.promote_warning(lost)
    assert "includes 0.5" in guide.promote_warning(unclear)
    assert guide.promote_warning(won) is None
    assert guide.promote_warning({}) is None  # never evaluated: a base or a reward model
    assert "did not beat" in guide.promote_warning({"win_rate": 0.5})


def test_the_gate_cannot_pass_when_even_all_wins_leave_the_lower_bound_below_the_threshold():
    assert not guide.gate_outlook(3, 0.5).can_pass  # Wilson low of 3/3 is 0.44
    assert guide.gate_outlook(4, 0.5).can_pass  # 4/4: 0.51
    assert not guide.gate_outlook(16, 0.85).can_pass
    assert not guide.gate_outlook(0, 0.5).can_pass
    text = guide.gate_outlook_text(guide.gate_outlook(3, 0.5), 0.5)
    assert "cannot pass" in text and "3 comparisons" in text


def test_the_gate_outlook_names_the_least_win_rate_that_passes():
    outlook = guide.gate_outlook(16, 0.5)
    assert outlook.needed_win_rate == 0.75  # 12 of 16: low 0.505; 11.5 of 16: 0.474
    assert "0.75" in guide.gate_outlook_text(outlook, 0.5)
