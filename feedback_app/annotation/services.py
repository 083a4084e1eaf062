"""Writes of the annotation app: import, hand-out, submit, skip.

Pages, the API, Celery tasks and management commands all call these; none writes rows itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from feedback_app.common.errors import Conflict, InvalidInput, NotAllowed, Problem
from feedback_app.core import access
from feedback_app.core.models import Project

from . import handout, quality_refresh, selectors, submit
from .importing import PromptRecord
from .models import Assignment, Candidate, Prompt, Ranking, Task
from .projects import check_writable
from .rankings import check_flags, check_ranking, check_rationale, display_order, payload_hash
from .task_writer import tasks_refresh, tasks_write

RenderedT = TypeVar("RenderedT", Prompt, Candidate)

# A few retries cover the rare case where a task filled up between our read and our lock.
_HANDOUT_ATTEMPTS = 5


@dataclass(frozen=True)
class ImportResult:
    created: int
    existing: int
    tasks: int


# Prompts written per transaction. On SQLite one writer holds the whole database, so an import
# must leave it to annotators' hand-outs and submits (and a running job's heartbeat) between
# chunks; 200 prompts with their candidates take ~30-60 ms to write here (docs/architecture.md).
IMPORT_CHUNK = 200


def prompts_import(
    *, project: Project, records: list[PromptRecord], round: int = 1
) -> ImportResult:
    """Store checked records all or nothing; prompts already in the project are left alone.

    Records with candidates become a task of `round`. The content hash makes a re-import of the
    same file add nothing. Everything slow happens before the first write (the caller checked
    the file; every text is rendered here, outside any transaction); the rows are then written
    in chunks of `IMPORT_CHUNK` prompts, each its own short transaction, so nobody waits long
    for the database. If a chunk fails, what the earlier chunks wrote is deleted again.
    """
    check_writable(project)
    existing = set(
        Prompt.objects.filter(
            project=project, content_hash__in=[r.content_hash for r in records]
        ).values_list("content_hash", flat=True)
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
    rendered = [_rendered_record(project, r) for r in new]
    created: list[int] = []
    tasks = 0
    try:
        for start in range(0, len(rendered), IMPORT_CHUNK):
            if start:
                _let_others_write()
            ids, chunk_tasks = _write_chunk(project, rendered[start : start + IMPORT_CHUNK], round)
            created += ids
            tasks += chunk_tasks
    except BaseException:
        if created:
            Prompt.objects.filter(pk__in=created).delete()  # cascades to tasks and candidates
        raise
    if tasks:
        transaction.on_commit(lambda: tasks_refresh(project))  # once, not after each chunk
    return ImportResult(created=len(created), existing=len(records) - len(created), tasks=tasks)


def _rendered_record(
    project: Project, r: PromptRecord
) -> tuple[Prompt, list[Candidate], list[list[int]] | None]:
    """Unsaved rows with their sanitised HTML (common/rendering.py): rendered once, here."""
    prompt = _rendered(
        Prompt(
            project=project,
            text=r.text,
            messages=r.messages,
            content_hash=r.content_hash,
            external_id=r.external_id,
            metadata=r.metadata,
        )
    )
    candidates = [
        _rendered(Candidate(text=c.text, source=c.model, position=i))
        for i, c in enumerate(r.candidates)
    ]
    return prompt, candidates, r.gold


def _write_chunk(
    project: Project,
    rows: list[tuple[Prompt, list[Candidate], list[list[int]] | None]],
    round: int,
) -> tuple[list[int], int]:
    """Insert one chunk in one transaction; prompts another import stored meanwhile are skipped."""
    with transaction.atomic():
        taken = set(
            Prompt.objects.filter(
                project=project, content_hash__in=[p.content_hash for p, _, _ in rows]
            ).values_list("content_hash", flat=True)
        )
        rows = [row for row in rows if row[0].content_hash not in taken]
        prompts = Prompt.objects.bulk_create(p for p, _, _ in rows)
        with_candidates = [
            (p, cands, gold) for p, (_, cands, gold) in zip(prompts, rows, strict=True) if cands
        ]
        tasks = tasks_write(
            project=project,
            round=round,
            rows=[(p, cands) for p, cands, _ in with_candidates],
            golds=[gold for _, _, gold in with_candidates],
            refresh=False,
        )
    return [p.pk for p in prompts], len(tasks)


def _let_others_write() -> None:
    """On SQLite, pause between chunks so writers waiting for the lock get it.

    SQLite's busy handler polls (every 100 ms once it has waited a while): an import that takes
    the lock again the moment it commits would let nobody in. PostgreSQL locks rows, not the
    database, so nothing waits there. Inside an outer transaction (the demo set-up) the lock is
    held anyway, so pausing would only hold it longer.
    """
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        time.sleep(IMPORT_PAUSE_SECONDS)


# Long enough for a polling waiter to see the database free (see `_let_others_write`).
IMPORT_PAUSE_SECONDS = 0.15


def _rendered(row: RenderedT) -> RenderedT:
    row.render()  # once, here: pages show the stored HTML (common/rendering.py)
    return row


def task_assign_next(
    *, project: Project, annotator: AbstractBaseUser, now: datetime | None = None
) -> Assignment | None:
    """Lease the next task to `annotator`, or return the lease they already hold.

    Only members annotate (core/access.py): the membership test is part of the hand-out's own
    statements, so it costs no query; a non-member gets NotAllowed. Locks the chosen Task row
    (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL) for the rest of the transaction. Every
    write that takes a slot on a task (this hand-out, and a submit after the lease ran out)
    holds that lock, so the slot count re-read under it is exact, and annotators racing for the
    same task pass to the next one instead of waiting. SQLite has no row locks: there,
    `BEGIN IMMEDIATE` (settings) serialises the whole block instead.
    The returned assignment carries its task, prompt and candidates: the page reads no more.
    """
    now = now or timezone.now()
    if project.archived:
        # Archived projects are read-only and hidden from annotators: nothing is handed out.
        if not access.can_annotate(annotator, project):
            raise NotAllowed("only members of this project annotate it")
        return None
    assignment = _lease_next(project=project, annotator=annotator, now=now)
    if assignment is None and not access.can_annotate(annotator, project):
        # Only now is it worth a query to tell "nothing left" from "not a member".
        raise NotAllowed("only members of this project annotate it")
    return assignment


def _lease_next(
    *, project: Project, annotator: AbstractBaseUser, now: datetime
) -> Assignment | None:
    held = handout.held_lease(project_id=project.pk, annotator_id=annotator.pk, now=now)
    if held is not None:
        candidates, _ = handout.candidates_and_live_leases(task_id=held.task_id, now=now)
        selectors.keep_candidates(held.task, candidates)
        return held
    expires = now + timedelta(seconds=project.lease_seconds)  # the project's own length
    with transaction.atomic():
        if handout.gold_due(
            project_id=project.pk, annotator_id=annotator.pk, now=now, rate=project.gold_rate
        ):
            # Instead of the ordinary pick, not besides it: a gold hand-out runs as many
            # statements as any other (one more only when no gold task is left to this one).
            gold = handout.open_gold_task(project_id=project.pk, annotator_id=annotator.pk, now=now)
            if gold is not None:
                candidates, _ = handout.candidates_and_live_leases(task_id=gold.pk, now=now)
                return _lease(gold, candidates, annotator=annotator, now=now, expires=expires)
        for attempt in range(_HANDOUT_ATTEMPTS):
            task = handout.open_task_locked(
                project_id=project.pk, annotator_id=annotator.pk, now=now, skip_locked=True
            )
            if task is None and attempt == 0:
                # Every open task may be locked for a moment by others' hand-outs and submits:
                # wait for them rather than tell this annotator that nothing is left. Only
                # while this transaction holds no lock itself, so no two can wait on each other.
                task = handout.open_task_locked(
                    project_id=project.pk, annotator_id=annotator.pk, now=now, skip_locked=False
                )
            if task is None:
                return None
            # The locked row's submitted_count is current (PostgreSQL returns the newest
            # version of a row it locks); live leases are re-read by a new statement.
            candidates, leased = handout.candidates_and_live_leases(task_id=task.pk, now=now)
            if task.submitted_count + leased >= task.target_annotations:
                continue  # filled by a transaction that committed after our read
            return _lease(task, candidates, annotator=annotator, now=now, expires=expires)
    return None


def _lease(
    task: Task,
    candidates: list[Candidate],
    *,
    annotator: AbstractBaseUser,
    now: datetime,
    expires: datetime,
) -> Assignment:
    """Lease `task` (a gold one as any other: the page and the API cannot tell them apart)."""
    order = display_order([c.pk for c in candidates], task_id=task.pk, annotator_id=annotator.pk)
    assignment = handout.lease_upsert(
        task_id=task.pk, annotator_id=annotator.pk, now=now, expires=expires, order=order
    )
    selectors.keep_candidates(task, candidates)  # the page shows them: no second read
    assignment.task = task
    return assignment


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
    project_id: int | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Store `annotator`'s ranking of a task they were handed; a repeat of it is a no-op.

    Locks the Task row: a submit whose lease ran out takes a slot again and must not race the
    hand-out for the last one. `project_id`, when given, must be the task's project. Only
    members rank (core/access.py): the locking read finds no task of a project the annotator
    is not a member of, and that is NotAllowed.
    """
    now = now or timezone.now()
    with transaction.atomic():
        state = submit.submit_state_locked(task_id=task_id, annotator_id=annotator.pk)
        if state is None or project_id not in (None, state.project_id):
            raise NotAllowed(Problem("task", f"no task {task_id} in your projects"))
        if state.assignment_id is None:
            raise Conflict(Problem("task", "this task was not handed to you; ask for the next one"))
        if state.archived:
            raise Conflict(Problem("archived", "this project is archived: it takes no rankings"))
        # The lease's display order lists exactly the task's candidates (they never change).
        normalised = check_ranking(groups, state.display_order)
        flag_names = check_flags(flags)
        text = check_rationale(
            rationale, required=state.rationale_rule == Project.Rationale.REQUIRED
        )
        digest = payload_hash(normalised, text, flag_names)
        if state.ranking_id is not None:
            if state.ranking_hash == digest:
                return SubmitResult(Ranking.objects.get(pk=state.ranking_id), created=False)
            raise Conflict(Problem("ranking", "you already ranked this task; a ranking is final"))
        if state.status == Assignment.Status.SKIPPED:
            raise Conflict(Problem("task", "you skipped this task"))
        if state.expires_at <= now and not state.gold:  # a gold task has no slots to run out
            taken = submit.slots_taken(task_id=task_id, now=now)
            if taken >= state.target:
                raise Conflict(Problem("task", "your lease ran out and others completed this task"))
        ranking, target_raised = submit.ranking_store(
            state=state,
            annotator_id=annotator.pk,
            groups=normalised,
            rationale=text,
            flags=flag_names,
            payload_hash=digest,
            now=now,
        )
        transaction.on_commit(partial(quality_refresh.refresh_soon, state.project_id))
        if target_raised:  # the task wants one more ranking: the cached count must see it
            transaction.on_commit(partial(selectors.forget_unfilled_of, state.project_id))
        return SubmitResult(ranking, created=True)


def task_skip(*, task_id: int, annotator: AbstractBaseUser) -> Assignment:
    """Give a leased task back for good: it is not offered to this annotator again.

    Only members skip (core/access.py); the membership test is part of the locking read.
    """
    mine = access.projects_annotated_by(annotator)
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update()
            .filter(task_id=task_id, annotator=annotator, task__project__in=mine)
            .first()
        )
        if assignment is None:
            if not Task.objects.filter(pk=task_id, project__in=mine).exists():
                raise NotAllowed(Problem("task", f"no task {task_id} in your projects"))
            raise Conflict(Problem("task", "this task was not handed to you"))
        if assignment.status == Assignment.Status.SUBMITTED:
            raise Conflict(Problem("task", "you already ranked this task"))
        if assignment.status != Assignment.Status.SKIPPED:
            assignment.status = Assignment.Status.SKIPPED
            assignment.save(update_fields=["status", "updated_at"])
        return assignment
