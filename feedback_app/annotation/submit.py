"""The submit's statements and rules: what a submit reads under the task's lock, and what it
stores (time spent measured on the server, the flags as columns, one more ranking counted).

Plain SQL on the hot path, as annotation/handout.py explains; `ranking_submit` at the end
decides, the statements above read and write: a submit walks view -> `ranking_submit` -> view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from feedback_app.common.db import (
    aware,
    fetchone,
    for_update,
    instance,
    json_param,
    json_value,
    table,
)
from feedback_app.common.errors import Conflict, NotAllowed, Problem
from feedback_app.core.access import member_sql
from feedback_app.core.models import Project

from . import quality_refresh, selectors
from .handout import lease_params, live_leases_of_task_sql
from .models import Assignment, Ranking, Task
from .rankings import (
    FLAGS,  # each flag is the boolean column of Ranking of the same name
    check_flags,
    check_ranking,
    check_rationale,
    payload_hash,
)


def top_key(groups: list[list[int]]) -> str:
    """The ranking's top group as adaptive overlap compares it: its candidate ids, sorted.

    >>> top_key([[9, 3], [4]])
    '3,9'
    """
    return ",".join(str(c) for c in sorted(groups[0])) if groups else ""


def time_spent_ms(*, leased_at: datetime, now: datetime) -> int:
    """Time spent on a ranking: from the lease to the submit, measured here, never sent."""
    return max(0, int((now - leased_at).total_seconds() * 1000))


@cache
def _submit_state_sql() -> str:
    """Everything a submit decides on, in one statement that also locks the task row; no row
    unless the annotator is a member of the task's project."""
    return f"""
SELECT t.id, t.project_id, t.target_annotations, t.submitted_count, pr.rationale,
       a.id, a.status, a.leased_at, a.expires_at, a.display_order, r.id, r.payload_hash,
       CASE WHEN t.gold IS NULL THEN 0 ELSE 1 END, pr.archived, pr.annotations_max
FROM {table(Task)} t
JOIN {table(Project)} pr ON pr.id = t.project_id
LEFT JOIN {table(Assignment)} a ON a.task_id = t.id AND a.annotator_id = %(annotator)s
LEFT JOIN {table(Ranking)} r ON r.assignment_id = a.id
WHERE t.id = %(task)s AND {member_sql(project="t.project_id", user="%(annotator)s")}"""


@cache
def _slots_taken_sql() -> str:
    return f"""
SELECT t.submitted_count + {live_leases_of_task_sql("t.id")}
FROM {table(Task)} t WHERE t.id = %(task)s"""


@cache
def _store_sql() -> tuple[str, str, str]:
    """Insert the ranking, close the assignment, count one more ranking on the task."""
    insert = f"""
INSERT INTO {table(Ranking)}
    (created_at, updated_at, task_id, annotator_id, assignment_id, groups, display_order,
     rationale, all_bad, unsafe, time_spent_ms, payload_hash)
VALUES (%(now)s, %(now)s, %(task)s, %(annotator)s, %(assignment)s, %(groups)s, %(order)s,
        %(rationale)s, %(all_bad)s, %(unsafe)s, %(time_spent_ms)s, %(payload_hash)s)
RETURNING id"""
    submitted = f"""
UPDATE {table(Assignment)} SET status = %(submitted)s, updated_at = %(now)s
WHERE id = %(assignment)s"""
    # A gold task takes no slot: its rankings are not counted (models.Task.gold).
    # Adaptive overlap, in the same statement (every right-hand side reads the row before the
    # update): the first ranking's top group is kept; a later one with another top group
    # splits the task; a split task that this ranking fills asks for one more, up to the
    # project's annotations_max (0: fixed overlap). The hand-out reads target_annotations only.
    split = "(top_split OR (first_top <> '' AND first_top <> %(top)s))"
    one_more = f"""
UPDATE {table(Task)} SET submitted_count = submitted_count + 1, updated_at = %(now)s,
    first_top = CASE WHEN first_top = '' THEN %(top)s ELSE first_top END,
    top_split = {split},
    target_annotations = CASE
        WHEN {split} AND submitted_count + 1 >= target_annotations
             AND target_annotations < %(max_votes)s
        THEN target_annotations + 1 ELSE target_annotations END
WHERE id = %(task)s AND gold IS NULL
RETURNING target_annotations"""
    return insert, submitted, one_more


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
        "gold",
        "archived",
        "max_votes",
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
            gold,
            archived,
            self.max_votes,
        ) = row
        self.gold = bool(gold)
        self.archived = bool(archived)
        self.leased_at = aware(leased_at) if leased_at is not None else None
        self.expires_at = aware(expires_at) if expires_at is not None else None
        self.display_order = json_value(order) if order is not None else None


def submit_state_locked(*, task_id: int, annotator_id: int) -> SubmitState | None:
    """None when the task is not in one of the annotator's projects (membership included)."""
    sql = for_update(_submit_state_sql(), of="t")
    row = fetchone(sql, lease_params(task=task_id, annotator=annotator_id))
    return None if row is None else SubmitState(row)


def slots_taken(*, task_id: int, now: datetime) -> int:
    """Submitted rankings plus live leases, read fresh (the caller holds the task's lock)."""
    (taken,) = fetchone(_slots_taken_sql(), lease_params(task=task_id, now=now))
    return int(taken)


def ranking_store(
    *,
    state: SubmitState,
    annotator_id: int,
    groups: list[list[int]],
    rationale: str,
    flags: Sequence[str],
    payload_hash: str,
    now: datetime,
) -> tuple[Ranking, bool]:
    """Insert the ranking, close the assignment, count one more ranking on the task; and
    whether that raised the task's target (a split: the caller forgets the unfilled count)."""
    flag_values = {name: name in flags for name in FLAGS}
    values = {
        "task_id": state.task_id,
        "annotator_id": annotator_id,
        "assignment_id": state.assignment_id,
        "groups": groups,
        "display_order": state.display_order,
        "rationale": rationale,
        **flag_values,
        "time_spent_ms": time_spent_ms(leased_at=state.leased_at, now=now),
        "payload_hash": payload_hash,
    }
    params = lease_params(
        now=now,
        task=state.task_id,
        annotator=annotator_id,
        assignment=state.assignment_id,
        groups=json_param(groups),
        order=json_param(state.display_order),
        rationale=rationale,
        time_spent_ms=values["time_spent_ms"],
        payload_hash=payload_hash,
        top=top_key(groups),
        max_votes=state.max_votes,
        **flag_values,
    )
    insert, submitted, one_more = _store_sql()
    with connection.cursor() as cursor:
        cursor.execute(insert, params)
        (ranking_id,) = cursor.fetchone()
        cursor.execute(submitted, params)
        cursor.execute(one_more, params)
        counted = cursor.fetchone()  # None for a gold task: its rankings take no slot
    raised = counted is not None and counted[0] > state.target
    return instance(Ranking, id=ranking_id, created_at=now, updated_at=now, **values), raised


# --- the workflow: the rules over the statements above ---------------------------------------


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
        state = submit_state_locked(task_id=task_id, annotator_id=annotator.pk)
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
            taken = slots_taken(task_id=task_id, now=now)
            if taken >= state.target:
                raise Conflict(Problem("task", "your lease ran out and others completed this task"))
        ranking, target_raised = ranking_store(
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
