"""Writes of the loop: launch jobs, register and promote model versions, store a round."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Max

from feedback_app.annotation.models import Candidate, Prompt, Task
from feedback_app.annotation.selectors import forget_unfilled_task_count
from feedback_app.core.models import Job, ModelVersion, Project

from . import jobs
from .models import Round
from .params import check_params


def job_launch(*, project: Project, kind: str, params: Any, user=None) -> Job:
    """Check the parameters, store a queued job, and send it to its queue after commit."""
    clean = check_params(project, kind, params)
    with transaction.atomic():
        return jobs.job_create(project=project, kind=kind, params=clean, user=user)


@transaction.atomic
def model_register(
    *,
    project: Project,
    kind: str,
    name: str,
    weights: str | Path,
    parent: ModelVersion | None = None,
    job: Job | None = None,
    snapshot=None,
    metrics: dict | None = None,
    activate_if_first: bool = True,
) -> ModelVersion:
    """Record a model version; the first of its kind in a project becomes the active one."""
    first = not ModelVersion.objects.filter(project=project, kind=kind, is_active=True).exists()
    return ModelVersion.objects.create(
        project=project,
        kind=kind,
        name=name,
        weights=str(weights),
        parent=parent,
        job=job,
        snapshot=snapshot,
        metrics=metrics or {},
        is_active=activate_if_first and first,
    )


@transaction.atomic
def model_promote(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the active one of its kind in its project (the next round uses it)."""
    ModelVersion.objects.select_for_update().filter(
        project=version.project_id, kind=version.kind, is_active=True
    ).exclude(pk=version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    return version


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
