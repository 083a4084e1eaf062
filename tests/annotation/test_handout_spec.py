"""The SQL hand-out and submit do exactly what the ORM specification (handout_spec.py) allows.

Hypothesis drives random histories (projects of 1-4 tasks wanting 1-3 rankings, fixed or
adaptive overlap up to 2-4, members and a non-member, some tasks gold and a gold rate,
hand-outs, submits of the order shown or another, skips, a clock that jumps past leases,
judges' graded triage priorities on the tasks with the project's triage on or off)
through the services; before each step the specification, evaluated on the same rows, says
what must happen, and after each submit what the task then wants. Runs on both backends (the
suite's SQLite and PostgreSQL passes).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from feedback_app.annotation import handout, services, submit
from feedback_app.annotation.gold import task_gold_set
from feedback_app.annotation.models import Assignment, Task
from feedback_app.common.errors import Conflict, NotAllowed

from . import handout_spec as spec

pytestmark = pytest.mark.django_db

LEASE = settings.ANNOTATION_LEASE_SECONDS

# (kind, annotator index, task index, reversed order?, seconds the clock moves first)
steps = st.tuples(
    st.sampled_from(["next", "next", "submit", "submit", "skip"]),
    st.integers(0, 3),  # 3 is not a member
    st.integers(0, 3),
    st.booleans(),
    st.sampled_from([0, 0, 0, 1, LEASE // 2, LEASE + 1]),
)


@pytest.fixture
def users(make_user):
    """Made once for all examples (a password hash costs more than an example)."""
    return [make_user(f"spec{i}") for i in range(4)]


class _Rollback(Exception):
    pass


def _submit_outcome(task_id, user, groups, now) -> str:
    try:
        result = submit.ranking_submit(task_id=task_id, annotator=user, groups=groups, now=now)
    except NotAllowed:
        return "not_allowed"
    except Conflict:
        return "conflict"
    return "created" if result.created else "repeat"


def _groups(task, user, reverse: bool) -> list[list[int]]:
    """The order shown (or its reverse) when the task was handed to `user`, else any order."""
    shown = (
        Assignment.objects.filter(task=task, annotator=user)
        .values_list("display_order", flat=True)
        .first()
    )
    ids = shown or sorted(task.candidates.values_list("pk", flat=True))
    return [[i] for i in (reversed(ids) if reverse else ids)]


@hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n_tasks=st.integers(1, 4),
    overlap=st.integers(1, 3),
    history=st.lists(steps, min_size=1, max_size=20),
    gold=st.lists(st.booleans(), min_size=4, max_size=4),
    gold_rate=st.sampled_from([0.0, 0.0, 0.5, 1.0]),
    max_votes=st.sampled_from([0, 0, 2, 3, 4]),
    triage=st.booleans(),
    unsure=st.lists(st.sampled_from([0, 0, 1, 33, 100, 1017]), min_size=4, max_size=4),
)
def test_sql_handout_and_submit_do_exactly_what_the_specification_allows(
    make_project, users, n_tasks, overlap, history, gold, gold_rate, max_votes, triage, unsure
):
    try:
        with transaction.atomic():  # each example starts with no project, rolled back after
            project = make_project(
                name="spec", k=2, overlap=overlap, n_tasks=n_tasks, annotators=users[:3]
            )
            tasks = list(project.tasks.order_by("id"))
            project.gold_rate = gold_rate
            project.annotations_max = max_votes  # adaptive overlap when above `overlap`
            project.judge_triage = triage  # AI judges' doubts (`unsure`) first
            project.save(update_fields=["gold_rate", "annotations_max", "judge_triage"])
            for task, level in zip(tasks, unsure, strict=False):
                Task.objects.filter(pk=task.pk).update(judge_unsure=level)
            for task, is_gold in zip(tasks, gold, strict=False):
                if is_gold:
                    ids = sorted(task.candidates.values_list("pk", flat=True))
                    task_gold_set(project=project, task_id=task.pk, groups=[[i] for i in ids])
            tasks = list(project.tasks.order_by("id"))
            now = timezone.now()
            for kind, who, which, reverse, wait in history:
                now += timedelta(seconds=wait)
                user, task = users[who], tasks[which % len(tasks)]
                if kind == "next":
                    expected = spec.task_to_hand_out(project, user, now)
                    try:
                        got = handout.task_assign_next(project=project, annotator=user, now=now)
                    except NotAllowed:
                        got = "not_allowed"
                    else:
                        got = got and got.task
                    assert got == expected, (kind, who, history)
                elif kind == "submit":
                    groups = _groups(task, user, reverse)
                    expected = spec.submit_outcome(task.pk, user, groups, now)
                    task.refresh_from_db()
                    target_before = task.target_annotations
                    assert _submit_outcome(task.pk, user, groups, now) == expected, (
                        kind,
                        who,
                        history,
                    )
                    task.refresh_from_db()
                    if expected == "created":
                        want = spec.target_after_submit(task, target_before, max_votes)
                    else:
                        want = target_before
                    assert task.target_annotations == want, ("target", who, history)
                else:
                    with contextlib.suppress(NotAllowed, Conflict):
                        services.task_skip(task_id=task.pk, annotator=user)
            raise _Rollback
    except _Rollback:
        pass
