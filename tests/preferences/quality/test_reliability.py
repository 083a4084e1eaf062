"""Reliability figures on hand-made cases, the binomial test against scipy, and simulated bots."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from feedback_app.preferences.quality import reliability
from feedback_app.preferences.quality.judgements import Judgement, ranks_from_groups
from feedback_app.preferences.quality.reliability import (
    annotator_reliability,
    gold_accuracy,
    length_bias,
    majority_agreement,
    position_bias,
)
from feedback_app.preferences.quality.significance import binomial_test
from feedback_app.preferences.quality.simulate import Bot, simulate


def J(task, annotator, groups, shown=(), seconds=None):
    return Judgement(task, annotator, ranks_from_groups(groups), tuple(shown), seconds)


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [
        (9, 10, 0.5),
        (0, 10, 0.25),
        (25, 100, 0.25),
        (40, 100, 0.25),
        (3, 7, 1 / 3),
        (700, 1500, 0.25),
        (1, 1, 0.5),
    ],
)
def test_exact_binomial_test_matches_scipy(k, n, p):
    assert binomial_test(k, n, p) == pytest.approx(binomtest(k, n, p).pvalue, rel=1e-9, abs=1e-300)


def test_majority_agreement_leaves_the_annotator_out():
    js = [J(1, 7, [[1], [2]]), J(1, 8, [[1], [2]]), J(1, 9, [[2], [1]])]
    rates = majority_agreement(js)
    # 7's others are 8 (1 first) and 9 (2 first): no strict majority, nothing compared.
    assert 7 not in rates and 8 not in rates
    # 9's others both put 1 first: 9 disagrees with their majority.
    assert (rates[9].hits, rates[9].trials) == (0, 1)


def test_gold_accuracy_counts_pairs_and_gives_half_for_a_tie():
    gold = {1: {1: 1, 2: 2, 3: 3}}
    rates = gold_accuracy(
        [J(1, 7, [[1], [2], [3]]), J(1, 8, [[3], [2], [1]]), J(1, 9, [[1, 2], [3]])], gold
    )
    assert (rates[7].value, rates[8].value, rates[9].value) == (1.0, 0.0, pytest.approx(2.5 / 3))


def test_position_bias_counts_first_shown_ranked_alone_at_the_top_against_one_over_k():
    js = [J(t, 7, [[10 * t], [10 * t + 1]], shown=(10 * t, 10 * t + 1)) for t in range(9)]
    js += [J(9, 7, [[91], [90]], shown=(90, 91)), J(10, 7, [[100, 101]], shown=(100, 101))]
    rate = position_bias(js)[7]
    assert (rate.hits, rate.trials, rate.expected) == (9, 10, 0.5)  # the tie at the top is no trial
    assert rate.p_value == pytest.approx(binomtest(9, 10, 0.5).pvalue)


def test_length_bias_counts_strict_pairs_of_different_length():
    lengths = {1: 100, 2: 50, 3: 50}
    rate = length_bias([J(1, 7, [[1], [2], [3]]), J(1, 8, [[2, 1], [3]])], lengths)
    assert (rate[7].hits, rate[7].trials) == (2, 2)  # (2,3) same length: no trial
    assert (rate[8].hits, rate[8].trials) == (1, 1)  # (1,2) tied: no trial


def test_few_rankings_raise_no_flag_however_bad():
    js = [J(t, 7, [[10 * t], [10 * t + 1]], shown=(10 * t, 10 * t + 1)) for t in range(5)]
    js += [J(t, a, [[10 * t + 1], [10 * t]]) for t in range(5) for a in (8, 9)]
    rows = {r.annotator_id: r for r in annotator_reliability(js)}
    assert rows[7].majority_agreement.value == 0.0
    assert rows[7].flags == []


BOTS = [
    Bot(1, error_rate=0.05),
    Bot(2, error_rate=0.2),
    Bot(3, error_rate=0.5),
    Bot(4, error_rate=0.9),
    Bot(5, error_rate=0.05, position_bias=0.8),
    Bot(6, error_rate=0.05, seconds=3.0),
    Bot(7, error_rate=0.05, skip_rate=0.6),
]


@pytest.fixture(scope="module")
def run():
    sim = simulate(BOTS, tasks=1500, k=4, overlap=3, gold_tasks=300, seed=1)
    rows = annotator_reliability(
        sim.judgements, skips=sim.skips, gold=sim.gold, lengths=sim.lengths
    )
    return {r.annotator_id: r for r in rows}


def test_bots_are_ordered_by_their_error_rates_on_majority_and_gold(run):
    honest = [1, 2, 3, 4]  # increasing error rates
    majority = [run[a].majority_agreement.value for a in honest]
    gold = [run[a].gold_accuracy.value for a in honest]
    assert majority == sorted(majority, reverse=True)
    assert gold == sorted(gold, reverse=True)


def test_the_position_biased_bot_and_only_it_is_flagged_for_position(run):
    flagged = {a for a, r in run.items() if any(f.code == "position" for f in r.flags)}
    assert flagged == {5}
    assert "first-shown" in next(f.reason for f in run[5].flags if f.code == "position")


def test_the_careless_bot_is_flagged_on_gold_and_majority_and_the_good_ones_are_not(run):
    codes = {a: {f.code for f in r.flags} for a, r in run.items()}
    assert codes[4] == {"gold", "majority"}
    assert codes[1] == codes[2] == set()


def test_the_hasty_and_the_skipping_bots_are_flagged_for_what_they_did(run):
    assert {f.code for f in run[6].flags} == {"fast"}
    assert {f.code for f in run[7].flags} == {"skips"}
    assert run[7].skip_rate == pytest.approx(0.6, abs=0.05)


def test_no_bot_shows_a_length_bias_since_none_has_one(run):
    assert all("length" not in {f.code for f in r.flags} for r in run.values())


def test_a_bot_preferring_long_answers_is_flagged_for_length():
    sim = simulate(BOTS[:4], tasks=400, k=4, overlap=3, seed=2)
    longer_first = []
    for j in sim.judgements:
        if j.annotator_id == 4:
            order = sorted(j.ranks, key=lambda c: -sim.lengths[c])
            j = Judgement(
                j.task_id, 4, {c: r + 1 for r, c in enumerate(order)}, j.display_order, j.seconds
            )
        longer_first.append(j)
    rows = {r.annotator_id: r for r in annotator_reliability(longer_first, lengths=sim.lengths)}
    assert "length" in {f.code for f in rows[4].flags}
    assert rows[4].length_bias.value == 1.0


def test_thresholds_are_what_the_flags_use(monkeypatch):
    monkeypatch.setattr(reliability, "POSITION_BIAS_MIN_GAP", 0.99)
    sim = simulate(BOTS, tasks=300, k=4, overlap=3, seed=1)
    rows = annotator_reliability(sim.judgements)
    assert all("position" not in {f.code for f in r.flags} for r in rows)


def test_a_position_gap_that_chance_explains_is_not_flagged_and_a_significant_one_is():
    def annotator(hits: int, n: int) -> list[Judgement]:
        js = []
        for t in range(n):
            ids = [10 * t + i for i in range(4)]
            order = ids if t < hits else ids[1:] + ids[:1]  # first shown on top, or last
            js.append(J(t, 7, [[c] for c in order], shown=ids))
        return js

    chance = annotator(11, 25)  # 44 % against 25 %: a gap of 0.19, but p = 0.037
    row = annotator_reliability(chance)[0]
    assert row.position_bias.value == 0.44 and row.position_bias.p_value > 0.001
    assert "position" not in {f.code for f in row.flags}
    many = annotator(44, 100)  # the same rate over 100 rankings: p < 0.001
    assert "position" in {f.code for f in annotator_reliability(many)[0].flags}


def test_position_bias_refuses_an_annotator_shown_different_numbers_of_candidates():
    js = [J(1, 7, [[1], [2]], shown=(1, 2)), J(2, 7, [[3], [4], [5]], shown=(3, 4, 5))]
    with pytest.raises(ValueError, match="display_order: annotator 7"):
        position_bias(js)
