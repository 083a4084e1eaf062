"""Reads of rankings in the shape the pure pair functions take."""

from __future__ import annotations

from dataclasses import dataclass

from feedback_app.annotation.models import Ranking, Task
from feedback_app.core.models import Project

from .pairs import RankingRow
from .quality.judgements import Judgement, ranks_from_groups
from .quality.reliability import Rate, gold_accuracy


@dataclass(frozen=True)
class StoredRanking:
    ranking_id: int
    row: RankingRow


def ranking_rows(*, project: Project) -> list[StoredRanking]:
    """Every ranking of the project, oldest first, as plain rows (one query, no model objects)."""
    values = (
        Ranking.objects.filter(task__project=project)
        .order_by("id")
        .values_list("id", "task_id", "annotator_id", "groups", "all_bad", "unsafe")
    )
    return [
        StoredRanking(rid, RankingRow(task, annotator, groups, all_bad, unsafe))
        for rid, task, annotator, groups, all_bad, unsafe in values.iterator(chunk_size=2000)
    ]


def gold_orders(*, project: Project) -> dict[int, dict[int, int]]:
    """The project's gold tasks' expected orders as {task id: {candidate id: rank}}."""
    return {
        task_id: ranks_from_groups(groups)
        for task_id, groups in Task.objects.filter(project=project, gold__isnull=False)
        .order_by("id")
        .values_list("id", "gold")
    }


def gold_accuracy_by_annotator(*, project: Project) -> dict[int, Rate]:
    """Each annotator's agreement with the gold orders (reliability.gold_accuracy): pairs the
    gold puts in a strict order, 1 for the same order, 1/2 for a tie. Two queries; gold tasks
    are few, so this reads only their rankings."""
    gold = gold_orders(project=project)
    judgements = [
        Judgement(task_id=task_id, annotator_id=annotator_id, ranks=ranks_from_groups(groups))
        for task_id, annotator_id, groups in Ranking.objects.filter(task_id__in=list(gold))
        .order_by("id")
        .values_list("task_id", "annotator_id", "groups")
    ]
    return gold_accuracy(judgements, gold)
