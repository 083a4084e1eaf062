"""Simulated annotators with known faults: the ground truth the quality figures are tested on.

Used by the tests and by `bench/quality.py`. A candidate's true quality is its model version's
strength plus Gumbel noise, so the true order of a task follows Plackett-Luce and its pairs follow
Bradley-Terry with exactly those strengths: a leaderboard fitted from faultless bots must find
them again. A bot ranks each task in the true order, except that with probability `error_rate`
it returns a uniformly random order instead, and with probability `position_bias` it then moves
the first-shown candidate to the top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from feedback_app.preferences.quality.judgements import Judgement


@dataclass(frozen=True)
class Bot:
    annotator_id: int
    error_rate: float = 0.0
    position_bias: float = 0.0
    seconds: float = 30.0  # median time per task (log-normal around it)
    skip_rate: float = 0.0


@dataclass
class Simulation:
    judgements: list[Judgement]
    gold: dict[int, dict[int, int]]  # task -> true ranks, for the first `gold_tasks` tasks
    lengths: dict[int, int]  # candidate -> characters
    model_of: dict[int, int]  # candidate -> model version
    quality: dict[int, float]  # candidate -> true quality (a perfect reward model's score)
    skips: dict[int, int] = field(default_factory=dict)


def simulate(
    bots: list[Bot],
    *,
    tasks: int,
    k: int = 4,
    overlap: int = 3,
    strengths: list[float] | tuple[float, ...] = (0.0,),
    gold_tasks: int = 0,
    seed: int = 0,
) -> Simulation:
    """Each task gets `overlap` distinct bots at random; candidate ids are task * k + i."""
    rng = np.random.default_rng(seed)
    theta = np.asarray(strengths, dtype=float)
    models = rng.integers(0, len(theta), size=(tasks, k))
    quality = theta[models] + rng.gumbel(size=(tasks, k))
    lengths = rng.integers(50, 1500, size=(tasks, k))
    sim = Simulation([], {}, {}, {}, {}, {b.annotator_id: 0 for b in bots})
    for t in range(tasks):
        ids = [t * k + i for i in range(k)]
        true_order = [ids[i] for i in np.argsort(-quality[t])]
        for i, c in enumerate(ids):
            sim.lengths[c] = int(lengths[t, i])
            sim.model_of[c] = int(models[t, i])
            sim.quality[c] = float(quality[t, i])
        if t < gold_tasks:
            sim.gold[t] = {c: r + 1 for r, c in enumerate(true_order)}
        for b in rng.choice(len(bots), size=overlap, replace=False):
            bot = bots[b]
            while rng.random() < bot.skip_rate:  # skipped; the next hand-out may be taken
                sim.skips[bot.annotator_id] += 1
            shown = [ids[i] for i in rng.permutation(k)]
            order = list(true_order)
            if rng.random() < bot.error_rate:
                order = [ids[i] for i in rng.permutation(k)]
            if rng.random() < bot.position_bias:
                order.remove(shown[0])
                order.insert(0, shown[0])
            sim.judgements.append(
                Judgement(
                    task_id=t,
                    annotator_id=bot.annotator_id,
                    ranks={c: r + 1 for r, c in enumerate(order)},
                    display_order=tuple(shown),
                    seconds=float(bot.seconds * math.exp(rng.normal(0, 0.3))),
                )
            )
    return sim


@dataclass(frozen=True)
class SimulatedComparison:
    """A simulated judge's answer on candidates a < b: both orders' verdicts and its margin."""

    task_id: int
    a: int
    b: int
    a_first: int
    b_first: int
    margin: float  # the judge's perceived quality of a minus b


def judge_noise_for(quality_gaps: np.ndarray, noise: np.ndarray, error_rate: float) -> float:
    """The noise scale s at which sign(gap + s * noise) differs from sign(gap) on `error_rate`
    of the pairs (bisection: the error rate grows with s towards 1/2)."""
    if not 0 <= error_rate < 0.5:
        raise ValueError("error_rate: must be in [0, 0.5)")
    lo, hi = 0.0, 1.0
    while np.mean(np.sign(quality_gaps + hi * noise) != np.sign(quality_gaps)) < error_rate:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(np.sign(quality_gaps + mid * noise) != np.sign(quality_gaps)) < error_rate:
            lo = mid
        else:
            hi = mid
    return hi


def simulate_judge(
    sim: Simulation, *, error_rate: float, position_bias: float, seed: int = 0
) -> list[SimulatedComparison]:
    """A judge over every pair of every task of `sim`, asked in both orders.

    It perceives quality + Gaussian noise per candidate, scaled so that its perceived order of a
    pair is wrong on exactly `error_rate` of the pairs (errors fall on close pairs, as a real
    judge's do, so its margin is informative). In each order, independently, with probability
    `position_bias` it names the first-shown candidate instead. Expected figures: position
    consistency 1 - position_bias; accuracy where both orders agree 1 - error_rate (an agreeing
    pair always carries the perceived order).
    """
    rng = np.random.default_rng(seed)
    tasks = {j.task_id: sorted(j.ranks) for j in sim.judgements}  # every task was ranked
    pairs = [(t, a, b) for t, ids in tasks.items() for i, a in enumerate(ids) for b in ids[i + 1 :]]
    gaps = np.array([sim.quality[a] - sim.quality[b] for _, a, b in pairs])
    noise = rng.normal(size=len(pairs)) * math.sqrt(2)  # the difference of two N(0, 1)
    scale = judge_noise_for(gaps, noise, error_rate)
    margins = gaps + scale * noise
    biased = rng.random((len(pairs), 2)) < position_bias
    out = []
    for (t, a, b), m, (bias_a, bias_b) in zip(pairs, margins, biased, strict=True):
        opinion = 1 if m > 0 else -1
        out.append(
            SimulatedComparison(
                t, a, b, 1 if bias_a else opinion, -1 if bias_b else opinion, float(m)
            )
        )
    return out
