"""Many annotators at once against one project: PostgreSQL's row locks, SQLite's write lock.

`make test` runs this file on PostgreSQL (CI's DATABASE_URL) and again on SQLite.
"""

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connections, transaction
from django.utils import timezone

from feedback_app.annotation import handout, services, submit
from feedback_app.annotation.models import Assignment, Ranking, Task

from . import handout_spec

ANNOTATORS = 16
TASKS = 30
WANTED = 3


@pytest.mark.django_db(transaction=True)
def test_sixteen_parallel_annotators_fill_every_task_exactly_to_target(make_project, make_user):
    users = [make_user(f"par-{i}") for i in range(ANNOTATORS)]
    project = make_project(n_tasks=TASKS, k=3, overlap=WANTED, annotators=users)
    accepted: list[tuple[int, int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(ANNOTATORS)

    def next_task(user):
        # "Nothing for you now" is final only when no one else holds a lease: a lease that is
        # then skipped gives its slot back to whoever has not seen the task.
        give_up = time.monotonic() + 30  # leases of crashed threads would never end
        while (a := handout.task_assign_next(project=project, annotator=user)) is None:
            if (
                time.monotonic() > give_up
                or not Assignment.objects.filter(
                    handout_spec.live(timezone.now()), task__project=project
                ).exists()
            ):
                return None
            time.sleep(0.01)
        return a

    def annotate(user):
        rng = random.Random(user.pk)
        try:
            start.wait()
            while (a := next_task(user)) is not None:
                if rng.random() < 0.1:
                    services.task_skip(task_id=a.task_id, annotator=user)
                    continue
                order = list(a.display_order)
                rng.shuffle(order)
                result = submit.ranking_submit(
                    task_id=a.task_id, annotator=user, groups=[[i] for i in order]
                )
                with lock:
                    accepted.append((a.task_id, user.pk, result.ranking.pk))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=annotate, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    per_task = Counter(Ranking.objects.values_list("task_id", flat=True))
    assert set(per_task.values()) == {WANTED} and len(per_task) == TASKS
    pairs = list(Ranking.objects.values_list("task_id", "annotator_id"))
    assert len(pairs) == len(set(pairs)), "an annotator ranked a task twice"
    stored = set(Ranking.objects.values_list("pk", flat=True))
    assert {r for _, _, r in accepted} == stored and len(accepted) == len(stored)
    assert all(t.submitted_count == WANTED for t in Task.objects.filter(project=project))


@pytest.mark.django_db(transaction=True)
def test_a_task_locked_for_a_moment_is_waited_for_not_reported_as_nothing_left(make_project, alice):
    project = make_project(n_tasks=1, k=2, annotators=[alice])
    task = Task.objects.get(project=project)
    locked = threading.Event()

    def someone_else_holds_the_task_briefly():
        try:
            with transaction.atomic():
                Task.objects.select_for_update().get(pk=task.pk)
                locked.set()
                time.sleep(0.5)
        finally:
            connections.close_all()

    other = threading.Thread(target=someone_else_holds_the_task_briefly)
    other.start()
    assert locked.wait(10)
    assignment = handout.task_assign_next(project=project, annotator=alice)
    other.join(timeout=30)
    assert assignment is not None and assignment.task_id == task.pk
