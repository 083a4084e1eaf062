"""The review queue's API: the stored queue, more votes on a task, a ranking dropped (recorded,
kept, and left out of snapshot and export alike)."""

from __future__ import annotations

import pytest

from feedback_app.annotation.models import Candidate, Ranking, Task
from feedback_app.core.models import ModelVersion
from feedback_app.preferences.models import MoreVotesRequest, RankingDrop
from feedback_app.preferences.quality.review import Disagreement
from feedback_app.preferences.review import review_queue_store

pytestmark = pytest.mark.django_db


def _url(world, tail=""):
    return f"/api/v1/projects/{world.project_a.pk}/review/{tail}"


def test_the_queue_lists_the_stored_disagreements_most_confident_first(world):
    task = world.ranking_a.task
    a, b, c = Candidate.objects.filter(task=task).order_by("position")
    rm = ModelVersion.objects.create(project=world.project_a, kind="reward", name="rm", weights="x")
    review_queue_store(
        project=world.project_a,
        model_version=rm,
        items=[
            Disagreement(task.pk, a.pk, b.pk, 2, 0, 0, 1.5),
            Disagreement(task.pk, a.pk, c.pk, 1, 0, 1, 3.0),
        ],
    )
    body = world.client("dave").get(_url(world)).json()
    assert body["count"] == 2
    assert [(r["rejected"], r["margin"]) for r in body["results"]] == [(c.pk, 3.0), (b.pk, 1.5)]
    assert (
        body["results"][0]["chosen_text"] == a.text and body["results"][0]["reward_model"] == rm.pk
    )
    assert world.client("dave").get(_url(world) + "?limit=1").json()["count"] == 2
    assert len(world.client("dave").get(_url(world) + "?limit=1").json()["results"]) == 1
    bad = world.client("dave").get(_url(world) + "?limit=0")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "limit"


def test_asking_for_more_votes_raises_the_rankings_wanted_by_one_and_records_it(world):
    task = world.ranking_a.task
    before = task.target_annotations
    response = world.client("dave").post(
        _url(world, "more-votes/"), {"task": task.pk, "reason": "2 against 1"}, format="json"
    )
    assert response.status_code == 201, response.json()
    task.refresh_from_db()
    assert task.target_annotations == before + 1
    record = MoreVotesRequest.objects.get()
    assert (record.requested_by, record.reason, record.target_before, record.target_after) == (
        world.dave,
        "2 against 1",
        before,
        before + 1,
    )


def test_more_votes_on_a_task_of_another_project_or_a_bad_id_is_refused_naming_the_field(world):
    client = world.client("dave")
    other = Task.objects.filter(project=world.project_b).first()
    assert (
        client.post(_url(world, "more-votes/"), {"task": other.pk}, format="json").status_code
        == 403
    )
    for body in ({}, {"task": "x"}, {"task": True}, {"task": 2**70}, [1]):
        response = client.post(_url(world, "more-votes/"), body, format="json")
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["field"] in ("task", "body")
    response = client.post(
        _url(world, "more-votes/"), {"task": world.ranking_a.task_id, "reason": 5}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "reason"


def test_dropping_a_ranking_records_who_and_why_keeps_it_and_a_second_drop_changes_nothing(world):
    client = world.client("dave")
    url = _url(world, "drop/")
    first = client.post(url, {"ranking": world.ranking_a.pk, "reason": "spam"}, format="json")
    assert first.status_code == 201
    again = client.post(url, {"ranking": world.ranking_a.pk, "reason": "other"}, format="json")
    assert again.json() == first.json()
    drop = RankingDrop.objects.get()
    assert (drop.ranking, drop.dropped_by, drop.reason) == (world.ranking_a, world.dave, "spam")
    assert Ranking.objects.filter(pk=world.ranking_a.pk).exists()


def test_the_review_endpoints_are_in_the_schema(world):
    schema = world.client("root").get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    for tail in ("", "more-votes/", "drop/"):
        assert f"/api/v1/projects/{{project_id}}/review/{tail}" in paths


@pytest.mark.parametrize("value", [-0.1, 1.5, "NaN", "much", None])
def test_a_gold_rate_outside_0_to_1_is_refused_naming_it(world, value):
    response = world.client("dave").patch(
        f"/api/v1/projects/{world.project_a.pk}/", {"gold_rate": value}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "gold_rate"


def test_an_admin_sets_the_gold_rate(world):
    response = world.client("dave").patch(
        f"/api/v1/projects/{world.project_a.pk}/", {"gold_rate": 0.1}, format="json"
    )
    assert response.status_code == 200 and response.json()["gold_rate"] == 0.1


def test_a_limit_given_twice_is_a_400_naming_it(world):
    """As every list's filters: a repeated parameter is a typo, not "the last one wins"."""
    response = world.client("dave").get(_url(world) + "?limit=1&limit=2")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "limit", "message": "given more than once", "line": None}
    ]
    assert world.client("dave").get(_url(world) + "?limit=2").status_code == 200
