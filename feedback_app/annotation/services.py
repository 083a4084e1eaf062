"""Writes of the annotation app: import and skip (the hand-out is `handout.py`, the submit
`submit.py`: each workflow beside its SQL).

Pages, the API, Celery tasks and management commands all call these; none writes rows itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from feedback_app.common.errors import Conflict, InvalidInput, NotAllowed, Problem
from feedback_app.core import access
from feedback_app.core.access import check_writable
from feedback_app.core.audit import Origin, about_import, record
from feedback_app.core.models import Project

from .importing import PromptRecord
from .models import Assignment, Candidate, Prompt, Task
from .task_writer import tasks_refresh, tasks_write

RenderedT = TypeVar("RenderedT", Prompt, Candidate)


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
    *, project: Project, records: list[PromptRecord], round: int = 1, origin: Origin | None = None
) -> ImportResult:
    """Store checked records all or nothing; prompts already in the project are left alone.

    Records with candidates become a task of `round`. The content hash makes a re-import of the
    same file add nothing. Everything slow happens before the first write (the caller checked
    the file; every text is rendered here, outside any transaction); the rows are then written
    in chunks of `IMPORT_CHUNK` prompts, each its own short transaction, so nobody waits long
    for the database. If a chunk fails, what the earlier chunks wrote is deleted again; the
    audit event (`prompts.import`) is written once, after the last chunk.
    """
    check_writable(project)
    access.check_administers(origin, project)
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
    result = ImportResult(created=len(created), existing=len(records) - len(created), tasks=tasks)
    record("prompts.import", origin=origin, **about_import(project, result))
    return result


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
