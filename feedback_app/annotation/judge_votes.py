"""An AI judge's ranking, submitted like a person's, with what it rests on (issue 23).

The judge's `JudgeRanking` (training/judges) ranks the candidates in the order its lease showed
them; this maps it back to candidate ids, submits it through `ranking_submit` (the one
validator, the lease and overlap rules) and stores the pairwise verdicts beside the ranking in
one transaction: the verdict of each order, the margin, how many pairs flipped with the order.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from training.judges.base import JudgeRanking

from .models import JudgeVote
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


def judge_ranking_submit(
    *,
    task_id: int,
    project_id: int,
    annotator: AbstractBaseUser,
    order: Sequence[int],
    ranking: JudgeRanking,
) -> SubmitResult:
    """Submit the judge's ranking of a task leased to it (`order`: the lease's display order)
    and store its vote; a ranking already stored is returned as it is."""
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
            JudgeVote.objects.create(
                ranking=result.ranking,
                comparisons=vote_comparisons(ranking, order),
                inconsistent=ranking.inconsistent,
                confidence=ranking.confidence,
                tokens=cost.tokens,
                seconds=cost.seconds,
            )
    return result
