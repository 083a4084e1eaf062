"""Bradley-Terry leaderboard, head-to-head matrix and reward-model accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from feedback_app.preferences.quality.judgements import Judgement
from feedback_app.preferences.quality.leaderboard import (
    Comparison,
    comparisons_from_judgements,
    fit_strengths,
    leaderboard,
    reward_model_accuracy,
    win_matrix,
)
from feedback_app.preferences.quality.simulate import Bot, simulate


def mm_strengths(wins: np.ndarray, prior: float, iterations: int = 20000) -> np.ndarray:
    """Hunter's MM algorithm (2004), written independently, as the reference for the fit."""
    m = len(wins)
    w = wins + prior / 2 * (1 - np.eye(m))
    games = w + w.T
    p = np.ones(m)
    for _ in range(iterations):
        p = w.sum(axis=1) / (games / (p[:, None] + p[None, :])).sum(axis=1)
        p /= np.exp(np.log(p).mean())
    return np.log(p)


def test_newton_fit_equals_the_mm_algorithm():
    rng = np.random.default_rng(0)
    wins = rng.integers(0, 20, size=(5, 5)).astype(float) * (1 - np.eye(5))
    wins[0, 1] += 0.5  # a tie's half
    assert fit_strengths(wins, 0.01) == pytest.approx(mm_strengths(wins, 0.01), abs=1e-6)


def test_two_models_strengths_give_their_observed_win_rate():
    comps = [Comparison("a", "b", 1.0, i) for i in range(30)] + [
        Comparison("a", "b", 0.0, 30 + i) for i in range(10)
    ]
    board = leaderboard(comps, replicates=0, prior=0.0)
    a, b = board.standings
    assert (a.model, b.model) == ("a", "b")
    assert 1 / (1 + np.exp(-(a.strength - b.strength))) == pytest.approx(0.75)


def test_ties_count_half_a_win_each():
    board = leaderboard([Comparison("a", "b", 0.5, i) for i in range(10)], replicates=0)
    assert [s.strength for s in board.standings] == pytest.approx([0.0, 0.0])
    assert board.standings[0].score == 5.0


def test_a_model_that_won_everything_and_disconnected_models_stay_finite():
    comps = [Comparison("a", "b", 1.0, i) for i in range(20)] + [
        Comparison("c", "d", 0.5, 20 + i) for i in range(4)
    ]
    board = leaderboard(comps, replicates=20)
    strengths = {s.model: s.strength for s in board.standings}
    assert all(np.isfinite(list(strengths.values())))
    assert strengths["c"] == pytest.approx(strengths["d"])
    assert strengths["a"] > strengths["c"] > strengths["b"]


def test_bradley_terry_recovers_simulated_strengths_within_its_intervals():
    truth = np.array([0.0, 0.4, -0.3, 1.0, -1.1])
    truth -= truth.mean()
    sim = simulate([Bot(a) for a in range(10)], tasks=1500, k=4, overlap=1, strengths=truth, seed=4)
    comps = comparisons_from_judgements(sim.judgements, sim.model_of)
    board = leaderboard(comps, replicates=200, seed=1)
    assert board.tasks == len({c.cluster for c in comps}) > 1400  # tasks with two models in it
    for s in board.standings:
        assert s.low <= truth[s.model] <= s.high, (s, truth[s.model])
        assert s.high - s.low < 0.5  # informative, not just wide
    assert [s.model for s in board.standings] == list(np.argsort(-truth))


def test_bootstrap_intervals_are_seeded():
    sim = simulate([Bot(1)], tasks=100, k=4, overlap=1, strengths=[0, 1, 2], seed=3)
    comps = comparisons_from_judgements(sim.judgements, sim.model_of)
    assert leaderboard(comps, replicates=30, seed=5) == leaderboard(comps, replicates=30, seed=5)
    assert leaderboard(comps, replicates=30, seed=5) != leaderboard(comps, replicates=30, seed=6)


def test_same_model_pairs_are_no_comparison_and_ties_score_half():
    js = [Judgement(1, 7, {1: 1, 2: 1, 3: 2})]
    comps = comparisons_from_judgements(js, {1: "x", 2: "y", 3: "x"})
    assert sorted((c.a, c.b, c.score) for c in comps) == [("x", "y", 0.5), ("y", "x", 1.0)]


def test_win_matrix_counts_each_side_and_the_games():
    comps = [
        Comparison("a", "b", 1.0),
        Comparison("b", "a", 1.0),
        Comparison("a", "b", 0.5),
        Comparison("a", "c", 1.0),
    ]
    m = win_matrix(comps)
    assert m.rate("a", "b") == pytest.approx(1.5 / 3)
    assert m.rate("b", "a") == pytest.approx(1.5 / 3)
    assert m.rate("a", "c") == 1.0 and m.rate("c", "a") == 0.0
    assert m.rate("b", "c") is None


def test_reward_model_accuracy_on_human_pairs():
    scores = {1: 2.0, 2: 1.0, 3: 1.0, 4: 0.0}
    result = reward_model_accuracy(scores, [(1, 2), (2, 3), (4, 1), (1, 99)])
    assert (result.correct, result.pairs, result.missing) == (1.5, 3, 1)
    assert result.value == pytest.approx(0.5)
    perfect = simulate([Bot(1)], tasks=50, k=4, overlap=1, seed=0)
    pairs = [
        (a, b)
        for j in perfect.judgements
        for a in j.ranks
        for b in j.ranks
        if j.ranks[a] < j.ranks[b]
    ]
    assert reward_model_accuracy(perfect.quality, pairs).value == 1.0


def test_no_comparisons_give_an_empty_board():
    assert leaderboard([], replicates=5).standings == []
    assert win_matrix([]).models == []
