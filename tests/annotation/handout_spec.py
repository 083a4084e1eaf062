"""The hand-out and the submit, stated in plain ORM: the executable specification.

The application runs hand-written SQL for speed (feedback_app/annotation/handout.py, submit.py);
this module says the same rules the slow, readable way, and tests/annotation/test_handout_spec.py
drives random states through both and checks they agree. Read this to know what an annotator
may be given and which submissions are accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from feedback_app.annotation.handout import gold_due
from feedback_app.annotation.models import Assignment, Ranking, Task
from feedback_app.core.models import Membership, Project

Outcome = Literal["created", "repeat", "conflict", "not_allowed"]


def live(now: datetime, prefix: str = "") -> Q:
    """A live lease: leased, and not expired at `now`. Expired leases hold no slot."""
    return Q(**{f"{prefix}status": Assignment.Status.LEASED, f"{prefix}expires_at__gt": now})


def is_member(annotator: AbstractBaseUser, project_id: int) -> bool:
    """Members annotate; nobody else (staff included) is handed or may rank a task."""
    return Membership.objects.filter(project_id=project_id, user=annotator).exists()


def held_lease(project: Project, annotator: AbstractBaseUser, now: datetime) -> Assignment | None:
    """The live lease the annotator holds in the project, oldest first: a reload shows it."""
    return (
        Assignment.objects.filter(live(now), annotator=annotator, task__project=project)
        .order_by("leased_at")
        .first()
    )


def _closed_or_held(annotator: AbstractBaseUser, now: datetime) -> Exists:
    """The annotator ranked, skipped, or holds a live lease on the task (an expired one does
    not count)."""
    return Exists(
        Assignment.objects.filter(
            Q(status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED]) | live(now),
            task=OuterRef("pk"),
            annotator=annotator,
        )
    )


def open_tasks(project: Project, annotator: AbstractBaseUser, now: datetime) -> QuerySet[Task]:
    """Ordinary tasks the annotator may be handed, oldest first; with the project's triage,
    by the AI judges' graded priority, highest first (disputed, then the share of pairs a
    judge was unsure of), then oldest first.

    Not gold; submitted rankings plus live leases below the rankings wanted; not ranked,
    skipped, or leased by the annotator.
    """
    order = ("-judge_unsure", "id") if project.judge_triage else ("id",)
    return (
        Task.objects.filter(project=project, gold__isnull=True)
        .annotate(leased=Count("assignments", filter=live(now, "assignments__")))
        .filter(submitted_count__lt=F("target_annotations"))
        .filter(submitted_count__lt=F("target_annotations") - F("leased"))
        .exclude(_closed_or_held(annotator, now))
        .order_by(*order)
    )


def open_gold_tasks(project: Project, annotator: AbstractBaseUser, now: datetime) -> QuerySet[Task]:
    """Gold tasks the annotator has not ranked, skipped or leased, oldest first: no slots,
    every member may rank each once."""
    return (
        Task.objects.filter(project=project, gold__isnull=False)
        .exclude(_closed_or_held(annotator, now))
        .order_by("id")
    )


def task_to_hand_out(
    project: Project, annotator: AbstractBaseUser, now: datetime
) -> Task | None | Literal["not_allowed"]:
    """What the hand-out gives: the held lease's task; else, when a gold task is due (a share
    `gold_rate` of hand-outs, decided by `gold_due`), the oldest open gold task; else the
    first open task (`open_tasks`); else None."""
    if not is_member(annotator, project.pk):
        return "not_allowed"
    held = held_lease(project, annotator, now)
    if held is not None:
        return held.task
    due = gold_due(
        project_id=project.pk, annotator_id=annotator.pk, now=now, rate=project.gold_rate
    )
    gold = open_gold_tasks(project, annotator, now).first() if due else None
    return gold or open_tasks(project, annotator, now).first()


def slots_taken(task: Task, now: datetime) -> int:
    return task.submitted_count + task.assignments.filter(live(now)).count()


def target_after_submit(task: Task, target_before: int, max_votes: int) -> int:
    """Adaptive overlap: the rankings a task wants after a ranking of it was stored.

    While the top groups of its rankings (best group, as a set of candidate ids) all agree, or
    the project has fixed overlap (`annotations_max` 0 or below the target), what it wanted
    before. Once two top groups differ, a ranking that fills the task asks for one more, until
    `max_votes`. Gold tasks take no slot and never change.
    """
    if task.gold is not None:
        return target_before
    rankings = Ranking.objects.filter(task=task).values_list("groups", flat=True)
    tops = {tuple(sorted(groups[0])) for groups in rankings}
    filled = task.submitted_count >= target_before
    if len(tops) > 1 and filled and target_before < max_votes:
        return target_before + 1
    return target_before


def submit_outcome(
    task_id: int, annotator: AbstractBaseUser, groups: list[list[int]], now: datetime
) -> Outcome:
    """Whether a (valid) ranking of the task by the annotator is stored, at `now`.

    Accepted when the task was handed to them and they neither ranked nor skipped it; after
    their lease ran out, only while the task still has a free slot (a gold task always has).
    The same ranking again answers as the first time did; a different one is refused (a
    ranking is final).
    """
    task = Task.objects.filter(pk=task_id).first()
    if task is None or not is_member(annotator, task.project_id):
        return "not_allowed"
    assignment = Assignment.objects.filter(task=task, annotator=annotator).first()
    if assignment is None:
        return "conflict"
    ranking = Ranking.objects.filter(assignment=assignment).first()
    if ranking is not None:
        return "repeat" if ranking.groups == groups else "conflict"
    if assignment.status == Assignment.Status.SKIPPED:
        return "conflict"
    if (
        assignment.expires_at <= now
        and task.gold is None  # a gold task has no slots to run out
        and slots_taken(task, now) >= task.target_annotations
    ):
        return "conflict"
    return "created"
