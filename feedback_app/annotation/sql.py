"""Hand-written SQL for the ranking page's hot path: hand-out, submit and progress.

Every annotator runs these in a loop, so their cost is the product's throughput. Django builds
and compiles each ORM query from scratch on every call (1.6 ms of CPU for the hand-out query
with its subqueries, 0.3 ms for a plain ``get``) while PostgreSQL runs them in well under that;
written out, a statement costs ~0.1 ms of Python. docs/bench-annotate.md has the measurements.

The statements are plain SQL that PostgreSQL and SQLite both run (SQLite >= 3.35 for
``RETURNING``); only the row lock is PostgreSQL's alone. Parameters are named and always bound,
never formatted in. Rows come back as model instances (``Model.from_db``) so callers, templates
and serializers cannot tell these from ORM results; columns not selected are deferred and load
on access, like ``.only()``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Assignment, Candidate, Prompt, Ranking, Task

ModelT = TypeVar("ModelT", bound=Model)

LEASED = Assignment.Status.LEASED.value
SUBMITTED = Assignment.Status.SUBMITTED.value
SKIPPED = Assignment.Status.SKIPPED.value

_LIVE_LEASES = """
    SELECT count(*) FROM annotation_assignment l
    WHERE l.task_id = t.id AND l.status = %(leased)s AND l.expires_at > %(now)s"""

# The oldest task with a free slot that this annotator has not ranked, skipped or leased.
# The partial index task_unfilled_by_project walks the unfilled tasks in id order (the filled
# ones are not in it); the LIMIT stops at the first one whose free slots are not all leased.
# Callers add the row lock on PostgreSQL, and fill in {probe_each_task} (below).
_OPEN_TASK = f"""
SELECT t.id, t.project_id, t.prompt_id, t.round, t.target_annotations, t.submitted_count,
       p.text, p.messages, p.html, p.render_version, p.html_digest
FROM annotation_task t
JOIN annotation_prompt p ON p.id = t.prompt_id
WHERE t.project_id = %(project)s
  AND t.submitted_count < t.target_annotations
  AND NOT EXISTS (
      SELECT 1 FROM annotation_assignment mine
      WHERE mine.task_id = t.id AND mine.annotator_id = %(annotator)s
        AND (mine.status IN (%(submitted)s, %(skipped)s) OR mine.expires_at > %(now)s)
      {{probe_each_task}})
  AND t.submitted_count + ({_LIVE_LEASES}) < t.target_annotations
ORDER BY t.id
LIMIT 1"""

_HELD_LEASE = """
SELECT a.id, a.task_id, a.annotator_id, a.status, a.leased_at, a.expires_at, a.display_order,
       t.project_id, t.prompt_id, t.round, t.target_annotations, t.submitted_count,
       p.text, p.messages, p.html, p.render_version, p.html_digest
FROM annotation_assignment a
JOIN annotation_task t ON t.id = a.task_id
JOIN annotation_prompt p ON p.id = t.prompt_id
WHERE a.annotator_id = %(annotator)s AND t.project_id = %(project)s
  AND a.status = %(leased)s AND a.expires_at > %(now)s
ORDER BY a.leased_at
LIMIT 1"""

# A fresh statement, so it sees leases committed after the locking statement's snapshot.
_CANDIDATES_AND_LIVE_LEASES = f"""
SELECT c.id, c.text, c.source, c.position, c.html, c.render_version, c.html_digest,
       ({_LIVE_LEASES})
FROM annotation_candidate c
JOIN annotation_task t ON t.id = c.task_id
WHERE c.task_id = %(task)s
ORDER BY c.position"""

# The annotator's own expired lease is the only row that can conflict: renewed in place.
_LEASE_UPSERT = """
INSERT INTO annotation_assignment
    (created_at, updated_at, task_id, annotator_id, status, leased_at, expires_at, display_order)
VALUES (%(now)s, %(now)s, %(task)s, %(annotator)s, %(leased)s, %(now)s, %(expires)s, %(order)s)
ON CONFLICT (task_id, annotator_id) DO UPDATE SET
    status = excluded.status, leased_at = excluded.leased_at,
    expires_at = excluded.expires_at, display_order = excluded.display_order,
    updated_at = excluded.updated_at
RETURNING id"""

_PROGRESS = """
SELECT coalesce(sum(CASE WHEN a.status = %(submitted)s THEN 1 ELSE 0 END), 0),
       coalesce(sum(CASE WHEN a.status IN (%(submitted)s, %(skipped)s)
                          AND t.submitted_count < t.target_annotations THEN 1 ELSE 0 END), 0)
