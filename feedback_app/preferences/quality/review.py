"""The review queue: pairs where a reward model confidently disagrees with the human majority.

Those are where either the people or the model are wrong, and both are worth an admin's look:
a mislabelled pair poisons the next dataset, a real blind spot of the model is what the next
round should collect more of.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from feedback_app.preferences.quality.judgements import Judgement, TaskVotes, task_votes

# Reward-score gap (rejected minus chosen) above which the model "confidently" disagrees: under
# the reward model's own Bradley-Terry reading, sigma(1.0) = 73 % that the humans' loser wins.
DEFAULT_MARGIN = 1.0


@dataclass(frozen=True)
class Disagreement:
    task_id: int
    chosen: int  # the humans' majority pick
    rejected: int
    votes_for: int  # for chosen
    votes_against: int
    ties: int
    margin: float  # reward(rejected) - reward(chosen)

    @property
    def confidence(self) -> float:
        """The reward model's probability that `rejected` is better: sigma(margin)."""
        return 1 / (1 + math.exp(-self.margin))


def disagreements_from_votes(
    votes: Mapping[int, TaskVotes], scores: Mapping[int, float], *, margin: float = DEFAULT_MARGIN
) -> list[Disagreement]:
    """Pairs with a strict human majority (more votes one way than the other) that the reward
    model reverses by more than `margin`, most confident first."""
    out = []
    for task_id, tv in votes.items():
        for (a, b), pv in tv.pairs.items():
            if pv.a_better == pv.b_better or a not in scores or b not in scores:
                continue
            chosen, rejected = (a, b) if pv.a_better > pv.b_better else (b, a)
            gap = scores[rejected] - scores[chosen]
            if gap > margin:
                votes_for = max(pv.a_better, pv.b_better)
                votes_against = min(pv.a_better, pv.b_better)
                out.append(
                    Disagreement(task_id, chosen, rejected, votes_for, votes_against, pv.ties, gap)
                )
    out.sort(key=lambda d: (-d.margin, -(d.votes_for - d.votes_against), d.task_id, d.chosen))
    return out


def review_queue(
    judgements: Iterable[Judgement], scores: Mapping[int, float], *, margin: float = DEFAULT_MARGIN
) -> list[Disagreement]:
    """The queue from the judgements themselves (see `disagreements_from_votes`)."""
    return disagreements_from_votes(task_votes(judgements), scores, margin=margin)
