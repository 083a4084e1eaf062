"""Many annotators at once against one project: PostgreSQL's row locks, SQLite's write lock.

`make test` runs this file on PostgreSQL (CI's DATABASE_URL) and again on SQLite.
"""

import random
import threading
from collections import Counter

import pytest
from django.db import connections

from feedback_app.annotation import services
from feedback_app.annotation.models import Ranking, Task

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

    def annotate(user):
        rng = random.Random(user.pk)
        try:
            start.wait()
            while (a := services.task_assign_next(project=project, annotator=user)) is not None:
                if rng.random() < 0.1:
                    services.task_skip(task_id=a.task_id, annotator=user)
                    continue
                order = list(a.display_order)
                rng.shuffle(order)
                result = services.ranking_submit(
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
