"""The hand-out: its workflow (`task_assign_next`, at the end) and the statements and rules it
runs: which task an annotator is given, and what a lease is.

Every annotator runs these in a loop, so their cost is the product's throughput. Django builds
and compiles each ORM query from scratch on every call (1.6 ms of CPU for the hand-out query
with its subqueries, 0.3 ms for a plain ``get``) while PostgreSQL runs them in well under that;
written out, a statement costs ~0.1 ms of Python. docs/bench-annotate.md has the measurements.

Plain SQL that PostgreSQL and SQLite both run (SQLite >= 3.35 for ``RETURNING``); only the row
lock is PostgreSQL's alone. Table and selected column names come from the models' ``_meta``;
parameters are named and always bound. Rows come back as model instances (``Model.from_db``) so
callers, templates and serializers cannot tell these from ORM results; columns not selected are
deferred and load on access, like ``.only()``. The readable ORM statement of the same rules is
tests/annotation/handout_spec.py; a property-based test holds this module to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from feedback_app.common.db import (
    aware,
    columns,
    fetchone,
    for_update,
    instance,
    json_param,
    json_value,
    sql_params,
    table,
)
from feedback_app.common.errors import NotAllowed
from feedback_app.core import access
from feedback_app.core.access import member_sql
from feedback_app.core.models import Project

from .models import Assignment, Candidate, Prompt, Task
from .rankings import display_order

LEASED = Assignment.Status.LEASED.value
SUBMITTED = Assignment.Status.SUBMITTED.value
SKIPPED = Assignment.Status.SKIPPED.value


def live_lease_sql(alias: str) -> str:
    """SQL true when assignment `alias` is a live lease: leased, and not expired at %(now)s.

    The one statement of the rule. An expired lease is derived, not stored: it simply stops
    holding a slot. Statements using it bind %(leased)s and %(now)s (`lease_params`).
    """
    return f"({alias}.status = %(leased)s AND {alias}.expires_at > %(now)s)"


def live_leases_of_task_sql(task: str) -> str:
    """A scalar subquery: how many live leases task `task` (an expression) has."""
    return (
        f"(SELECT count(*) FROM {table(Assignment)} l"
        f" WHERE l.task_id = {task} AND {live_lease_sql('l')})"
    )


def lease_params(**values: object) -> dict[str, object]:
    """Named parameters with the assignment statuses, datetimes in the backend's storage form."""
    return sql_params(leased=LEASED, submitted=SUBMITTED, skipped=SKIPPED, **values)


_TASK_FIELDS = ("id", "project_id", "prompt_id", "round", "target_annotations", "submitted_count")
_PROMPT_FIELDS = ("text", "messages", "html", "render_version", "html_digest")
_LEASE_FIELDS = ("id", "task_id", "annotator_id", "status", "leased_at", "expires_at")
_CANDIDATE_FIELDS = ("id", "text", "source", "position", "html", "render_version", "html_digest")


@cache
def _open_task_sql(vendor: str, triage: bool) -> str:
    """The oldest task with a free slot that this annotator has not ranked, skipped or leased;
    with `triage`, the one AI judges were least sure of first (Task.judge_unsure), then so.

    The partial index task_unfilled_by_project walks the unfilled tasks in id order (the filled
    ones are not in it); task_triage_by_project walks the same tasks in triage order. The LIMIT
    stops at the first one whose free slots are not all leased. Only members are handed
    tasks: the membership test is a one-time filter of the statement.
    """
    # PostgreSQL turns NOT EXISTS into an anti-join, and merged it with every assignment of the
    # project below the first open task: 0.37 ms at 6 700 assignments, growing with the
    # project's history. OFFSET 0 keeps it a probe of the (task, annotator) unique index for
    # each task the walk visits: 0.06 ms (docs/bench-annotate.md). SQLite probes anyway (and
    # has no OFFSET without LIMIT).
    probe = "OFFSET 0" if vendor == "postgresql" else ""
    return f"""
SELECT {columns("t", Task, _TASK_FIELDS)}, {columns("p", Prompt, _PROMPT_FIELDS)}
FROM {table(Task)} t
JOIN {table(Prompt)} p ON p.id = t.prompt_id
WHERE t.project_id = %(project)s
  AND {member_sql(project="%(project)s", user="%(annotator)s")}
  AND t.submitted_count < t.target_annotations
  AND NOT EXISTS (
      SELECT 1 FROM {table(Assignment)} mine
      WHERE mine.task_id = t.id AND mine.annotator_id = %(annotator)s
        AND (mine.status IN (%(submitted)s, %(skipped)s) OR {live_lease_sql("mine")})
      {probe})
  AND t.submitted_count + {live_leases_of_task_sql("t.id")} < t.target_annotations
ORDER BY {"t.judge_unsure DESC, t.id" if triage else "t.id"}
LIMIT 1"""


