"""The review queue's rows and an admin's two answers to an item: more votes, or a drop.

The queue itself is computed in a worker (finetuning's `review_scores` job scores candidates
with the active reward model, quality/review.py picks the confident disagreements) and stored
here; the pages and the API only read it. Both answers are recorded, never undone by deleting:
a dropped ranking stays stored and is left out of datasets (rows.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet

from feedback_app.annotation.models import Candidate, Ranking, Task
from feedback_app.annotation.selectors import forget_unfilled_task_count
from feedback_app.common import storable
from feedback_app.common.errors import Conflict, InvalidInput, NotAllowed, Problem
from feedback_app.core.models import ModelVersion, Project

from .models import MoreVotesRequest, RankingDrop, ReviewItem
from .quality.judgements import Judgement, ranks_from_groups
from .quality.review import Disagreement

MAX_REASON = 2000
# Rankings wanted of one task, at most, however often more votes are asked for.
MAX_TARGET = 1000


def review_judgements(*, project: Project) -> list[Judgement]:
    """The votes the queue weighs: the rankings a dataset would use (no gold, none dropped)."""
    return [
        Judgement(task_id=t, annotator_id=a, ranks=ranks_from_groups(groups))
        for t, a, groups in Ranking.objects.filter(
            task__project=project, task__gold__isnull=True, dropped__isnull=True
        )
        .order_by("task_id", "id")
        .values_list("task_id", "annotator_id", "groups")
        .iterator(chunk_size=2000)
    ]


def review_queue_store(
    *, project: Project, model_version: ModelVersion, items: Iterable[Disagreement]
) -> int:
    """Replace the project's queue with `items` (scored by `model_version`); how many."""
    rows = [
        ReviewItem(
            project=project,
            model_version=model_version,
            task_id=d.task_id,
            chosen_id=d.chosen,
            rejected_id=d.rejected,
            votes_for=d.votes_for,
            votes_against=d.votes_against,
            ties=d.ties,
            margin=d.margin,
        )
        for d in items
    ]
    with transaction.atomic():
        ReviewItem.objects.filter(project=project).delete()
        ReviewItem.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def review_items(*, project: Project) -> QuerySet[ReviewItem]:
    """The stored queue, most confident disagreement first, with what a page shows of it."""
    return (
        ReviewItem.objects.filter(project=project)
        .select_related("task__prompt", "chosen", "rejected", "model_version")
        .order_by("-margin", "id")
    )


def _reason(value: object) -> str:
    value = "" if value is None else value
    if message := storable.text_problem(value, limit=MAX_REASON, blank=True):
        raise InvalidInput(Problem("reason", message))
    return value.strip()  # type: ignore[union-attr]  # text_problem refused anything but str


def task_more_votes(
    *, project: Project, task_id: int, by: AbstractBaseUser, reason: object = ""
) -> MoreVotesRequest:
    """Ask for one more ranking of a task: raise its rankings wanted by one, recorded.

    Locks the task row, as every write of its slots does (annotation/services.py). Not for a
    gold task: it has no slots, every annotator is handed it anyway.
    """
    text = _reason(reason)
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id, project=project).first()
        if task is None:
            raise NotAllowed(Problem("task", f"no task {task_id} in this project"))
        if task.gold is not None:
            raise Conflict(Problem("task", "a gold task goes to every annotator already"))
        if task.target_annotations >= MAX_TARGET:
            raise Conflict(Problem("task", f"this task already wants {MAX_TARGET} rankings"))
        before = task.target_annotations
        task.target_annotations = before + 1
        task.save(update_fields=["target_annotations", "updated_at"])
        request = MoreVotesRequest.objects.create(
            task=task, requested_by=by, reason=text, target_before=before, target_after=before + 1
        )
        transaction.on_commit(lambda: forget_unfilled_task_count(project))
    return request


def ranking_drop(
    *, project: Project, ranking_id: int, by: AbstractBaseUser, reason: object = ""
) -> RankingDrop:
    """Drop a ranking from future datasets: recorded with who and why; the ranking is kept.

    Dropping it again answers with the first record (and changes nothing).
    """
    text = _reason(reason)
    ranking = Ranking.objects.filter(pk=ranking_id, task__project=project).first()
    if ranking is None:
        raise NotAllowed(Problem("ranking", f"no ranking {ranking_id} in this project"))
    drop, _ = RankingDrop.objects.get_or_create(
        ranking=ranking, defaults={"dropped_by": by, "reason": text}
    )
    return drop


def candidates_to_score(*, project: Project, task_ids: Iterable[int]) -> list[Candidate]:
    """The candidates of `task_ids` with their task's prompt, for the reward model to score."""
    return list(
        Candidate.objects.filter(task__project=project, task_id__in=list(task_ids))
        .select_related("task__prompt")
        .order_by("task_id", "position")
    )


def rankings_of_tasks(*, task_ids: Iterable[int]) -> dict[int, list[Ranking]]:
    """The rankings of each task (annotator and drop record attached), for the review page."""
    out: dict[int, list[Ranking]] = {}
    for r in (
        Ranking.objects.filter(task_id__in=list(task_ids))
        .select_related("annotator", "dropped")
        .order_by("task_id", "id")
    ):
        out.setdefault(r.task_id, []).append(r)
    return out
