"""The vocabulary every quality figure shares: a judgement and its verdicts on candidate pairs.

A *judgement* is one annotator's ranking of one task's candidates as `{candidate_id: rank}`,
rank 1 best; equal ranks are a tie. A ranking stored as groups best first (the app's shape)
becomes ranks by `ranks_from_groups` (group index + 1: "dense" ranks). The *verdict* of a
judgement on a candidate pair (a, b), a < b, is +1 (a better), -1 (b better) or 0 (tied).
*Vote counts* per pair are summable, so figures built from them can be kept incrementally.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

A_BETTER, TIE, B_BETTER = 1, 0, -1


@dataclass(frozen=True)
class Judgement:
    """One annotator's ranking of one task: ranks by candidate id, 1 best, equal ranks tied.

    display_order (candidate ids in the order shown) and seconds (time spent) feed the
    reliability figures; agreement and the leaderboard need neither.
    """

    task_id: int
    annotator_id: int
    ranks: Mapping[int, int]
    display_order: tuple[int, ...] = ()
    seconds: float | None = None


def ranks_from_groups(groups: Sequence[Sequence[int]]) -> dict[int, int]:
    """Groups best first -> {candidate: group index + 1}.

    >>> ranks_from_groups([[7], [5, 9], [6]])
    {7: 1, 5: 2, 9: 2, 6: 3}
    """
    return {c: i + 1 for i, group in enumerate(groups) for c in group}


def verdict(ranks: Mapping[int, int], a: int, b: int) -> int:
    """+1 when a ranks better than b, -1 when worse, 0 when tied."""
    ra, rb = ranks[a], ranks[b]
    return A_BETTER if ra < rb else B_BETTER if ra > rb else TIE


def verdicts(ranks: Mapping[int, int]) -> Iterable[tuple[int, int, int]]:
    """(a, b, verdict) for every unordered pair a < b of the ranked candidates."""
    items = sorted(ranks.items())
    for i, (a, ra) in enumerate(items):
        for b, rb in items[i + 1 :]:
            yield a, b, (A_BETTER if ra < rb else B_BETTER if ra > rb else TIE)


def by_task(judgements: Iterable[Judgement]) -> dict[int, list[Judgement]]:
    """Judgements grouped by task, in the order given."""
    out: dict[int, list[Judgement]] = defaultdict(list)
    for j in judgements:
        out[j.task_id].append(j)
    return out


@dataclass
class PairVotes:
    """How many judgements put a first, b first, or tied them, for one pair (a < b) of a task."""

    a_better: int = 0
    b_better: int = 0
    ties: int = 0

    @property
    def total(self) -> int:
        return self.a_better + self.b_better + self.ties

    def count(self, v: int) -> int:
        return self.a_better if v == A_BETTER else self.b_better if v == B_BETTER else self.ties

    def add(self, v: int, n: int = 1) -> None:
        if v == A_BETTER:
            self.a_better += n
        elif v == B_BETTER:
            self.b_better += n
        else:
            self.ties += n

    def majority(self, leave_out: int | None = None) -> int | None:
        """The verdict with strictly the most votes (optionally without one vote); None if none."""
        a, b, t = self.a_better, self.b_better, self.ties
        if leave_out == A_BETTER:
            a -= 1
        elif leave_out == B_BETTER:
            b -= 1
        elif leave_out == TIE:
            t -= 1
        if a > b and a > t:
            return A_BETTER
        if b > a and b > t:
            return B_BETTER
        if t > a and t > b:
            return TIE
        return None


@dataclass
class TaskVotes:
    """Vote counts per candidate pair of one task, and how many judgements gave them."""

    pairs: dict[tuple[int, int], PairVotes] = field(default_factory=dict)
    judgements: int = 0


def task_votes(judgements: Iterable[Judgement]) -> dict[int, TaskVotes]:
    """Vote counts per task and candidate pair: the summable base of agreement and review."""
    # Counted in plain lists first (index = verdict: 0 tie, 1 a, -1 b): about 3x faster than
    # updating dataclasses, and this runs over every ranking of a project (docs/benchmarks.md).
    raw: dict[int, tuple[list[int], dict[tuple[int, int], list[int]]]] = {}
    for j in judgements:
        entry = raw.get(j.task_id)
        if entry is None:
            entry = raw[j.task_id] = ([0], {})
        entry[0][0] += 1
        pairs = entry[1]
        for a, b, v in verdicts(j.ranks):
            counts = pairs.get((a, b))
            if counts is None:
                counts = pairs[(a, b)] = [0, 0, 0]
            counts[v] += 1
    return {
        task: TaskVotes(
            pairs={pair: PairVotes(c[A_BETTER], c[B_BETTER], c[TIE]) for pair, c in pairs.items()},
            judgements=n[0],
        )
        for task, (n, pairs) in raw.items()
    }
