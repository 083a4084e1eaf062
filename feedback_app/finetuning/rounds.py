"""Rounds: the tasks and candidates a generate job made, stored all or nothing."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Max

from feedback_app.annotation.models import Candidate, Prompt, Task
from feedback_app.annotation.selectors import forget_unfilled_task_count
from feedback_app.core.models import Job, ModelVersion, Project

from .models import Round


def next_round_number(project: Project) -> int:
    last = Task.objects.filter(project=project).aggregate(n=Max("round"))["n"] or 0
    return last + 1


@transaction.atomic
def round_store(
    *,
    project: Project,
    prompts: Sequence[Prompt],
    candidates: Sequence[Sequence[tuple[str, ModelVersion]]],
    versions: Sequence[ModelVersion],
    job: Job | None = None,
) -> Round:
    """Store a new round: one task a prompt with its generated candidates, all or nothing."""
    number = next_round_number(project)
    rnd = Round.objects.create(project=project, number=number, job=job)
    rnd.model_versions.set(versions)
    tasks = Task.objects.bulk_create(
        Task(
            project=project,
            prompt=p,
            round=number,
            target_annotations=project.annotations_per_task,
        )
        for p in prompts
    )
    rows = [
        Candidate(task=t, text=text, source=version.name, model_version=version, position=i)
        for t, cands in zip(tasks, candidates, strict=True)
        for i, (text, version) in enumerate(cands)
    ]
    for row in rows:
        row.render()  # once, here: pages show the stored HTML
    Candidate.objects.bulk_create(rows)
    transaction.on_commit(lambda: forget_unfilled_task_count(project))
    return rnd
