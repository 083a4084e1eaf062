"""The people's verdict on a promotion: the head-to-head round after it, read as a human win rate.

A round after a promotion holds candidates of the new policy and of its parent in the same
tasks (autopilot/steps.py, `_generate_params`). Each ranking of such a task compares every
candidate of the one with every candidate of the other: 1 for a win, 0 for a loss; a tie (the
person put them in one group) says they saw no difference and is left out, as a ranking whose
every comparison is a tie is. Counted as half a win, ties would pull every verdict towards
0.5: when most samples of both policies are alike (the rounds bench measured 70 % ties), a
clearly worse policy would still read "not clearly worse". A ranking counts once (its score is
the mean of its decided comparisons: the comparisons of one ranking are not independent), and
the 95 % Wilson interval is over rankings.

The rule (`human_verdict`), with the interval [low, high] of the new policy's win rate w:

- no ranking compared them: "pending" (nothing to act on);
- high < 0.5, people clearly preferred the parent (or w < 0.5 - margin, worse by more than
  the margin people tolerate): "rolled back";
- low >= 0.5 - margin, clearly not worse: "confirmed";
- otherwise too few rankings to say: "unclear" (kept; the next round asks again).

A point estimate under 0.5 alone is not a verdict: an even policy's would fall there half the
time, and a rollback throws away a round's training on a coin's word.

>>> rate = human_win_rate([[[1], [2]], [[2], [1]], [[1, 2]]], {1: "new", 2: "parent"})
>>> rate.win_rate, rate.rankings
(0.5, 2)
>>> human_verdict(HumanWinRate(0.3, 0.2, 0.45, 40), margin=0.1)
'rolled back'
>>> human_verdict(HumanWinRate(0.55, 0.45, 0.65, 90), margin=0.1)
'confirmed'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from training.stats import wilson_interval

NEW, PARENT = "new", "parent"
PENDING, ROLLED_BACK, CONFIRMED, UNCLEAR = "pending", "rolled back", "confirmed", "unclear"


@dataclass(frozen=True)
class HumanWinRate:
    win_rate: float | None
    low: float
    high: float
    rankings: int

    def to_dict(self) -> dict:
        return asdict(self)


def ranking_score(groups: Sequence[Sequence[int]], side: Mapping[int, str]) -> float | None:
    """The new policy's share of wins over the parent in one ranking's decided comparisons
    (groups best first); None when it has no candidate of one of them, or tied them all."""
    place = {cid: i for i, group in enumerate(groups) for cid in group}
    new = [place[c] for c in place if side.get(c) == NEW]
    old = [place[c] for c in place if side.get(c) == PARENT]
    if not new or not old:
        return None
    points = [1.0 if a < b else 0.0 for a in new for b in old if a != b]
    return sum(points) / len(points) if points else None


def human_win_rate(
    rankings: Iterable[Sequence[Sequence[int]]], side: Mapping[int, str]
) -> HumanWinRate:
    """The new policy's human win rate over its parent, with its 95 % interval over rankings."""
    scores = [s for s in (ranking_score(g, side) for g in rankings) if s is not None]
    if not scores:
        return HumanWinRate(None, 0.0, 1.0, 0)
    low, high = wilson_interval(sum(scores), len(scores))
    return HumanWinRate(sum(scores) / len(scores), low, high, len(scores))


def human_verdict(rate: HumanWinRate, *, margin: float) -> str:
    """What the autopilot does with a promotion, given the people's head-to-head."""
    if rate.win_rate is None:
        return PENDING
    if rate.high < 0.5 or rate.win_rate < 0.5 - margin:
        return ROLLED_BACK
    if rate.low >= 0.5 - margin:
        return CONFIRMED
    return UNCLEAR


def round_human_win_rate(*, project_id: int, round_number: int, new: int, parent: int):
    """The head-to-head of `new` against `parent` in a round's rankings (gold tasks left out)."""
    from feedback_app.annotation.models import Candidate, Ranking

    side = {
        cid: (NEW if mv == new else PARENT)
        for cid, mv in Candidate.objects.filter(
            task__project_id=project_id, task__round=round_number, model_version__in=[new, parent]
        ).values_list("id", "model_version")
    }
    groups = Ranking.objects.filter(
        task__project_id=project_id, task__round=round_number, task__gold__isnull=True
    ).values_list("groups", flat=True)
    return human_win_rate(list(groups), side)
