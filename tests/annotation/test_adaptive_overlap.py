"""Adaptive overlap: a task asks for another ranking only while its rankings' top choices differ,
up to the project's annotations_max; agreeing tasks stop at annotations_per_task. The rule is the
submit's one UPDATE (annotation/submit.py); the hand-out is unchanged. The differential test
(test_handout_spec.py) holds it to the specification on random histories."""

from __future__ import annotations

import pytest

from feedback_app.annotation import handout, submit
from feedback_app.annotation.models import Task

pytestmark = pytest.mark.django_db


def _rank(project, user, *, best_last: bool) -> int | None:
    a = handout.task_assign_next(project=project, annotator=user)
    if a is None:
        return None
    ids = sorted(a.display_order)
    order = list(reversed(ids)) if best_last else ids
    submit.ranking_submit(task_id=a.task_id, annotator=user, groups=[[i] for i in order])
    return a.task_id


@pytest.fixture
def five(make_user):
    return [make_user(f"v{i}") for i in range(5)]


def _project(make_project, users, *, most: int):
    project = make_project(name="adaptive", k=3, overlap=2, n_tasks=1, annotators=users)
    project.annotations_max = most
    project.save(update_fields=["annotations_max"])
    return project


def test_agreeing_rankings_stop_at_the_minimum(make_project, five):
    project = _project(make_project, five, most=4)
    assert [_rank(project, u, best_last=False) for u in five[:3]][2] is None
    task = Task.objects.get(project=project)
    assert (task.submitted_count, task.target_annotations, task.top_split) == (2, 2, False)


def test_split_top_choices_ask_for_one_more_ranking_at_a_time_up_to_the_maximum(make_project, five):
    project = _project(make_project, five, most=4)
    task = Task.objects.get(project=project)
    _rank(project, five[0], best_last=False)
    _rank(project, five[1], best_last=True)  # another top choice: the task wants a third
    task.refresh_from_db()
    assert (task.submitted_count, task.target_annotations, task.top_split) == (2, 3, True)
    assert _rank(project, five[2], best_last=False) == task.pk
    assert _rank(project, five[3], best_last=False) == task.pk
    assert _rank(project, five[4], best_last=False) is None  # four is the most
    task.refresh_from_db()
    assert (task.submitted_count, task.target_annotations) == (4, 4)


def test_with_fixed_overlap_a_split_task_still_stops_at_the_minimum(make_project, five):
    project = _project(make_project, five, most=0)
    _rank(project, five[0], best_last=False)
    _rank(project, five[1], best_last=True)
    assert _rank(project, five[2], best_last=False) is None
    task = Task.objects.get(project=project)
    assert (task.submitted_count, task.target_annotations, task.top_split) == (2, 2, True)


def _cached(project, value: int) -> None:
    """The project's count as a page cached it earlier (shared cache; no in-process copy)."""
    from django.core.cache import cache

    from feedback_app.annotation import selectors

    selectors._in_process.clear()
    cache.set(selectors._unfilled_key(project), value, 60)


def test_a_split_that_raises_the_target_clears_the_cached_unfilled_count(
    make_project, five, django_capture_on_commit_callbacks
):
    """The target rose, so the count is not "at most a little too high" any more: the next
    read counts again. A ranking that raises nothing leaves the cache be (no extra query)."""
    from feedback_app.annotation.selectors import unfilled_task_count

    project = _project(make_project, five, most=4)
    with django_capture_on_commit_callbacks(execute=True):
        _rank(project, five[0], best_last=False)
    _cached(project, 7)  # a value only a read before this ranking could have left
    with django_capture_on_commit_callbacks(execute=True):
        _rank(project, five[1], best_last=False)  # agrees: the task is filled, target kept
    assert unfilled_task_count(project) == 7
    task = Task.objects.get(project=project)
    task.submitted_count, task.target_annotations = 1, 2  # back to one ranking, to split it
    task.save(update_fields=["submitted_count", "target_annotations"])
    _cached(project, 0)
    with django_capture_on_commit_callbacks(execute=True):
        _rank(project, five[2], best_last=True)  # another top choice: the target rises
    task.refresh_from_db()
    assert (task.submitted_count, task.target_annotations) == (2, 3)
    assert unfilled_task_count(project) == 1
