"""Reads shared by pages, the API and services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from .models import Assignment, Candidate, Project, Task


def project_by_id_or_name(value: str) -> Project | None:
    """What the management commands accept for a project: its id or its exact name."""
    lookup = {"pk": int(value)} if value.isdigit() else {"name": value}
    return Project.objects.filter(**lookup).first()


def live_leases(now: datetime) -> Q:
    return Q(status=Assignment.Status.LEASED, expires_at__gt=now)


def live_lease(
    *, project: Project, annotator: AbstractBaseUser, now: datetime
) -> Assignment | None:
    """The lease `annotator` holds in `project`, so a reload shows the same task."""
    return (
        Assignment.objects.filter(live_leases(now), task__project=project, annotator=annotator)
        .select_related("task__prompt")
        .prefetch_related(Prefetch("task__candidates", queryset=_candidates()))
        .order_by("leased_at")
        .first()
    )


def _candidates() -> QuerySet[Candidate]:
    # Explicit order: the model's default ("task", "position") joins the task table for nothing.
    return Candidate.objects.order_by("position")


def _live_lease_count(task: OuterRef | Task, now: datetime) -> Subquery:
    return Subquery(
        Assignment.objects.filter(live_leases(now), task=task)
        .order_by()
        .values("task")
        .annotate(n=Count("pk"))
        .values("n")
    )


def open_tasks(*, project: Project, annotator: AbstractBaseUser, now: datetime) -> QuerySet[Task]:
    """Tasks `annotator` may be handed: not done, skipped or held by them, with a free slot.

    A slot is held by a submitted ranking (``submitted_count``) or by someone's live lease.
    Oldest first, so tasks complete in import order.
    """
    mine = Assignment.objects.filter(task=OuterRef("pk"), annotator=annotator).filter(
        Q(status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED]) | live_leases(now)
    )
    return (
        Task.objects.filter(project=project, submitted_count__lt=F("target_annotations"))
        .filter(~Exists(mine))
        .annotate(leased=Coalesce(_live_lease_count(OuterRef("pk"), now), Value(0)))
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


def candidates_and_live_leases(*, task: Task, now: datetime) -> tuple[list[Candidate], int]:
    """The task's candidates, and its live leases counted by the same (fresh) statement.

    For the hand-out, which holds the task's row lock: the locked row's ``submitted_count`` is
    current, but leases live in another table and the locking statement's snapshot may predate
    a hand-out that committed just before we got the lock, so they are re-read here, in one
    query with the candidates the page needs anyway.
    """
    rows = list(
        _candidates()
        .filter(task=task)
        .annotate(live_leases=Coalesce(_live_lease_count(task, now), Value(0)))
    )
    return rows, rows[0].live_leases if rows else 0


def keep_candidates(task: Task, candidates: list[Candidate]) -> None:
    """Store rows already read where a prefetch would: ``task.candidates.all()`` returns them."""
    task._prefetched_objects_cache = {"candidates": candidates}


@dataclass(frozen=True)
class Progress:
    done: int
    remaining: int


# How long a project's count of unfilled tasks may be reused (per cache, see settings.CACHES).
UNFILLED_CACHE_SECONDS = 10


def _unfilled_key(project: Project) -> str:
    # created_at as well as the id: SQLite hands out a rolled-back id again (tests do that).
    return f"annotation:unfilled:{project.pk}:{project.created_at.timestamp()}"


def unfilled_task_count(project: Project) -> int:
    """Tasks of `project` with fewer submitted rankings than their target; cached briefly.

    Counting scans every task of the project (milliseconds at 20 000 tasks), too much for each
    page view; tasks only ever fill up, so a cached value is at most a little too high.
    """
    key = _unfilled_key(project)
    count = cache.get(key)
    if count is None:
        count = Task.objects.filter(
            project=project, submitted_count__lt=F("target_annotations")
        ).count()
        cache.set(key, count, UNFILLED_CACHE_SECONDS)
    return count


def forget_unfilled_task_count(project: Project) -> None:
    """Called when tasks are added, so the next page view counts them."""
    cache.delete(_unfilled_key(project))


def annotator_progress(*, project: Project, annotator: AbstractBaseUser) -> Progress:
    """Rankings this annotator submitted, and an upper bound of the tasks left to them.

    ``remaining`` = tasks of the project that still need rankings (fewer submitted than the
    target, as of at most ``UNFILLED_CACHE_SECONDS`` ago) minus those among them this annotator
    has ranked or skipped. The task they hold counts as remaining. It can be higher than what
    they will be handed: tasks whose free slots are all leased to others count too, and a task
    filled in the last few seconds may still count. One query on the annotator's assignments
    (plus the project count when it is not cached), whatever the project's size.
    """
    unfilled = Q(task__submitted_count__lt=F("task__target_annotations"))
    closed = Q(status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED])
    counts = Assignment.objects.filter(task__project=project, annotator=annotator).aggregate(
        done=Count("pk", filter=Q(status=Assignment.Status.SUBMITTED)),
        closed_unfilled=Count("pk", filter=closed & unfilled),
    )
    remaining = max(0, unfilled_task_count(project) - counts["closed_unfilled"])
    return Progress(done=counts["done"], remaining=remaining)


def candidates_in_display_order(assignment: Assignment) -> list[Candidate]:
    """Uses the candidates already loaded with the assignment (prefetch) when there are some."""
    by_id = {c.pk: c for c in assignment.task.candidates.all()}
    return [by_id[i] for i in assignment.display_order if i in by_id]
