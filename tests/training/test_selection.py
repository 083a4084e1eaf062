"""Choosing a round's prompts: the smallest gap between the two best scores first."""

from __future__ import annotations

import doctest

from training import selection


def test_doctests():
    assert doctest.testmod(selection).failed == 0


def test_the_least_certain_prompts_are_those_whose_two_best_candidates_score_closest():
    scores = {1: [3.0, 0.0, 2.9], 2: [1.0, -1.0], 3: [0.0, 0.0, 5.0], 4: [2.0, 1.5]}
    assert selection.select_uncertain(scores, 2) == [1, 4]  # gaps 0.1, 0.5; then 2.0, 5.0


def test_the_record_keeps_the_rule_its_inputs_and_the_gaps_of_pool_and_chosen():
    scores = {1: [0.0, 1.0], 2: [0.0, 0.1], 3: [0.0, 3.0]}
    record = selection.selection_record(
        rule=selection.RULE_UNCERTAIN, pool=[1, 2, 3], chosen=[2], scores=scores, reward_model=9
    )
    assert record["rule"] == "reward_margin" and record["reward_model"] == 9
    assert record["pool_size"] == 3 and record["chosen"] == [2]
    assert record["chosen_gaps"] == [0.1] and record["pool_gap"]["max"] == 3.0


def test_a_random_draw_is_the_same_for_the_same_seed_and_never_exceeds_the_pool():
    assert selection.select_random([5, 6, 7], 2, seed=1) == selection.select_random(
        [7, 6, 5], 2, seed=1
    )
    assert sorted(selection.select_random([5, 6], 9, seed=0)) == [5, 6]
