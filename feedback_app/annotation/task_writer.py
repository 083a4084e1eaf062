"""The one writer of tasks: imports and generated rounds both store theirs here.

What every new task needs, whoever made it: its candidates' sanitised HTML stored beside the
text (common/rendering.py), and, once the rows are committed, the project's cached count of
unfilled tasks forgotten and PostgreSQL's planner statistics refreshed.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction

from feedback_app.common.db import table
from feedback_app.common.rendering import RENDER_VERSION
from feedback_app.core.models import Project

from .models import Assignment, Candidate, Prompt, Task
from .selectors import forget_unfilled_task_count


def tasks_write(
    *,
    project: Project,
    round: int,
    rows: Sequence[tuple[Prompt, Sequence[Candidate]]],
    refresh: bool = True,
    golds: Sequence[list[list[int]] | None] | None = None,
) -> list[Task]:
    """Insert one task of `round` for each (stored prompt, unsaved candidates) pair.

    `golds`, beside `rows`, makes a task a gold task: its expected order as groups of candidate
    positions (checked by importing.py), stored as groups of the candidates' ids. A gold task
    is created filled (target 0): it takes no slot (models.Task.gold).

    Candidates not rendered yet are rendered here (an import renders before its transaction,
    so this costs it nothing). With `refresh`, `tasks_refresh` runs when the transaction
    commits; a writer of many short transactions (the import's chunks) passes False and
    schedules it once itself.
    """
    golds = golds if golds is not None else [None] * len(rows)
    tasks = Task.objects.bulk_create(
        Task(
            project=project,
            prompt=prompt,
            round=round,
            target_annotations=0 if gold is not None else project.annotations_per_task,
        )
        for (prompt, _), gold in zip(rows, golds, strict=True)
    )
    candidates = []
    for task, (_, cands) in zip(tasks, rows, strict=True):
        for c in cands:
            c.task = task
            if c.render_version != RENDER_VERSION:
                c.render()  # once, here: pages show the stored HTML
            candidates.append(c)
    Candidate.objects.bulk_create(candidates)
    gold_tasks = []
    for task, (_, cands), gold in zip(tasks, rows, golds, strict=True):
        if gold is not None:
            by_position = {c.position: c.pk for c in cands}
            task.gold = [sorted(by_position[p] for p in group) for group in gold]
            gold_tasks.append(task)
    if gold_tasks:
        Task.objects.bulk_update(gold_tasks, ["gold"])
    if refresh and tasks:
        transaction.on_commit(lambda: tasks_refresh(project))
    return tasks


def tasks_refresh(project: Project) -> None:
    """After new tasks are committed: the next page counts them, the planner knows of them."""
    forget_unfilled_task_count(project)
    if connection.vendor == "postgresql":
        # Fresh planner statistics now rather than when autovacuum gets to it: until then the
        # planner takes a bulk-imported table for a few rows and the hand-out sorts every open
        # task instead of walking the index (1.4 ms instead of 0.2 at 2 000 tasks, growing
        # with the table). Took 0.36 s after importing 20 000 tasks (80 000 candidates).
        tables = ", ".join(table(m) for m in (Task, Assignment, Candidate))
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")
