"""What every AI judge shares: a verdict on a pair asked in both orders, and rankings from pairs.

Vocabulary (the verdict letters match `preferences.quality.judgements`: +1 a, 0 tie, -1 b):
- an *asking* shows two completions in one order (`first`, `second`) and gets back a
  preference for the FIRST shown in judge units (positive: first better), a rationale and a cost;
- a *comparison* of (a, b) asks twice, a first then b first, and maps both answers back to a/b.
  Each order's verdict is +1, -1, or 0 when |preference| <= the judge's `tie_threshold`. When the
  two orders disagree the verdict is a tie and the comparison is position-inconsistent (recorded).
- a *ranking* of K candidates compares every pair and groups candidates by Copeland score
  (wins - losses, a tie counting 0): equal scores share a group, best first. A cycle
  (a > b > c > a) therefore ties all three rather than picking an arbitrary order.

Margins are in the judge's own units (probability difference for a causal LM read from its next
token, reward difference for a reward model, +-1 for a verdict read from text); `abs(margin)` is
how sure the judge is, and `JudgeRanking.confidence` is what triage sorts on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

A_BETTER, TIE, B_BETTER = 1, 0, -1
VERDICT_NAMES = {A_BETTER: "a", TIE: "tie", B_BETTER: "b"}


class JudgeError(RuntimeError):
    """A judge could not answer (server down, bad reply); the message never holds a secret."""


@dataclass(frozen=True)
class Cost:
    """What judging took: tokens read and written (0 when unknown) and wall seconds."""

    tokens: int = 0
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.tokens + other.tokens, self.seconds + other.seconds)


@dataclass(frozen=True)
class Asked:
    """One asking: preference for the first-shown completion (positive: first better)."""

    preference: float
    rationale: str
    cost: Cost


@dataclass(frozen=True)
class Verdict:
    """A comparison of a and b asked in both orders.

    verdict: +1 a better, -1 b better, 0 tie (also when the orders disagree);
    margin: mean preference for a over the two orders (judge units, signed);
    a_first / b_first: each order's verdict on a vs b (mapped back from first/second);
    rationale: both orders' rationales, labelled.
    """

    verdict: int
    margin: float
    rationale: str
    cost: Cost
    a_first: int
    b_first: int

    @property
    def consistent(self) -> bool:
        """Both orders gave the same verdict (a judge that follows position does not)."""
        return self.a_first == self.b_first

    @property
    def name(self) -> str:
        return VERDICT_NAMES[self.verdict]


def order_verdict(preference: float, tie_threshold: float) -> int:
    """+1 / -1 / 0 for a preference, 0 when |preference| <= tie_threshold.

    >>> order_verdict(0.3, 0.1), order_verdict(-0.05, 0.1), order_verdict(-2.0, 0.0)
    (1, 0, -1)
    """
    if preference > tie_threshold:
        return A_BETTER
    if preference < -tie_threshold:
        return B_BETTER
    return TIE


def combine_orders(a_first: Asked, b_first: Asked, tie_threshold: float = 0.0) -> Verdict:
    """One verdict on (a, b) from the asking with a shown first and the one with b first.

    >>> v = combine_orders(Asked(0.8, "A", Cost()), Asked(0.6, "A", Cost()))  # picks first twice
    >>> v.verdict, v.consistent, v.a_first, v.b_first
    (0, False, 1, -1)
    """
    pa, pb = a_first.preference, -b_first.preference  # both as "a over b"
    va, vb = order_verdict(pa, tie_threshold), order_verdict(pb, tie_threshold)
    rationale = f"[a shown first] {a_first.rationale}\n[b shown first] {b_first.rationale}"
    return Verdict(
        verdict=va if va == vb else TIE,
        margin=(pa + pb) / 2,
        rationale=rationale,
        cost=a_first.cost + b_first.cost,
        a_first=va,
        b_first=vb,
    )


@dataclass(frozen=True)
class PairVerdict:
    """The verdict on candidates i < j (indices into the ranked list)."""

    i: int
    j: int
    verdict: Verdict


@dataclass
class JudgeRanking:
    """groups: candidate indices best first, ties sharing a group; comparisons: every pair."""

    groups: list[list[int]]
    comparisons: list[PairVerdict] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)  # Copeland score per candidate

    @property
    def cost(self) -> Cost:
        total = Cost()
        for c in self.comparisons:
            total += c.verdict.cost
        return total

    @property
    def inconsistent(self) -> int:
        """How many pairs the judge answered differently in the two orders."""
        return sum(not c.verdict.consistent for c in self.comparisons)

    @property
    def confidence(self) -> float:
        """The smallest |margin| over pairs, 0 when a pair is position-inconsistent: triage
        hands people the rankings with the lowest confidence first."""
        values = [
            0.0 if not c.verdict.consistent else abs(c.verdict.margin) for c in self.comparisons
        ]
        return min(values, default=0.0)

    @property
    def rationale(self) -> str:
        return "\n\n".join(
            f"#{c.i + 1} vs #{c.j + 1}: {c.verdict.name}\n{c.verdict.rationale}"
            for c in self.comparisons
        )


def copeland_groups(
    k: int, verdicts: Sequence[tuple[int, int, int]]
) -> tuple[list[list[int]], list[int]]:
    """Groups best first from pairwise verdicts (i, j, v): v +1 i won, -1 j won, 0 tie.

    Copeland score = wins - losses; equal scores are tied. Returns (groups, scores).

    >>> copeland_groups(3, [(0, 1, 1), (0, 2, 1), (1, 2, 0)])
    ([[0], [1, 2]], [2, -1, -1])
    >>> copeland_groups(3, [(0, 1, 1), (1, 2, 1), (0, 2, -1)])[0]  # a cycle ties everyone
    [[0, 1, 2]]
    """
    scores = [0] * k
    for i, j, v in verdicts:
        scores[i] += v
        scores[j] -= v
    levels = sorted(set(scores), reverse=True)
    return [[c for c in range(k) if scores[c] == s] for s in levels], scores


class PairwiseJudge(ABC):
    """A judge that compares two completions of a prompt; subclasses implement `ask`."""

    tie_threshold: float = 0.0

    @abstractmethod
    def ask(self, prompt: str, shown: Sequence[tuple[str, str]]) -> list[Asked]:
        """One answer per (first, second) shown, in order; batched where the judge can."""

    def compare(self, prompt: str, a: str, b: str) -> Verdict:
        """The verdict on a vs b, asked in both orders."""
        return self.compare_pairs(prompt, [(a, b)])[0]

    def compare_pairs(self, prompt: str, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        """Verdicts on several (a, b) of one prompt; both orders of all pairs asked together."""
        shown = [order for a, b in pairs for order in ((a, b), (b, a))]
        answers = self.ask(prompt, shown)
        if len(answers) != len(shown):
            raise JudgeError(f"{len(answers)} answers for {len(shown)} askings")
        return [
            combine_orders(answers[2 * n], answers[2 * n + 1], self.tie_threshold)
            for n in range(len(pairs))
        ]

    def rank(self, prompt: str, candidates: Sequence[str]) -> JudgeRanking:
        """All K (K - 1) / 2 pairs compared in both orders, aggregated by Copeland score."""
        if len(candidates) < 2:
            raise ValueError("candidates: at least two are needed to rank")
        index = [(i, j) for i in range(len(candidates)) for j in range(i + 1, len(candidates))]
        verdicts = self.compare_pairs(prompt, [(candidates[i], candidates[j]) for i, j in index])
        groups, scores = copeland_groups(
            len(candidates), [(i, j, v.verdict) for (i, j), v in zip(index, verdicts, strict=True)]
        )
        comparisons = [PairVerdict(i, j, v) for (i, j), v in zip(index, verdicts, strict=True)]
        return JudgeRanking(groups=groups, comparisons=comparisons, scores=scores)
