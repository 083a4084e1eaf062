"""The loop demo `make run` sets up: prompts the offline base model can continue, that model as
the active policy, and round 1 queued for the worker. Safe to run again."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from feedback_app.annotation import demo as users_demo
from feedback_app.annotation import services as annotation_services
from feedback_app.annotation.importing import parse_jsonl
from feedback_app.core.models import Job, Membership, ModelVersion, Project

from . import services, versions


@dataclass(frozen=True)
class LoopDemo:
    project: Project
    base: object
    job: object | None


def loop_demo_bootstrap(*, base_weights: str) -> LoopDemo:
    """The loop demo: prompts without candidates, the offline base model as the active policy,
    and round 1 queued for the worker to generate (once: a second run queues nothing).
    """
    with transaction.atomic():
        project, _ = Project.objects.get_or_create(
            name=users_demo.LOOP_PROJECT,
            defaults={
                "guidelines": users_demo.LOOP_GUIDELINES,
                "candidates_per_task": 4,
                "annotations_per_task": 3,
            },
        )
        model = get_user_model()
        admin = model.normalize_username(users_demo.ADMIN)  # as demo_bootstrap stored the names
        names = [admin, *(model.normalize_username(name) for name in users_demo.ANNOTATORS)]
        for user in model.objects.filter(username__in=names):
            role = Membership.Role.ADMIN if user.username == admin else Membership.Role.ANNOTATOR
            Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
        annotation_services.prompts_import(
            project=project,
            records=parse_jsonl(users_demo.LOOP_FILE.read_bytes(), k=project.candidates_per_task),
        )
        base = ModelVersion.objects.filter(project=project, name="base").first()
        if base is None:
            base = versions.model_register(
                project=project,
                kind=ModelVersion.Kind.POLICY,
                name="base",
                weights=base_weights,
                stage=ModelVersion.Stage.BASE,
            )
        job = None
        started = (
            project.tasks.exists()
            or Job.objects.filter(
                project=project, kind=Job.Kind.GENERATE, status__in=Job.ACTIVE
            ).exists()
        )
        if not started:
            job = services.job_launch(
                project=project,
                kind=Job.Kind.GENERATE,
                params={"max_new_tokens": 40, "temperature": 0.9, "top_p": 0.95, "seed": 0},
            )
    return LoopDemo(project=project, base=base, job=job)
