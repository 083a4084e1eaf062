from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from feedback_app.annotation import handout, services, submit
from feedback_app.annotation.models import Assignment
from feedback_app.common.errors import NotAllowed

pytestmark = pytest.mark.django_db


def rank_all(assignment, annotator, **kw):
    """Submit the display order as the ranking (first shown is best)."""
    return submit.ranking_submit(
        task_id=assignment.task_id,
        annotator=annotator,
        groups=[[i] for i in assignment.display_order],
        **kw,
    )


def test_reloading_returns_the_same_leased_task(make_project, alice):
    project = make_project(annotators=[alice])
    first = handout.task_assign_next(project=project, annotator=alice)
    again = handout.task_assign_next(project=project, annotator=alice)
    assert first.pk == again.pk and first.task_id == again.task_id
    assert again.display_order == first.display_order


def test_an_annotator_never_gets_a_task_twice(make_project, alice):
    project = make_project(n_tasks=3, annotators=[alice])
    seen = []
    while (a := handout.task_assign_next(project=project, annotator=alice)) is not None:
        seen.append(a.task_id)
        rank_all(a, alice)
    assert len(seen) == 3 and len(set(seen)) == 3


def test_a_task_is_not_handed_out_beyond_its_target_counting_live_leases(make_project, make_user):
    users = [make_user(f"u{i}") for i in range(3)]
    project = make_project(n_tasks=1, overlap=2, annotators=users)
    a0 = handout.task_assign_next(project=project, annotator=users[0])
    a1 = handout.task_assign_next(project=project, annotator=users[1])
    assert a0.task_id == a1.task_id
    assert handout.task_assign_next(project=project, annotator=users[2]) is None


def test_an_expired_lease_returns_its_task_to_the_pool(make_project, make_user):
    users = [make_user(f"u{i}") for i in range(2)]
    project = make_project(n_tasks=1, overlap=1, annotators=users)
    handout.task_assign_next(project=project, annotator=users[0])
    assert handout.task_assign_next(project=project, annotator=users[1]) is None
    later = timezone.now() + timedelta(seconds=settings.ANNOTATION_LEASE_SECONDS + 1)
    taken = handout.task_assign_next(project=project, annotator=users[1], now=later)
    assert taken is not None


def test_a_skipped_task_is_not_offered_again(make_project, alice):
    project = make_project(n_tasks=2, annotators=[alice])
    first = handout.task_assign_next(project=project, annotator=alice)
    services.task_skip(task_id=first.task_id, annotator=alice)
    second = handout.task_assign_next(project=project, annotator=alice)
    assert second.task_id != first.task_id
    services.task_skip(task_id=second.task_id, annotator=alice)
    assert handout.task_assign_next(project=project, annotator=alice) is None
    assert Assignment.objects.filter(annotator=alice, status="skipped").count() == 2


def test_a_skip_frees_the_slot_for_someone_else(make_project, make_user):
    users = [make_user(f"u{i}") for i in range(2)]
    project = make_project(n_tasks=1, overlap=1, annotators=users)
    held = handout.task_assign_next(project=project, annotator=users[0])
    services.task_skip(task_id=held.task_id, annotator=users[0])
    assert handout.task_assign_next(project=project, annotator=users[1]).task_id == held.task_id


def test_tasks_are_only_handed_out_to_members_of_their_project(make_project, alice, bob):
    mine = make_project(name="A", annotators=[alice])
    make_project(name="B", annotators=[bob])
    assignment = handout.task_assign_next(project=mine, annotator=alice)
    assert assignment.task.project_id == mine.pk


def test_the_handout_refuses_a_non_member_even_when_tasks_are_open(make_project, alice, bob):
    project = make_project(annotators=[alice])
    with pytest.raises(NotAllowed, match="only members"):
        handout.task_assign_next(project=project, annotator=bob)
    assert not Assignment.objects.exists()


def test_a_lease_held_by_a_former_member_is_not_handed_back(make_project, alice):
    project = make_project(annotators=[alice])
    handout.task_assign_next(project=project, annotator=alice)
    project.memberships.filter(user=alice).delete()
    with pytest.raises(NotAllowed):
        handout.task_assign_next(project=project, annotator=alice)


def test_a_member_with_nothing_left_gets_none_not_an_error(make_project, alice):
    project = make_project(n_tasks=1, annotators=[alice])
    services.task_skip(
        task_id=handout.task_assign_next(project=project, annotator=alice).task_id,
        annotator=alice,
    )
    assert handout.task_assign_next(project=project, annotator=alice) is None


def test_a_non_member_cannot_skip_a_task(make_project, alice, bob):
    project = make_project(annotators=[alice])
    task = project.tasks.first()
    with pytest.raises(NotAllowed):
        services.task_skip(task_id=task.pk, annotator=bob)


def test_tasks_are_handed_out_oldest_first(make_project, alice):
    project = make_project(n_tasks=3, annotators=[alice])
    first = handout.task_assign_next(project=project, annotator=alice)
    assert first.task_id == project.tasks.order_by("id").first().pk


@pytest.mark.postgres  # a PostgreSQL plan
def test_handout_plan_probes_each_visited_task_instead_of_scanning_all_assignments(
    make_project, alice
):
    """As an anti-join, the annotator filter merged against every assignment of the project."""
    project = make_project(n_tasks=3, annotators=[alice])
    sql_text = handout.open_task_sql()
    params = handout.lease_params(project=project.pk, annotator=alice.pk, now=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a 3-task table would be read whole
        cursor.execute(f"EXPLAIN {sql_text}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "Anti Join" not in plan and "task_unfilled_by_project" in plan, plan
