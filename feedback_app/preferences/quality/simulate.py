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
