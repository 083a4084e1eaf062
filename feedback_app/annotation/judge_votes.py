"""An AI judge's ranking, submitted like a person's, with what it rests on (issue 23).

The judge's `JudgeRanking` (training/judges) ranks the candidates in the order its lease showed
them; this maps it back to candidate ids, submits it through `ranking_submit` (the one
validator, the lease and overlap rules) and stores the pairwise verdicts beside the ranking in
one transaction: the verdict of each order, the margin, how many pairs flipped with the order.

Triage is decided there too, once per judge's ranking, so the hand-out reads one column
(`Task.judge_unsure`) and computes nothing: a graded priority (`triage_priority`), disputed
tasks (another judge's vote took the other side of a pair this one decided) first, then by the
share of pairs this judge flipped, tied or hardly preferred. The submit holds the task's row
lock until commit, so two judges submitting the same task at once are serialised and the
second sees the first's vote.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from training.judges.base import JudgeRanking

from .models import JudgeVote, Task
from .rankings import MAX_RATIONALE
from .submit import SubmitResult, ranking_submit


def vote_comparisons(ranking: JudgeRanking, order: Sequence[int]) -> list[dict]:
    """Each pair as {a, b, a_first, b_first, margin} with candidate ids a < b.

    >>> from training.judges.base import Cost, PairVerdict, Verdict
    >>> v = Verdict(verdict=1, margin=0.4, rationale="", cost=Cost(), a_first=1, b_first=1)
    >>> vote_comparisons(JudgeRanking([[0], [1]], [PairVerdict(0, 1, v)]), [9, 4])
    [{'a': 4, 'b': 9, 'a_first': -1, 'b_first': -1, 'margin': -0.4}]
    """
    out = []
    for c in ranking.comparisons:
        a, b, v = order[c.i], order[c.j], c.verdict
        if a < b:
            out.append({"a": a, "b": b, "a_first": v.a_first, "b_first": v.b_first,
                        "margin": v.margin})  # fmt: skip
        else:  # seen from b: each order's verdict negated, and the orders swap
            out.append({"a": b, "b": a, "a_first": -v.b_first, "b_first": -v.a_first,
                        "margin": -v.margin})  # fmt: skip
    return out


# Task.judge_unsure, a graded priority: higher is handed to people first. 0: sure (or no
# judge); 1..100: the share (per cent, at least 1) of the task's pairs a judge was unsure of;
# DISPUTED + 1..100: two judges took opposite sides, by the share of pairs disputed.
SURE, DISPUTED = 0, 1000


def pair_verdict(comparison: dict) -> int:
    """The verdict on (a, b) from a stored comparison: the orders' verdict when they agree,
    else a tie.

    >>> pair_verdict({"a_first": 1, "b_first": 1}), pair_verdict({"a_first": 1, "b_first": -1})
    (1, 0)
    """
    a_first, b_first = comparison["a_first"], comparison["b_first"]
    return a_first if a_first == b_first else 0


def _share(part: int, whole: int) -> int:
    """part/whole in per cent, at least 1 when part > 0 (so any doubt outranks none)."""
    return 0 if part == 0 else max(1, round(100 * part / whole))


def triage_priority(
    comparisons: Sequence[dict], others: Sequence[Sequence[dict]], *, unsure_margin: float
) -> int:
    """How much a judge's vote (`comparisons`) wants people first, given other judges' votes
    on the same task: DISPUTED plus the share of pairs another judge decided the other way;
    else the share of pairs this judge flipped with the order, tied, or decided by a margin
    under `unsure_margin`; 0 when sure of every pair.

    Graded, not a yes/no mark: a position-biased judge flips some pair of most tasks (88 % of
    tasks of K = 4 at a 30 % position bias, bench/judge.py), and a mark then orders nearly
    every task by id; the share hands people the most doubtful first.

    >>> sure = [{"a": 1, "b": 2, "a_first": 1, "b_first": 1, "margin": 0.6}]
    >>> flip = [{"a": 1, "b": 2, "a_first": 1, "b_first": -1, "margin": 0.1}]
    >>> other = [{"a": 1, "b": 2, "a_first": -1, "b_first": -1, "margin": -0.5}]
    >>> triage_priority(sure, [], unsure_margin=0.0), triage_priority(flip, [], unsure_margin=0)
    (0, 100)
    >>> triage_priority(sure * 2 + flip, [], unsure_margin=0.0)
    33
    >>> triage_priority(sure, [], unsure_margin=0.7)
    100
    >>> triage_priority(sure, [other], unsure_margin=0.0)
    1100
    """
    n = len(comparisons)
    mine = {(c["a"], c["b"]): pair_verdict(c) for c in comparisons}
    disputed = set()
    for vote in others:
        for c in vote:
            key = (c["a"], c["b"])
            v = mine.get(key, 0)
            if v != 0 and pair_verdict(c) == -v:
                disputed.add(key)
    if disputed:
        return DISPUTED + _share(len(disputed), n)
    unsure = sum(1 for c in comparisons if pair_verdict(c) == 0 or abs(c["margin"]) < unsure_margin)
    return _share(unsure, n)


def _triage_mark(*, task_id: int, vote: JudgeVote, unsure_margin: float) -> None:
    """Raise the task's `judge_unsure` to this vote's level (never lower it: another judge's
    doubt stands). The caller holds the task's row lock."""
    others = (
        JudgeVote.objects.filter(ranking__task_id=task_id)
        .exclude(pk=vote.pk)
        .values_list("comparisons", flat=True)
    )
    level = triage_priority(vote.comparisons, list(others), unsure_margin=unsure_margin)
    if level:
        Task.objects.filter(pk=task_id, judge_unsure__lt=level).update(judge_unsure=level)


def judge_ranking_submit(
    *,
    task_id: int,
    project_id: int,
    annotator: AbstractBaseUser,
    order: Sequence[int],
    ranking: JudgeRanking,
    unsure_margin: float = 0.0,
) -> SubmitResult:
    """Submit the judge's ranking of a task leased to it (`order`: the lease's display order),
    store its vote and mark the task for triage; a ranking already stored is returned as it
    is. `unsure_margin`: the judge's (core.Judge.unsure_margin)."""
    groups = [[order[i] for i in group] for group in ranking.groups]
    # A model's text may hold what no database stores (NUL, a lone surrogate): dropped.
    rationale = ranking.rationale.replace("\x00", "").encode("utf-8", "ignore").decode().strip()
    if len(rationale) > MAX_RATIONALE:
        rationale = rationale[: MAX_RATIONALE - 1].rstrip() + "…"
    cost = ranking.cost
    with transaction.atomic():
        result = ranking_submit(
            task_id=task_id,
            annotator=annotator,
            groups=groups,
            rationale=rationale,
            project_id=project_id,
        )
        if result.created:
            vote = JudgeVote.objects.create(
                ranking=result.ranking,
                comparisons=vote_comparisons(ranking, order),
                inconsistent=ranking.inconsistent,
                confidence=ranking.confidence,
                tokens=cost.tokens,
                seconds=cost.seconds,
            )
            _triage_mark(task_id=task_id, vote=vote, unsure_margin=unsure_margin)
    return result
