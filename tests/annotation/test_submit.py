from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from feedback_app.annotation import handout, services, submit
from feedback_app.annotation.models import Ranking, Task
from feedback_app.common.errors import Conflict, InvalidInput, NotAllowed

pytestmark = pytest.mark.django_db


def groups_of(assignment):
    return [[i] for i in assignment.display_order]


def test_submit_stores_groups_display_order_flags_and_time(make_project, alice):
    project = make_project(annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    ids = a.display_order
    result = submit.ranking_submit(
        task_id=a.task_id,
        annotator=alice,
        groups=[[ids[2]], [ids[0], ids[1]]],
        rationale="C is right",
        flags=["unsafe"],
        now=a.leased_at + timedelta(seconds=7),
    )
    r = Ranking.objects.get()
    assert result.created and result.ranking.pk == r.pk
    assert r.groups == [[ids[2]], sorted([ids[0], ids[1]])]
    assert r.display_order == ids
    assert (r.rationale, r.unsafe, r.all_bad, r.time_spent_ms) == ("C is right", True, False, 7000)
    assert Task.objects.get(pk=a.task_id).submitted_count == 1


def test_submitting_the_same_ranking_twice_stores_one_and_answers_the_same(make_project, alice):
    project = make_project(annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    first = submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=groups_of(a))
    again = submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=groups_of(a))
    assert first.created and not again.created
    assert again.ranking.pk == first.ranking.pk
    assert Ranking.objects.count() == 1
    assert Task.objects.get(pk=a.task_id).submitted_count == 1


def test_a_different_second_ranking_is_refused(make_project, alice):
    project = make_project(annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=groups_of(a))
    with pytest.raises(Conflict, match="already ranked"):
        submit.ranking_submit(
            task_id=a.task_id, annotator=alice, groups=list(reversed(groups_of(a)))
        )
    assert Ranking.objects.count() == 1


def test_an_invalid_ranking_stores_nothing(make_project, alice):
    project = make_project(annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    with pytest.raises(InvalidInput):
        submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=groups_of(a)[:-1])
    assert Ranking.objects.count() == 0
    assert Task.objects.get(pk=a.task_id).submitted_count == 0


def test_a_task_not_handed_to_the_annotator_cannot_be_ranked(make_project, alice, bob):
    project = make_project(annotators=[alice, bob])
    a = handout.task_assign_next(project=project, annotator=alice)
    with pytest.raises(Conflict, match="not handed to you"):
        submit.ranking_submit(task_id=a.task_id, annotator=bob, groups=groups_of(a))


def test_a_task_of_another_project_cannot_be_ranked(make_project, alice, bob):
    theirs = make_project(name="B", annotators=[bob])
    make_project(name="A", annotators=[alice])
    a = handout.task_assign_next(project=theirs, annotator=bob)
    with pytest.raises(NotAllowed) as err:
        submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=groups_of(a))
    assert err.value.field == "task"


def test_required_rationale_is_enforced(make_project, alice):
    project = make_project(annotators=[alice], rationale="required")
    a = handout.task_assign_next(project=project, annotator=alice)
    with pytest.raises(InvalidInput) as err:
        submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=groups_of(a))
    assert err.value.field == "rationale"


def test_a_late_submit_is_accepted_while_the_slot_is_still_free(make_project, alice):
    project = make_project(n_tasks=1, overlap=1, annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    late = a.expires_at + timedelta(seconds=1)
    result = submit.ranking_submit(
        task_id=a.task_id, annotator=alice, groups=groups_of(a), now=late
    )
    assert result.created


def test_a_late_submit_is_refused_once_others_filled_the_task(make_project, alice, bob):
    project = make_project(n_tasks=1, overlap=1, annotators=[alice, bob])
    a = handout.task_assign_next(project=project, annotator=alice)
    later = timezone.now() + timedelta(seconds=settings.ANNOTATION_LEASE_SECONDS + 1)
    b = handout.task_assign_next(project=project, annotator=bob, now=later)
    submit.ranking_submit(task_id=b.task_id, annotator=bob, groups=groups_of(b), now=later)
    with pytest.raises(Conflict, match="lease ran out"):
        submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=groups_of(a), now=later)
    assert Task.objects.get().submitted_count == 1


def test_a_skipped_task_cannot_then_be_ranked(make_project, alice):
    project = make_project(annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    services.task_skip(task_id=a.task_id, annotator=alice)
    with pytest.raises(Conflict, match="skipped"):
        submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=groups_of(a))
