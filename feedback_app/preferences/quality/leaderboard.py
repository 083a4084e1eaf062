"""Which model version people prefer: Bradley-Terry strengths with intervals, head to head, and
how often a reward model agrees with held-out human pairs.

A *comparison* is one judgement's verdict on two candidates made by different model versions
(score 1: a won, 0.5: tied, 0: b won), tagged with its task so that the bootstrap resamples
whole tasks: the pairs of one ranking are not independent votes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from feedback_app.preferences.quality.judgements import TIE, Judgement, verdicts

# Virtual games per pair of models, split half and half: keeps strengths finite for a model that
# won everything and ties together parts of the comparison graph that never met; small enough to
# move nothing once a pair has real games (docs/quality.md).
DEFAULT_PRIOR = 0.01
# Newton steps stop when no strength moves more than this (natural-log units).
TOLERANCE = 1e-10
MAX_ITERATIONS = 200


@dataclass(frozen=True)
class Comparison:
    a: Hashable
    b: Hashable
    score: float  # a's result: 1 won, 0.5 tied, 0 lost
    cluster: int = 0  # the task: the bootstrap resamples clusters


def comparisons_from_judgements(
    judgements: Iterable[Judgement], model_of: Mapping[int, Hashable]
) -> list[Comparison]:
    """Every candidate pair of a judgement whose candidates come from two different models."""
    out = []
    for j in judgements:
        for a, b, v in verdicts({c: r for c, r in j.ranks.items() if c in model_of}):
            ma, mb = model_of[a], model_of[b]
            if ma != mb:
                out.append(Comparison(ma, mb, 0.5 if v == TIE else float(v > 0), j.task_id))
    return out


@dataclass(frozen=True)
class WinMatrix:
    """wins[i, j]: i's score against j (a tie is half a win); games[i, j]: their comparisons."""

    models: list[Hashable]
    wins: np.ndarray
    games: np.ndarray

    def rate(self, i: Hashable, j: Hashable) -> float | None:
        x, y = self.models.index(i), self.models.index(j)
        return float(self.wins[x, y] / self.games[x, y]) if self.games[x, y] else None


def win_matrix(comparisons: Sequence[Comparison]) -> WinMatrix:
    """Head to head: each model's score against each other, summed over comparisons."""
    models, ia, ib, s, _ = _arrays(comparisons)
    wins = _scores(len(models), ia, ib, s, np.ones(len(s)))
    return WinMatrix(models, wins, wins + wins.T)


def fit_strengths(wins: np.ndarray, prior: float = DEFAULT_PRIOR) -> np.ndarray:
    """Bradley-Terry log-strengths (mean 0) maximising sum_ij W_ij log sigma(t_i - t_j).

    wins: (M, M) scores of i against j. Newton's method on the concave log-likelihood, with the
    prior's virtual games added to W, and step halving should a step lower the likelihood.
    """
    m = len(wins)
    w = wins + prior / 2 * (1 - np.eye(m))
    games = w + w.T
    theta = np.zeros(m)
    ones = np.ones((m, m)) / m

    def loglik(t: np.ndarray) -> float:
        return float((w * -np.logaddexp(0, -(t[:, None] - t[None, :]))).sum())

    current = loglik(theta)
    for _ in range(MAX_ITERATIONS):
        p = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
        gradient = w.sum(axis=1) - (games * p).sum(axis=1)
        curvature = games * p * p.T
        hessian = np.diag(curvature.sum(axis=1)) - curvature  # minus the Hessian: PSD
        step = np.linalg.solve(hessian + ones, gradient)  # + 11'/M fixes the free shift
        size = 1.0
        while size > 1e-6:
            candidate = theta + size * step
            value = loglik(candidate)
            if value >= current - 1e-12:
                break
            size /= 2
        theta, current = candidate - candidate.mean(), value
        if np.abs(size * step).max() < TOLERANCE:
            break
    return theta


@dataclass(frozen=True)
class Standing:
    model: Hashable
    strength: float  # natural-log BT strength, mean 0 over models; P(i beats j) = sigma(s_i - s_j)
    low: float
    high: float
    score: float  # wins + half the ties
    games: int


@dataclass(frozen=True)
class Leaderboard:
    standings: list[Standing]  # strongest first
    comparisons: int
    tasks: int
    replicates: int
    level: float


def leaderboard(
    comparisons: Sequence[Comparison],
    *,
    replicates: int = 200,
    level: float = 0.95,
    seed: int = 0,
    prior: float = DEFAULT_PRIOR,
) -> Leaderboard:
    """BT strengths with percentile bootstrap intervals from tasks resampled with replacement."""
    models, ia, ib, s, clusters = _arrays(comparisons)
    if not models:
        return Leaderboard([], 0, 0, replicates, level)
    m = len(models)
    wins = _scores(m, ia, ib, s, np.ones(len(s)))
    theta = fit_strengths(wins, prior)
    rng = np.random.default_rng(seed)
    n_clusters = int(clusters.max()) + 1 if len(clusters) else 0
    samples = np.empty((replicates, m))
    for r in range(replicates):
        drawn = np.bincount(rng.integers(0, n_clusters, n_clusters), minlength=n_clusters)
        samples[r] = fit_strengths(_scores(m, ia, ib, s, drawn[clusters].astype(float)), prior)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0) if replicates else (theta, theta)
    games = wins + wins.T
    standings = [
        Standing(
            models[i],
            float(theta[i]),
            float(low[i]),
            float(high[i]),
            float(wins[i].sum()),
            int(games[i].sum()),
        )
        for i in np.argsort(-theta, kind="stable")
    ]
    return Leaderboard(standings, len(s), n_clusters, replicates, level)


@dataclass(frozen=True)
class Accuracy:
    """correct of pairs (an equal score earns half); missing: pairs with an unscored candidate."""

    correct: float
    pairs: int
    missing: int = 0

    @property
    def value(self) -> float | None:
        return self.correct / self.pairs if self.pairs else None


def reward_model_accuracy(
    scores: Mapping[int, float], pairs: Iterable[tuple[int, int]]
) -> Accuracy:
    """Share of held-out human (chosen, rejected) pairs the reward model scores the same way."""
    correct = 0.0
    n = missing = 0
    for chosen, rejected in pairs:
        if chosen not in scores or rejected not in scores:
            missing += 1
            continue
        n += 1
        sc, sr = scores[chosen], scores[rejected]
        correct += 1.0 if sc > sr else 0.5 if sc == sr else 0.0
    return Accuracy(correct, n, missing)


def _arrays(comparisons: Sequence[Comparison]):
    """Models in first-seen order, then index arrays a, b, score, and dense cluster numbers."""
    index: dict[Hashable, int] = {}
    cluster_index: dict[int, int] = {}
    ia, ib, s, cl = [], [], [], []
    for c in comparisons:
        ia.append(index.setdefault(c.a, len(index)))
        ib.append(index.setdefault(c.b, len(index)))
        s.append(c.score)
        cl.append(cluster_index.setdefault(c.cluster, len(cluster_index)))
    return (
        list(index),
        np.asarray(ia, dtype=np.int64),
        np.asarray(ib, dtype=np.int64),
        np.asarray(s, dtype=float),
        np.asarray(cl, dtype=np.int64),
    )


def _scores(
    m: int, ia: np.ndarray, ib: np.ndarray, s: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """(M, M) weighted score of i against j: a's score to (a, b), the rest to (b, a)."""
    flat = np.bincount(ia * m + ib, weights=weight * s, minlength=m * m)
    flat += np.bincount(ib * m + ia, weights=weight * (1 - s), minlength=m * m)
    return flat.reshape(m, m)
