"""Reads shared by pages, the API and services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from .models import Assignment, Candidate, Project, Task


def live_leases(now: datetime) -> Q:
    return Q(status=Assignment.Status.LEASED, expires_at__gt=now)


def live_lease(
    *, project: Project, annotator: AbstractBaseUser, now: datetime
) -> Assignment | None:
    """The lease `annotator` holds in `project`, so a reload shows the same task."""
    return (
        Assignment.objects.filter(live_leases(now), task__project=project, annotator=annotator)
        .select_related("task__prompt")
        .order_by("leased_at")
        .first()
    )


def open_tasks(*, project: Project, annotator: AbstractBaseUser, now: datetime) -> QuerySet[Task]:
    """Tasks `annotator` may be handed: not done, skipped or held by them, with a free slot.

    A slot is held by a submitted ranking (``submitted_count``) or by someone's live lease.
    Oldest first, so tasks complete in import order.
    """
    leases = (
        Assignment.objects.filter(live_leases(now), task=OuterRef("pk"))
        .order_by()
        .values("task")
        .annotate(n=Count("pk"))
        .values("n")
    )
    mine = Assignment.objects.filter(task=OuterRef("pk"), annotator=annotator).filter(
        Q(status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED]) | live_leases(now)
    )
    return (
        Task.objects.filter(project=project, submitted_count__lt=F("target_annotations"))
        .filter(~Exists(mine))
        .annotate(leased=Coalesce(Subquery(leases), Value(0)))
        .filter(submitted_count__lt=F("target_annotations") - F("leased"))
        .order_by("id")
    )


def slots_taken(*, task: Task, now: datetime) -> int:
    """Submitted rankings plus live leases, read fresh (the caller holds the task's lock)."""
    row = (
        Task.objects.filter(pk=task.pk)
        .annotate(
            leased=Count(
                "assignments",
                filter=Q(assignments__status=Assignment.Status.LEASED)
                & Q(assignments__expires_at__gt=now),
            )
        )
        .values_list("submitted_count", "leased")
        .get()
    )
    return row[0] + row[1]


@dataclass(frozen=True)
class Progress:
    done: int
    remaining: int


def annotator_progress(*, project: Project, annotator: AbstractBaseUser, now: datetime) -> Progress:
    """Rankings this annotator submitted, and tasks left to them (the one they hold included)."""
    counts = Assignment.objects.filter(task__project=project, annotator=annotator).aggregate(
        done=Count("pk", filter=Q(status=Assignment.Status.SUBMITTED)),
        held=Count("pk", filter=live_leases(now)),
    )
    open_count = open_tasks(project=project, annotator=annotator, now=now).count()
    done, remaining = counts["done"], open_count + counts["held"]
    return Progress(done=done, remaining=remaining)


def candidates_in_display_order(assignment: Assignment) -> list[Candidate]:
    by_id = {c.pk: c for c in Candidate.objects.filter(task_id=assignment.task_id)}
    return [by_id[i] for i in assignment.display_order if i in by_id]
