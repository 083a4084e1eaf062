"""Writes of the loop: launch jobs, register and promote model versions, store a round."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Max

from feedback_app.annotation.models import Candidate, Prompt, Task
from feedback_app.annotation.task_writer import tasks_write
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
