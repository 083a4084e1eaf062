"""Judge calibration: hand-made cases worked out below, a simulated judge with planted faults."""

from __future__ import annotations

import math

import pytest

from feedback_app.preferences.quality.calibration import (
    JudgeComparison,
    calibrate,
    judge_flags,
    judge_ranks,
    trusted,
)
from feedback_app.preferences.quality.judgements import Judgement
from feedback_app.preferences.quality.simulate import Bot, simulate, simulate_judge

# One task, candidates 1, 2, 3 of lengths 100, 50, 10. Two people rank 1 > 2 > 3, one 2 > 1 > 3:
# the majority is "a" on every pair. The judge: (1, 2) a in both orders -> a; (1, 3) the first
# shown both times -> tie, inconsistent; (2, 3) b in both orders -> b.
PEOPLE = [
    Judgement(1, 10, {1: 1, 2: 2, 3: 3}),
    Judgement(1, 11, {1: 1, 2: 2, 3: 3}),
    Judgement(1, 12, {1: 2, 2: 1, 3: 3}),
]
JUDGE = [
    JudgeComparison(1, 1, 2, 1, 1),
    JudgeComparison(1, 1, 3, 1, -1),
    JudgeComparison(1, 2, 3, -1, -1),
]
LENGTHS = {1: 100, 2: 50, 3: 10}


@pytest.fixture(scope="module")
def hand():
    return calibrate(JUDGE, PEOPLE, gold={1: {1: 1, 2: 2, 3: 3}}, lengths=LENGTHS, replicates=50)


def test_agreement_with_the_people_counts_a_tie_as_a_verdict(hand):
    p = hand.people
    assert (p.agreement.value, p.agreement.n) == (pytest.approx(1 / 3), 3)  # only (1, 2)
    assert (p.decided_accuracy.value, p.decided_accuracy.n) == (0.5, 2)  # (1, 2) yes, (2, 3) no


def test_agreement_with_gold_gives_a_tie_half(hand):
    assert hand.gold.agreement.value == pytest.approx((1 + 0.5 + 0) / 3)


def test_kappa_is_zero_when_agreement_is_what_the_marginals_give_by_chance(hand):
    # judge a, tie, b once each; majority a three times: p_o = 1/3, p_e = 1/3 * 1 -> kappa 0.
    assert hand.people.kappa.value == pytest.approx(0.0)


def test_tau_b_is_the_mean_over_people_of_the_judges_copeland_ranking():
    ranks = judge_ranks(JUDGE)
    assert ranks == {1: 1, 3: 1, 2: 2}  # scores 1: +1, 2: -2, 3: +1
    # Against 1 > 2 > 3: P 1 (1,2), Q 1 (2,3), judge-only tie (1,3): 0 / sqrt(3 * 2) = 0.
    # Against 2 > 1 > 3: P 0, Q 2, one judge tie: -2 / sqrt(3 * 2).
    expected = (0 + 0 - 2 / math.sqrt(6)) / 3
    assert calibrate(JUDGE, PEOPLE, replicates=10).people.tau_b.value == pytest.approx(expected)


def test_position_consistency_and_the_first_shown_share(hand):
    assert hand.people.position_consistency.value == pytest.approx(2 / 3)
    assert hand.people.picks_first_shown.value == pytest.approx(1 / 3)


def test_length_bias_is_the_judges_longer_rate_against_the_references(hand):
    p = hand.people
    # Judge: (1, 2) longer won, (2, 3) shorter won. People: 8 of their 9 strict pairs.
    assert (p.longer_preferred.value, p.reference_longer_preferred.value) == (
        0.5,
        pytest.approx(8 / 9),
    )
    assert p.length_gap.value == pytest.approx(0.5 - 8 / 9)
    # Each person against the others' majority: the two who rank 1 > 2 see the others split 1-1
    # on (1, 2) (no majority, left out): 2/2 each; the third is outvoted on (1, 2): 2/3.
    assert p.reference_agreement.value == pytest.approx(6 / 7)


def test_a_comparison_given_as_b_a_is_read_as_a_b():
    flipped = [JudgeComparison(1, 2, 1, -1, -1), *JUDGE[1:]]  # "2 vs 1: 1 better" both orders
    assert calibrate(flipped, PEOPLE, replicates=10).people.agreement.value == pytest.approx(1 / 3)


def _planted(seed: int, tasks: int, replicates: int, error: float = 0.2, bias: float = 0.6):
    sim = simulate(
        [Bot(i, error_rate=0.1) for i in range(6)], tasks=tasks, k=4, gold_tasks=tasks, seed=seed
    )
    judge = [
        JudgeComparison(c.task_id, c.a, c.b, c.a_first, c.b_first)
        for c in simulate_judge(sim, error_rate=error, position_bias=bias, seed=seed + 100)
    ]
    return calibrate(
        judge, sim.judgements, gold=sim.gold, lengths=sim.lengths, replicates=replicates, seed=seed
    )


def test_a_judge_with_planted_error_and_position_bias_is_measured_and_flagged():
    error, bias = 0.2, 0.6
    cal = _planted(0, tasks=300, replicates=300, error=error, bias=bias)
    g = cal.gold
    assert abs(g.decided_accuracy.value - (1 - error)) < 0.05
    assert abs(g.position_consistency.value - (1 - bias)) < 0.05
    assert not trusted(cal, 0.7)
    assert {f.code for f in judge_flags(cal, 0.7)} == {"agreement", "position"}


def test_the_intervals_cover_the_planted_error_rate_and_position_bias():
    """95 % intervals: over 20 simulated projects each planted value should fall inside about
    19 times; 16 or more passes, a badly calibrated interval (or a biased figure) does not."""
    error, bias = 0.2, 0.6
    expected_agreement = (1 - bias) * (1 - error) + bias * 0.5  # a tie earns half against gold
    covered = {"decided": 0, "position": 0, "agreement": 0}
    for seed in range(20):
        g = _planted(seed, tasks=80, replicates=200, error=error, bias=bias).gold
        covered["decided"] += g.decided_accuracy.low <= 1 - error <= g.decided_accuracy.high
        covered["position"] += g.position_consistency.low <= 1 - bias <= g.position_consistency.high
        covered["agreement"] += g.agreement.low <= expected_agreement <= g.agreement.high
    assert min(covered.values()) >= 16, covered


def test_a_good_consistent_judge_is_trusted_and_unflagged():
    sim = simulate([Bot(i, error_rate=0.1) for i in range(6)], tasks=200, k=4, gold_tasks=50)
    judge = [
        JudgeComparison(c.task_id, c.a, c.b, c.a_first, c.b_first)
        for c in simulate_judge(sim, error_rate=0.05, position_bias=0.0, seed=3)
    ]
    cal = calibrate(judge, sim.judgements, gold=sim.gold, lengths=sim.lengths, replicates=200)
    assert cal.gold.tasks == 50 and cal.people.tasks == 200
    assert trusted(cal, 0.7) and judge_flags(cal, 0.7) == []
    assert not trusted(cal, 0.99)  # the bar is the project's


def test_too_few_pairs_are_never_trusted():
    assert not trusted(calibrate(JUDGE, PEOPLE, replicates=10), 0.0)
