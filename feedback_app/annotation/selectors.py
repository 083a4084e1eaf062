"""Reads shared by pages, the API and services."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import F

from feedback_app.core.models import Project

from .models import Assignment, Candidate, Task
from .progress import progress_counts


def project_by_id_or_name(value: str) -> Project | None:
    """What the management commands accept for a project: its id or its exact name."""
    lookup = {"pk": int(value)} if value.isdigit() else {"name": value}
    return Project.objects.filter(**lookup).first()


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
    now = time.monotonic()
    held = _in_process.get(key)
    if held is not None and held[0] > now:
        return held[1]
    count = cache.get(key)
    if count is None:
        count = Task.objects.filter(
            project=project, submitted_count__lt=F("target_annotations")
        ).count()
        cache.set(key, count, UNFILLED_CACHE_SECONDS)
    _in_process[key] = (now + IN_PROCESS_SECONDS, count)
    return count


# The count read from the shared cache is also kept in the process this long: it saves the
# ranking page a Redis round trip (one of five a ranking). An import in another process shows
# here at most this much later.
IN_PROCESS_SECONDS = 2.0
_in_process: dict[str, tuple[float, int]] = {}


def forget_unfilled_task_count(project: Project) -> None:
    """Called when tasks are added or a target is raised (more votes, gold, a split), so the
    next page view counts them."""
    key = _unfilled_key(project)
    _in_process.pop(key, None)
    cache.delete(key)


def forget_unfilled_of(project_id: int) -> None:
    """`forget_unfilled_task_count` by id (the submit path holds no Project row)."""
    project = Project.objects.only("pk", "created_at").filter(pk=project_id).first()
    if project is not None:
        forget_unfilled_task_count(project)


def annotator_progress(*, project: Project, annotator: AbstractBaseUser) -> Progress:
    """Rankings this annotator submitted, and an upper bound of the tasks left to them.

    ``remaining`` = tasks of the project that still need rankings (fewer submitted than the
    target, as of at most ``UNFILLED_CACHE_SECONDS`` ago) minus those among them this annotator
    has ranked or skipped. The task they hold counts as remaining. It can be higher than what
    they will be handed: tasks whose free slots are all leased to others count too, and a task
    filled in the last few seconds may still count. One query on the annotator's assignments
    (plus the project count when it is not cached), whatever the project's size.
    """
    done, closed_unfilled = progress_counts(project_id=project.pk, annotator_id=annotator.pk)
    remaining = max(0, unfilled_task_count(project) - closed_unfilled)
    return Progress(done=done, remaining=remaining)


def candidates_in_display_order(assignment: Assignment) -> list[Candidate]:
    """Uses the candidates already loaded with the assignment (prefetch) when there are some."""
    by_id = {c.pk: c for c in assignment.task.candidates.all()}
    return [by_id[i] for i in assignment.display_order if i in by_id]
