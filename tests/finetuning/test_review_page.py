"""The review queue's page: an admin sees the stored queue and answers it from there."""

from __future__ import annotations

import pytest
from django.urls import reverse

from feedback_app.annotation import handout, submit
from feedback_app.annotation.models import Candidate, Ranking
from feedback_app.core.models import Membership, ModelVersion
from feedback_app.preferences.models import MoreVotesRequest, RankingDrop
from feedback_app.preferences.quality.review import Disagreement
from feedback_app.preferences.review import review_queue_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(make_project, alice):
    project = make_project(k=2, overlap=1, n_tasks=1, annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    ranking = submit.ranking_submit(
        task_id=a.task_id, annotator=alice, groups=[[i] for i in a.display_order]
    ).ranking
    chosen, rejected = (Candidate.objects.get(pk=g[0]) for g in ranking.groups)
    rm = ModelVersion.objects.create(project=project, kind="reward", name="rm", weights="x")
    review_queue_store(
        project=project,
        model_version=rm,
        items=[Disagreement(a.task_id, chosen.pk, rejected.pk, 1, 0, 0, 2.5)],
    )
    return project, ranking, rejected


def test_an_admin_sees_the_queue_and_asks_for_more_votes_and_drops_a_ranking(
    client, make_user, queued
):
    project, ranking, rejected = queued
    client.force_login(make_user("root", is_staff=True))
    url = reverse("finetuning:review", args=[project.pk])
    body = client.get(url).content.decode()
    assert rejected.text in body and "2.50" in body
    response = client.post(url, {"action": "more_votes", "task": ranking.task_id, "reason": "1-0"})
    assert response.status_code == 302
    assert MoreVotesRequest.objects.get().target_after == 2
    client.post(url, {"action": "drop", "ranking": ranking.pk, "reason": "careless"})
    assert RankingDrop.objects.get().ranking == ranking and Ranking.objects.filter(pk=ranking.pk)
    assert "dropped" in client.get(url).content.decode()
    bad = client.post(url, {"action": "drop", "ranking": "x"})
    assert bad.status_code == 400


def test_the_review_page_is_for_project_admins_only(client, alice, queued):
    project, ranking, _ = queued
    client.force_login(alice)
    url = reverse("finetuning:review", args=[project.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "drop", "ranking": ranking.pk}).status_code == 404
    assert not RankingDrop.objects.exists()
    Membership.objects.filter(user=alice).update(role=Membership.Role.ADMIN)
    assert client.get(url).status_code == 200


def test_the_page_says_when_the_queue_was_last_scored_and_what_it_found(client, make_user, queued):
    from datetime import timedelta

    from django.utils import timezone

    from feedback_app.core.models import Job

    project, _, _ = queued
    client.force_login(make_user("root", is_staff=True))
    url = reverse("finetuning:review", args=[project.pk])
    assert "Never scored yet." in client.get(url).content.decode()

    done = Job.objects.create(
        project=project, kind="review_scores", status="succeeded",
        finished_at=timezone.now() - timedelta(hours=2),
        outputs={"reward": 1, "scored": 16, "tasks": 8, "queue": 1},
    )  # fmt: skip
    body = client.get(url).content.decode()
    assert "Last scored 2\xa0hours ago" in body and f"job {done.pk}</a>" in body
    assert "16 candidates of 8 tasks, 1 confident disagreement found." in body

    now = timezone.now()
    running = Job.objects.create(
        project=project, kind="review_scores", status="running", progress=0.5,
        started_at=now - timedelta(seconds=60), heartbeat_at=now,
    )  # fmt: skip
    body = client.get(url).content.decode()
    assert f'Being scored now (<a href="/jobs/{running.pk}/">job {running.pk}</a>, running' in body
    assert "about 1 min left" in body
