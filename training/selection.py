"""Choosing a round's prompts: where the reward model is least sure between the candidates.

Vocabulary: a *pool* is the prompts a round may ask about, each with the reward model's score
of every candidate the policy wrote for it. A prompt's *certainty* is the gap between its two
best-scored candidates, |r_1 - r_2|: a small gap means the reward model cannot tell the top
pair apart, so a human ranking of that prompt teaches it most (uncertainty sampling on the
pair the policy would be trained towards). The *record* says what was chosen and from what,
and is stored with the round (finetuning/models.Round.selection).

Pure: plain lists in, plain dicts out; the scores come from `training.reward.RewardScorer`.

>>> select_uncertain({10: [0.0, 5.0, 4.9], 11: [1.0, -3.0], 12: [2.0, 2.2]}, 2)
[10, 12]
>>> select_random([10, 11, 12], 2, seed=0)
[11, 12]
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from statistics import mean
from typing import Any

RULE_UNCERTAIN = "reward_margin"  # smallest gap between the two best-scored candidates
RULE_RANDOM = "random"


def top_gap(scores: Sequence[float]) -> float:
    """|r_1 - r_2| of the two best scores (0 for fewer than two candidates: nothing to tell).

    >>> top_gap([0.5, 2.0, 1.5])
    0.5
    """
    if len(scores) < 2:
        return 0.0
    best, second = sorted(scores, reverse=True)[:2]
    return best - second


def select_uncertain(scores: Mapping[int, Sequence[float]], size: int) -> list[int]:
    """The `size` prompt ids with the smallest top gap, smallest first (ties by id)."""
    ranked = sorted(scores, key=lambda pid: (top_gap(scores[pid]), pid))
    return ranked[:size]


def select_random(pool: Sequence[int], size: int, *, seed: int) -> list[int]:
    """`size` prompt ids drawn without replacement, the same for the same seed."""
    pool = sorted(pool)
    return random.Random(seed).sample(pool, min(size, len(pool)))


def _summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": ordered[len(ordered) // 2],
        "mean": mean(ordered),
        "max": ordered[-1],
    }


def selection_record(
    *,
    rule: str,
    pool: Sequence[int],
    chosen: Sequence[int],
    scores: Mapping[int, Sequence[float]] | None = None,
    reward_model: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """What a round stores about how its prompts were chosen: the rule and its inputs.

    The gaps are summarised over the pool and over the chosen prompts (the chosen ones' gaps
    are stored one by one too), so a page can show how much less certain the chosen were.
    """
    record: dict[str, Any] = {
        "rule": rule,
        "pool_size": len(pool),
        "chosen": list(chosen),
        "reward_model": reward_model,
        "seed": seed,
    }
    if scores is not None:
        gaps = {pid: top_gap(s) for pid, s in scores.items()}
        record["pool_gap"] = _summary(list(gaps.values()))
        record["chosen_gap"] = _summary([gaps[p] for p in chosen])
        record["chosen_gaps"] = [round(gaps[p], 6) for p in chosen]
    return record
