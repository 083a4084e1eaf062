"""Gold tasks: an admin marks (or clears) a task's expected order.

A gold task is mixed into every annotator's queue at the project's gold rate (handout.py) and
takes no slot; its rankings measure annotators against the expected order and never count as
votes (preferences/rows.py). Imports mark theirs through task_writer.py.
"""

from __future__ import annotations

from django.db import transaction

from feedback_app.common.errors import NotAllowed, Problem
from feedback_app.core.models import Project

from .models import Ranking, Task
from .rankings import check_ranking
from .selectors import forget_unfilled_task_count


def task_gold_set(*, project: Project, task_id: int, groups: object | None) -> Task:
    """Make the task a gold task with expected order `groups` (candidate ids), or, with None,
    an ordinary task again.

    Locks the task row, as every write of its slots does. A gold task is kept filled
    (target = submitted_count, which gold rankings do not raise) so the ordinary hand-out never
    sees it; cleared, its rankings are counted again and it wants the project's overlap.
    """
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id, project=project).first()
        if task is None:
            raise NotAllowed(Problem("task", f"no task {task_id} in this project"))
        if groups is None:
            if task.gold is None:
                return task
            ranked = Ranking.objects.filter(task=task).count()
            task.gold = None
            task.submitted_count = ranked
            task.target_annotations = max(project.annotations_per_task, ranked)
        else:
            ids = list(task.candidates.values_list("pk", flat=True))
            task.gold = check_ranking(groups, ids, field="gold")
            task.target_annotations = task.submitted_count
        task.save(update_fields=["gold", "submitted_count", "target_annotations", "updated_at"])
        transaction.on_commit(lambda: forget_unfilled_task_count(project))
    return task