@cache
def _open_gold_task_sql() -> str:
    """The oldest gold task this annotator has not ranked, skipped or leased (a member's only).

    No slot count and no lock: a gold task takes no slot (models.Task.gold), every member may
    rank it once. The partial index task_gold_by_project holds the few gold tasks.
    """
    return f"""
SELECT {columns("t", Task, _TASK_FIELDS)}, {columns("p", Prompt, _PROMPT_FIELDS)}
FROM {table(Task)} t
JOIN {table(Prompt)} p ON p.id = t.prompt_id
WHERE t.project_id = %(project)s AND t.gold IS NOT NULL
  AND {member_sql(project="%(project)s", user="%(annotator)s")}
  AND NOT EXISTS (
      SELECT 1 FROM {table(Assignment)} mine
      WHERE mine.task_id = t.id AND mine.annotator_id = %(annotator)s
        AND (mine.status IN (%(submitted)s, %(skipped)s) OR {live_lease_sql("mine")}))
ORDER BY t.id
LIMIT 1"""


def gold_due(*, project_id: int, annotator_id: int, now: datetime, rate: float) -> bool:
    """Whether this hand-out should give a gold task: true for a share `rate` of hand-outs.

    A hash of (project, annotator, the hand-out's time), not a random generator: the same
    inputs decide the same way, so the specification (tests/annotation/handout_spec.py) can
    say what the SQL must do, and a test with fixed times measures the rate. It costs no query.
    """
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{project_id}:{annotator_id}:{now.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@cache
def _held_lease_sql() -> str:
    """The annotator's live lease in the project, oldest first (a member's only)."""
    return f"""
SELECT {columns("a", Assignment, (*_LEASE_FIELDS, "display_order"))},
       {columns("t", Task, _TASK_FIELDS[1:])}, {columns("p", Prompt, _PROMPT_FIELDS)}
FROM {table(Assignment)} a
JOIN {table(Task)} t ON t.id = a.task_id
JOIN {table(Prompt)} p ON p.id = t.prompt_id
WHERE a.annotator_id = %(annotator)s AND t.project_id = %(project)s AND {live_lease_sql("a")}
  AND {member_sql(project="%(project)s", user="%(annotator)s")}
ORDER BY a.leased_at
LIMIT 1"""


@cache
def _candidates_and_live_leases_sql() -> str:
    # A fresh statement, so it sees leases committed after the locking statement's snapshot.
    return f"""
SELECT {columns("c", Candidate, _CANDIDATE_FIELDS)}, {live_leases_of_task_sql("c.task_id")}
FROM {table(Candidate)} c
WHERE c.task_id = %(task)s
ORDER BY c.position"""


@cache
def _lease_upsert_sql() -> str:
    # The annotator's own expired lease is the only row that can conflict: renewed in place.
    return f"""
INSERT INTO {table(Assignment)}
    (created_at, updated_at, task_id, annotator_id, status, leased_at, expires_at, display_order)
VALUES (%(now)s, %(now)s, %(task)s, %(annotator)s, %(leased)s, %(now)s, %(expires)s, %(order)s)
ON CONFLICT (task_id, annotator_id) DO UPDATE SET
    status = excluded.status, leased_at = excluded.leased_at,
    expires_at = excluded.expires_at, display_order = excluded.display_order,
    updated_at = excluded.updated_at
RETURNING id"""


def open_task_sql(*, triage: bool = False) -> str:
    """The hand-out's pick, without its lock (tests read its plan)."""
    return _open_task_sql(connection.vendor, triage)


def _task_with_prompt(values: Sequence) -> Task:
    """A Task (its prompt attached) from the `_TASK_FIELDS` then `_PROMPT_FIELDS` columns."""
    task_id, project_id, prompt_id, round_, target, submitted, *prompt = values
    text, messages, html, version, digest = prompt
    task = instance(
        Task,
        id=task_id,
        project_id=project_id,
        prompt_id=prompt_id,
        round=round_,
        target_annotations=target,
        submitted_count=submitted,
    )
    task.prompt = instance(
        Prompt,
        id=prompt_id,
        project_id=project_id,
        text=text,
        messages=json_value(messages),
        html=json_value(html),
        render_version=version,
        html_digest=digest,
    )
    return task


def held_lease(*, project_id: int, annotator_id: int, now: datetime) -> Assignment | None:
    """The live lease the annotator holds in the project (task and prompt attached)."""
    row = fetchone(
        _held_lease_sql(), lease_params(project=project_id, annotator=annotator_id, now=now)
    )
    if row is None:
        return None
    assignment_id, task_id, annotator, status, leased_at, expires_at, order, *task_row = row
    assignment = instance(
        Assignment,
        id=assignment_id,
        task_id=task_id,
        annotator_id=annotator,
        status=status,
        leased_at=aware(leased_at),
        expires_at=aware(expires_at),
        display_order=json_value(order),
    )
    assignment.task = _task_with_prompt([task_id, *task_row])
    return assignment


def open_task_locked(
    *, project_id: int, annotator_id: int, now: datetime, skip_locked: bool, triage: bool = False
) -> Task | None:
    """Lock and return the next task for a member, passing rows others hold locked or waiting
    for them (`skip_locked`), in triage order when asked. None for a non-member."""
    sql = for_update(open_task_sql(triage=triage), of="t", skip_locked=skip_locked)
    row = fetchone(sql, lease_params(project=project_id, annotator=annotator_id, now=now))
    return None if row is None else _task_with_prompt(row)


def open_gold_task(*, project_id: int, annotator_id: int, now: datetime) -> Task | None:
    """The next gold task for a member (none for a non-member), unlocked: it has no slots."""
    row = fetchone(
        _open_gold_task_sql(), lease_params(project=project_id, annotator=annotator_id, now=now)
    )
    return None if row is None else _task_with_prompt(row)


def candidates_and_live_leases(*, task_id: int, now: datetime) -> tuple[list[Candidate], int]:
    """The task's candidates by position, and its live leases counted by the same statement."""
    with connection.cursor() as cursor:
        cursor.execute(_candidates_and_live_leases_sql(), lease_params(task=task_id, now=now))
        rows = cursor.fetchall()
    candidates = [
        instance(
            Candidate,
            id=cid,
            task_id=task_id,
            text=text,
            source=source,
            position=position,
            html=html,
            render_version=version,
            html_digest=digest,
        )
        for cid, text, source, position, html, version, digest, _ in rows
    ]
    return candidates, rows[0][-1] if rows else 0


def lease_upsert(
    *, task_id: int, annotator_id: int, now: datetime, expires: datetime, order: list[int]
) -> Assignment:
    """Lease the task to the annotator until `expires`, renewing their own expired lease."""
    params = lease_params(
        task=task_id, annotator=annotator_id, now=now, expires=expires, order=json_param(order)
    )
    (assignment_id,) = fetchone(_lease_upsert_sql(), params)
    return instance(
        Assignment,
        id=assignment_id,
        updated_at=now,
        task_id=task_id,
        annotator_id=annotator_id,
        status=LEASED,
        leased_at=now,
        expires_at=expires,
        display_order=order,
    )


# --- the workflow: the rules over the statements above ---------------------------------------


def keep_candidates(task: Task, candidates: list[Candidate]) -> None:
    """Store rows already read where a prefetch would: ``task.candidates.all()`` returns them."""
    task._prefetched_objects_cache = {"candidates": candidates}


# A few retries cover the rare case where a task filled up between our read and our lock.
_HANDOUT_ATTEMPTS = 5


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
    held = held_lease(project_id=project.pk, annotator_id=annotator.pk, now=now)
    if held is not None:
        candidates, _ = candidates_and_live_leases(task_id=held.task_id, now=now)
        keep_candidates(held.task, candidates)
        return held
    expires = now + timedelta(seconds=project.lease_seconds)  # the project's own length
    with transaction.atomic():
        if gold_due(
            project_id=project.pk, annotator_id=annotator.pk, now=now, rate=project.gold_rate
        ):
            # Instead of the ordinary pick, not besides it: a gold hand-out runs as many
            # statements as any other (one more only when no gold task is left to this one).
            gold = open_gold_task(project_id=project.pk, annotator_id=annotator.pk, now=now)
            if gold is not None:
                candidates, _ = candidates_and_live_leases(task_id=gold.pk, now=now)
                return _lease(gold, candidates, annotator=annotator, now=now, expires=expires)
        for attempt in range(_HANDOUT_ATTEMPTS):
            task = open_task_locked(
                project_id=project.pk, annotator_id=annotator.pk, now=now, skip_locked=True,
                triage=project.judge_triage,
            )  # fmt: skip
            if task is None and attempt == 0:
                # Every open task may be locked for a moment by others' hand-outs and submits:
                # wait for them rather than tell this annotator that nothing is left. Only
                # while this transaction holds no lock itself, so no two can wait on each other.
                task = open_task_locked(
                    project_id=project.pk, annotator_id=annotator.pk, now=now,
                    skip_locked=False, triage=project.judge_triage,
                )  # fmt: skip
            if task is None:
                return None
            # The locked row's submitted_count is current (PostgreSQL returns the newest
            # version of a row it locks); live leases are re-read by a new statement.
            candidates, leased = candidates_and_live_leases(task_id=task.pk, now=now)
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
    assignment = lease_upsert(
        task_id=task.pk, annotator_id=annotator.pk, now=now, expires=expires, order=order
    )
    keep_candidates(task, candidates)  # the page shows them: no second read
    assignment.task = task
    return assignment
