"""Model versions: register what a training job made, promote one to active."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core.audit import Origin, about_version, record
from feedback_app.core.models import Job, ModelVersion, Project

from .guide import promote_warning


@transaction.atomic
def model_register(
    *,
    project: Project,
    kind: str,
    name: str,
    stage: str = "",
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
        stage=stage,
        name=name,
        weights=str(weights),
        parent=parent,
        job=job,
        snapshot=snapshot,
        metrics=metrics or {},
        is_active=activate_if_first and first,
    )


@transaction.atomic
def model_promote(*, version: ModelVersion, origin: Origin | None = None) -> ModelVersion:
    """Make `version` the active one of its kind in its project (the next round uses it).
    Recorded (`model.promote`) when someone asked; a runner's or the autopilot's promotion is
    recorded by its job or run."""
    ModelVersion.objects.select_for_update().filter(
        project=version.project_id, kind=version.kind, is_active=True
    ).exclude(pk=version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    record("model.promote", origin=origin, **about_version(version))
    return version


def check_promote_confirmed(*, version: ModelVersion, confirm: bool) -> None:
    """A version that lost to its parent, or is not clearly better, is promoted only when the
    admin confirms it knowing why (the page's checkbox, the API's `confirm: true`)."""
    warning = promote_warning(version.metrics or {})
    if warning and not confirm:
        raise InvalidInput(Problem("confirm", f"{version.label}: {warning}; confirm to promote"))


def model_promote_confirmed(
    *, version: ModelVersion, confirm: bool, origin: Origin | None = None
) -> ModelVersion:
    """Promote at an admin's request: `model_promote` after `check_promote_confirmed` (a
    refused promotion records nothing)."""
    check_promote_confirmed(version=version, confirm=confirm)
    return model_promote(version=version, origin=origin)


def base_version_ensure(project: Project) -> ModelVersion | None:
    """Register the project's base model as its first policy version ("base", active), unless
    it already has a policy. Later changes of `base_model` register nothing: the loop's
    versions descend from the base they started with."""
    if not project.base_model:
        return None
    if ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.POLICY).exists():
        return None
    name = (
        "base"
        if not ModelVersion.objects.filter(project=project, name="base").exists()
        else (f"base-{project.pk}")
    )
    return model_register(
        project=project,
        kind=ModelVersion.Kind.POLICY,
        name=name,
        weights=project.base_model,
        stage=ModelVersion.Stage.BASE,
    )


def lineage_root(version: ModelVersion) -> ModelVersion:
    """The version a lineage started from (its base model): parents followed to the first.

    One query a step; lineages are a few rounds long. A cycle cannot be made (a parent exists
    before its child), but the walk stops at a repeat anyway.
    """
    seen = {version.pk}
    while version.parent_id is not None and version.parent_id not in seen:
        seen.add(version.parent_id)
        version = ModelVersion.objects.get(pk=version.parent_id)
    return version
