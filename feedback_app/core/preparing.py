"""Whether a project's next round is being prepared, for the pages that would otherwise say
"nothing left": the ranking page, the project card and the loop page.

A round is being prepared while the project has a queued or running job that builds its base
model (which then generates round 1) or generates a round. The note names the job; admins get
its page linked (annotators see the same words without the link).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from .access import is_project_admin
from .eta import job_eta_text
from .models import Job, Project

PREPARING_KINDS = (Job.Kind.BUILD_BASE, Job.Kind.GENERATE)


@dataclass(frozen=True)
class RoundPreparing:
    job_id: int
    what: str  # "the base model is being built, then round 1 generated"
    state: str  # "queued", "45%"
    eta: str | None  # "about 2 min left"
    job_url: str | None  # the job's page, for admins only


def rounds_preparing(
    *, project_ids: list[int], administered: set[int]
) -> dict[int, RoundPreparing]:
    """Each listed project's oldest active round-preparing job, described, by project id.

    One query for any number of projects (the home page's cards). `administered` holds the ids
    of the projects whose admins see the job linked.
    """
    jobs = (
        Job.objects.filter(
            project_id__in=project_ids, kind__in=PREPARING_KINDS, status__in=Job.ACTIVE
        )
        .only("id", "kind", "status", "progress", "started_at", "heartbeat_at", "project_id")
        .order_by("-id")
    )
    found: dict[int, RoundPreparing] = {}
    for job in jobs:  # newest first, so the oldest of each project is the one kept
        found[job.project_id] = _describe(job, linked=job.project_id in administered)
    return found


def round_preparing(*, project: Project, user: AbstractBaseUser) -> RoundPreparing | None:
    """The project's oldest active round-preparing job, described; None if there is none."""
    linked = {project.pk} if is_project_admin(user, project) else set()
    return rounds_preparing(project_ids=[project.pk], administered=linked).get(project.pk)


def _describe(job: Job, *, linked: bool) -> RoundPreparing:
    if job.kind == Job.Kind.BUILD_BASE:
        what = "the base model is being set up, then round 1 is generated"
    else:
        what = "the next round's candidates are being generated"
    running = job.status == Job.Status.RUNNING
    return RoundPreparing(
        job_id=job.pk,
        what=what,
        state=f"{job.progress:.0%}" if running else "queued",
        eta=job_eta_text(job),
        job_url=reverse("finetuning:job", args=[job.pk]) if linked else None,
    )