FROM annotation_assignment a
JOIN annotation_task t ON t.id = a.task_id
WHERE a.annotator_id = %(annotator)s AND t.project_id = %(project)s"""

# Everything a submit decides on, in one statement that also locks the task row.
_SUBMIT_STATE = """
SELECT t.id, t.project_id, t.target_annotations, t.submitted_count, pr.rationale,
       a.id, a.status, a.leased_at, a.expires_at, a.display_order, r.id, r.payload_hash
FROM annotation_task t
JOIN annotation_project pr ON pr.id = t.project_id
JOIN annotation_membership m ON m.project_id = t.project_id AND m.user_id = %(annotator)s
LEFT JOIN annotation_assignment a ON a.task_id = t.id AND a.annotator_id = %(annotator)s
LEFT JOIN annotation_ranking r ON r.assignment_id = a.id
WHERE t.id = %(task)s"""

_RANKING_INSERT = """
INSERT INTO annotation_ranking
    (created_at, updated_at, task_id, annotator_id, assignment_id, groups, display_order,
     rationale, all_bad, unsafe, time_spent_ms, payload_hash)
VALUES (%(now)s, %(now)s, %(task)s, %(annotator)s, %(assignment)s, %(groups)s, %(order)s,
        %(rationale)s, %(all_bad)s, %(unsafe)s, %(time_spent_ms)s, %(payload_hash)s)
RETURNING id"""

_ASSIGNMENT_SUBMITTED = """
UPDATE annotation_assignment SET status = %(submitted)s, updated_at = %(now)s
WHERE id = %(assignment)s"""

_TASK_COUNT_ONE_MORE = """
UPDATE annotation_task SET submitted_count = submitted_count + 1, updated_at = %(now)s
WHERE id = %(task)s"""


def _params(**values: Any) -> dict[str, Any]:
    """Named parameters with the status names and datetimes in the backend's storage form."""
    params: dict[str, Any] = {"leased": LEASED, "submitted": SUBMITTED, "skipped": SKIPPED}
    for name, value in values.items():
        if isinstance(value, datetime):
            value = connection.ops.adapt_datetimefield_value(value)
        params[name] = value
    return params


def _json_param(value: object) -> object:
    return connection.ops.adapt_json_value(value, None)


def _json(value: object) -> Any:
    # Both backends hand JSON columns back as text (Django loads PostgreSQL's jsonb as text too).
    return json.loads(value) if isinstance(value, str | bytes) else value


