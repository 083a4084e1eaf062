"""Writes of the annotation app: import, hand-out, submit, skip.

Pages, the API, Celery tasks and management commands all call these; none writes rows itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from feedback_app.common.errors import Conflict, InvalidInput, Problem

from . import selectors
from .importing import PromptRecord
from .models import Assignment, Candidate, Project, Prompt, Ranking, Task
from .rankings import check_flags, check_ranking, check_rationale, display_order, payload_hash

# A few retries cover the rare case where a task filled up between our read and our lock.
_HANDOUT_ATTEMPTS = 5


@dataclass(frozen=True)
class ImportResult:
    created: int
    existing: int
    tasks: int


@transaction.atomic
def prompts_import(
    *, project: Project, records: list[PromptRecord], round: int = 1
) -> ImportResult:
    """Store checked records all or nothing; prompts already in the project are left alone.

    Records with candidates become a task of `round`. The content hash makes a re-import of the
    same file add nothing.
    """
    hashes = [r.content_hash for r in records]
    existing = set(
        Prompt.objects.filter(project=project, content_hash__in=hashes).values_list(
            "content_hash", flat=True
        )
    )
    new = [r for r in records if r.content_hash not in existing]
    for r in new:
        if r.candidates and len(r.candidates) != project.candidates_per_task:
            raise InvalidInput(
                Problem(
                    "candidates",
                    f"this project ranks {project.candidates_per_task} candidates a task, "
                    f"got {len(r.candidates)}",
                    r.line,
                )
            )
    prompts = Prompt.objects.bulk_create(
        Prompt(
            project=project,
            text=r.text,
            messages=r.messages,
            content_hash=r.content_hash,
            external_id=r.external_id,
            metadata=r.metadata,
        )
        for r in new
    )
    with_candidates = [(p, r) for p, r in zip(prompts, new, strict=True) if r.candidates]
    tasks = Task.objects.bulk_create(
        Task(
            project=project,
            prompt=p,
            round=round,
            target_annotations=project.annotations_per_task,
        )
        for p, _ in with_candidates
    )
    Candidate.objects.bulk_create(
        Candidate(task=t, text=c.text, source=c.model, position=i)
        for t, (_, r) in zip(tasks, with_candidates, strict=True)
        for i, c in enumerate(r.candidates)
    )
    if tasks:
        transaction.on_commit(lambda: _after_import(project))
    return ImportResult(created=len(new), existing=len(existing), tasks=len(tasks))


def _after_import(project: Project) -> None:
    selectors.forget_unfilled_task_count(project)
    if connection.vendor == "postgresql":
        # Fresh planner statistics now rather than when autovacuum gets to it: until then the
        # planner takes a bulk-imported table for a few rows and the hand-out sorts every open
        # task instead of walking the index (1.4 ms instead of 0.2 at 2 000 tasks, growing
        # with the table). Took 0.36 s after importing 20 000 tasks (80 000 candidates).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE annotation_task, annotation_assignment, annotation_candidate")


def task_assign_next(
    *, project: Project, annotator: AbstractBaseUser, now: datetime | None = None
) -> Assignment | None:
    """Lease the next task to `annotator`, or return the lease they already hold.

    Locks the chosen Task row (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL) for the rest of
    the transaction. Every write that takes a slot on a task (this hand-out, and a submit after
    the lease ran out) holds that lock, so the slot count re-read under it is exact, and
    annotators racing for the same task pass to the next one instead of waiting. SQLite has no
    row locks: there, `BEGIN IMMEDIATE` (settings) serialises the whole block instead.
    """
    now = now or timezone.now()
    held = selectors.live_lease(project=project, annotator=annotator, now=now)
    if held is not None:
        return held
    lease = timedelta(seconds=settings.ANNOTATION_LEASE_SECONDS)
    with transaction.atomic():
        for _ in range(_HANDOUT_ATTEMPTS):
            task = (
                selectors.open_tasks(project=project, annotator=annotator, now=now)
                .select_related("prompt")
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if task is None:
                return None
            # The locked row's submitted_count is current (PostgreSQL returns the newest
            # version of a row it locks); live leases are re-read by a new statement.
            candidates, leased = selectors.candidates_and_live_leases(task=task, now=now)
            if task.submitted_count + leased >= task.target_annotations:
                continue  # filled by a transaction that committed after our read
            ids = [c.pk for c in candidates]
            # Their own expired lease is the only row that can exist: it is renewed in place
            # (INSERT ... ON CONFLICT DO UPDATE, one statement, no savepoint).
            (assignment,) = Assignment.objects.bulk_create(
                [
                    Assignment(
                        task=task,
                        annotator=annotator,
                        status=Assignment.Status.LEASED,
                        leased_at=now,
                        expires_at=now + lease,
                        display_order=display_order(
                            ids, task_id=task.pk, annotator_id=annotator.pk
                        ),
                    )
                ],
                update_conflicts=True,
                unique_fields=["task", "annotator"],
                update_fields=["status", "leased_at", "expires_at", "display_order", "updated_at"],
            )
            selectors.keep_candidates(task, candidates)  # the page shows them: no second read
            assignment.task = task
            return assignment
    return None


@dataclass(frozen=True)
class SubmitResult:
    ranking: Ranking
    created: bool


def ranking_submit(
    *,
    task_id: int,
    annotator: AbstractBaseUser,
    groups: object,
    rationale: object = "",
    flags: object = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Store `annotator`'s ranking of a task they were handed; a repeat of it is a no-op.

    Locks the Task row: a submit whose lease ran out takes a slot again and must not race the
    hand-out for the last one.
    """
    now = now or timezone.now()
    with transaction.atomic():
        task = (
            Task.objects.select_for_update()
            .select_related("project")
            .filter(pk=task_id, project__memberships__user=annotator)
            .first()
        )
        if task is None:
            raise InvalidInput(Problem("task", f"no task {task_id} in your projects"))
        candidate_ids = list(
            Candidate.objects.filter(task=task).order_by().values_list("id", flat=True)
        )
        normalised = check_ranking(groups, candidate_ids)
        flag_names = check_flags(flags)
        text = check_rationale(
            rationale, required=task.project.rationale == task.project.Rationale.REQUIRED
        )
        digest = payload_hash(normalised, text, flag_names)

        assignment = (
            Assignment.objects.select_related("ranking")
            .filter(task=task, annotator=annotator)
            .first()
        )
        if assignment is None:
            raise Conflict(Problem("task", "this task was not handed to you; ask for the next one"))
        existing = getattr(assignment, "ranking", None)
        if existing is not None:
            if existing.payload_hash == digest:
                return SubmitResult(existing, created=False)
            raise Conflict(Problem("ranking", "you already ranked this task; a ranking is final"))
        if assignment.status == Assignment.Status.SKIPPED:
            raise Conflict(Problem("task", "you skipped this task"))
        if assignment.expires_at <= now:
            taken = selectors.slots_taken(task=task, now=now)
            if taken >= task.target_annotations:
                raise Conflict(Problem("task", "your lease ran out and others completed this task"))

        ranking = Ranking.objects.create(
            task=task,
            annotator=annotator,
            assignment=assignment,
            groups=normalised,
            display_order=assignment.display_order,
            rationale=text,
            all_bad="all_bad" in flag_names,
            unsafe="unsafe" in flag_names,
            time_spent_ms=max(0, int((now - assignment.leased_at).total_seconds() * 1000)),
            payload_hash=digest,
        )
        Assignment.objects.filter(pk=assignment.pk).update(
            status=Assignment.Status.SUBMITTED, updated_at=now
        )
        Task.objects.filter(pk=task.pk).update(
            submitted_count=F("submitted_count") + 1, updated_at=now
        )
        return SubmitResult(ranking, created=True)


def task_skip(*, task_id: int, annotator: AbstractBaseUser) -> Assignment:
    """Give a leased task back for good: it is not offered to this annotator again."""
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update()
            .filter(
                task_id=task_id, annotator=annotator, task__project__memberships__user=annotator
            )
            .first()
        )
        if assignment is None:
            raise Conflict(Problem("task", "this task was not handed to you"))
        if assignment.status == Assignment.Status.SUBMITTED:
            raise Conflict(Problem("task", "you already ranked this task"))
        if assignment.status != Assignment.Status.SKIPPED:
            assignment.status = Assignment.Status.SKIPPED
            assignment.save(update_fields=["status", "updated_at"])
        return assignment
