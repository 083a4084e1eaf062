"""Reads of rankings in the shape the pure pair functions take."""

from __future__ import annotations

from dataclasses import dataclass

from feedback_app.annotation.models import Ranking
from feedback_app.core.models import Project

from .pairs import RankingRow


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