def _aware(value: datetime | str) -> datetime:
    # PostgreSQL returns aware datetimes; SQLite returns the stored naive UTC text or value.
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def _instance(model: type[ModelT], **values: Any) -> ModelT:
    """A model instance as the ORM would load it; fields not given are deferred."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, names, [values[n] for n in names])


def _fetchone(sql: str, params: dict[str, Any]) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _open_task_sql() -> str:
    # PostgreSQL turns NOT EXISTS into an anti-join, and merged it with every assignment of the
    # project below the first open task: 0.37 ms at 6 700 assignments, growing with the
    # project's history. OFFSET 0 keeps it a probe of the (task, annotator) unique index for
    # each task the walk visits: 0.06 ms (docs/bench-annotate.md). SQLite probes anyway (and
    # has no OFFSET without LIMIT).
    probe = "OFFSET 0" if connection.vendor == "postgresql" else ""
    return _OPEN_TASK.replace("{probe_each_task}", probe)


def _lock(sql: str, of: str, *, skip_locked: bool) -> str:
    # SQLite has no row locks: there BEGIN IMMEDIATE (settings) serialises writers instead.
    if not connection.features.has_select_for_update:
        return sql
    return f"{sql}\nFOR UPDATE OF {of}{' SKIP LOCKED' if skip_locked else ''}"


def _task_with_prompt(values: Sequence) -> Task:
    """A Task (its prompt attached) from (id, project, prompt, round, target, submitted, text,
    messages, html, render_version, html_digest)."""
    (
        task_id,
        project_id,
        prompt_id,
        round_,
        target,
        submitted,
        text,
        messages,
        html,
        version,
        digest,
    ) = values
    task = _instance(
        Task,
        id=task_id,
        project_id=project_id,
        prompt_id=prompt_id,
        round=round_,
        target_annotations=target,
        submitted_count=submitted,
    )
    task.prompt = _instance(
        Prompt,
        id=prompt_id,
        project_id=project_id,
        text=text,
        messages=_json(messages),
        html=_json(html),
        render_version=version,
        html_digest=digest,
    )
    return task


def held_lease(*, project_id: int, annotator_id: int, now: datetime) -> Assignment | None:
    """The live lease the annotator holds in the project (task and prompt attached)."""
    row = _fetchone(_HELD_LEASE, _params(project=project_id, annotator=annotator_id, now=now))
    if row is None:
        return None
    assignment_id, task_id, annotator, status, leased_at, expires_at, order, *task_row = row
    task = _task_with_prompt([task_id, *task_row])
    assignment = _instance(
        Assignment,
        id=assignment_id,
        task_id=task_id,
        annotator_id=annotator,
        status=status,
        leased_at=_aware(leased_at),
        expires_at=_aware(expires_at),
        display_order=_json(order),
    )
    assignment.task = task
    return assignment


def open_task_locked(
    *, project_id: int, annotator_id: int, now: datetime, skip_locked: bool
) -> Task | None:
    """Lock and return the next task for the annotator, passing rows others hold locked or
    waiting for them (`skip_locked`)."""
    sql = _lock(_open_task_sql(), of="t", skip_locked=skip_locked)
    row = _fetchone(sql, _params(project=project_id, annotator=annotator_id, now=now))
    return None if row is None else _task_with_prompt(row)


def candidates_and_live_leases(*, task_id: int, now: datetime) -> tuple[list[Candidate], int]:
    """The task's candidates by position, and its live leases counted by the same statement."""
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATES_AND_LIVE_LEASES, _params(task=task_id, now=now))
        rows = cursor.fetchall()
    candidates = [
        _instance(
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
    params = _params(
        task=task_id, annotator=annotator_id, now=now, expires=expires, order=_json_param(order)
    )
    (assignment_id,) = _fetchone(_LEASE_UPSERT, params)
    return _instance(
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


def progress_counts(*, project_id: int, annotator_id: int) -> tuple[int, int]:
    """(submitted, closed on tasks still unfilled): the annotator's own assignments only."""
    done, closed_unfilled = _fetchone(
        _PROGRESS, _params(project=project_id, annotator=annotator_id)
    )
    return int(done), int(closed_unfilled)


class SubmitState:
    """What `ranking_submit` decides on, read under the task's row lock."""

    __slots__ = (
        "task_id",
        "project_id",
        "target",
        "submitted_count",
        "rationale_rule",
        "assignment_id",
        "status",
        "leased_at",
        "expires_at",
        "display_order",
        "ranking_id",
        "ranking_hash",
    )

    def __init__(self, row: Sequence) -> None:
        (
            self.task_id,
            self.project_id,
            self.target,
            self.submitted_count,
            self.rationale_rule,
            self.assignment_id,
            self.status,
            leased_at,
            expires_at,
            order,
            self.ranking_id,
            self.ranking_hash,
        ) = row
        self.leased_at = _aware(leased_at) if leased_at is not None else None
        self.expires_at = _aware(expires_at) if expires_at is not None else None
        self.display_order = _json(order) if order is not None else None


def submit_state_locked(*, task_id: int, annotator_id: int) -> SubmitState | None:
    """None when the task is not in one of the annotator's projects."""
    sql = _lock(_SUBMIT_STATE, of="t", skip_locked=False)
    row = _fetchone(sql, _params(task=task_id, annotator=annotator_id))
    return None if row is None else SubmitState(row)


def ranking_store(
    *,
    state: SubmitState,
    annotator_id: int,
    groups: list[list[int]],
    rationale: str,
    flags: Sequence[str],
    payload_hash: str,
    now: datetime,
) -> Ranking:
    """Insert the ranking, close the assignment, count one more ranking on the task."""
    time_spent_ms = max(0, int((now - state.leased_at).total_seconds() * 1000))
    values = {
        "task_id": state.task_id,
        "annotator_id": annotator_id,
        "assignment_id": state.assignment_id,
        "groups": groups,
        "display_order": state.display_order,
        "rationale": rationale,
        "all_bad": "all_bad" in flags,
        "unsafe": "unsafe" in flags,
        "time_spent_ms": time_spent_ms,
        "payload_hash": payload_hash,
    }
    params = _params(
        now=now,
        task=state.task_id,
        annotator=annotator_id,
        assignment=state.assignment_id,
        groups=_json_param(groups),
        order=_json_param(state.display_order),
        rationale=rationale,
        all_bad=values["all_bad"],
        unsafe=values["unsafe"],
        time_spent_ms=time_spent_ms,
        payload_hash=payload_hash,
    )
    with connection.cursor() as cursor:
        cursor.execute(_RANKING_INSERT, params)
        (ranking_id,) = cursor.fetchone()
        cursor.execute(_ASSIGNMENT_SUBMITTED, params)
        cursor.execute(_TASK_COUNT_ONE_MORE, params)
    return _instance(Ranking, id=ranking_id, created_at=now, updated_at=now, **values)
