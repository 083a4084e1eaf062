"""Rounds: the tasks and candidates a generate job made, stored all or nothing."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Max

from feedback_app.annotation.models import Candidate, Prompt, Task
from feedback_app.annotation.task_writer import tasks_write
from feedback_app.core.models import Job, ModelVersion, Project

from .models import Round


def unasked_prompts(prompts: Sequence[Prompt]) -> list[Prompt]:
    """The prompts no ordinary (non-gold) task has asked about yet: a round's selection pool."""
    asked = set(
        Task.objects.filter(prompt__in=prompts, gold__isnull=True).values_list(
            "prompt_id", flat=True
        )
    )
    return [p for p in prompts if p.pk not in asked]


def active_reward_model(project: Project) -> ModelVersion | None:
    """The reward model active selection scores with: the project's active one."""
    return ModelVersion.objects.filter(
        project=project, kind=ModelVersion.Kind.REWARD, is_active=True
    ).first()


def next_round_number(project: Project) -> int:
    last = Task.objects.filter(project=project).aggregate(n=Max("round"))["n"] or 0
    return last + 1


def round_started(project: Project) -> bool:
    """Whether the project has a round, or one is being generated: a first round is queued once."""
    return (
        project.tasks.exists()
        or Job.objects.filter(
            project=project, kind=Job.Kind.GENERATE, status__in=Job.ACTIVE
        ).exists()
    )


@transaction.atomic
def round_store(
    *,
    project: Project,
    prompts: Sequence[Prompt],
    candidates: Sequence[Sequence[tuple[str, ModelVersion]]],
    versions: Sequence[ModelVersion],
    job: Job | None = None,
    selection: dict | None = None,
) -> Round:
    """Store a new round: one task a prompt with its generated candidates, all or nothing;
    `selection` records how its prompts were chosen (training/selection.py)."""
    number = next_round_number(project)
    rnd = Round.objects.create(project=project, number=number, job=job, selection=selection or {})
    rnd.model_versions.set(versions)
    rows = [
        (
            prompt,
            [
                Candidate(text=t, source=v.name, model_version=v, position=i)
                for i, (t, v) in enumerate(c)
            ],
        )
        for prompt, c in zip(prompts, candidates, strict=True)
    ]
    tasks_write(project=project, round=number, rows=rows)  # the import's writer: same after-steps
    return rnd
