"""The annotation workflow over the API, and the one error shape."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from feedback_app.annotation import handout
from feedback_app.annotation.models import Ranking

from .conftest import client_for


@pytest.fixture
def project(make_project, alice):
    return make_project(name="A", k=3, overlap=1, n_tasks=2, annotators=[alice])


def test_next_task_returns_prompt_and_candidates_in_display_order(project, alice):
    from feedback_app.annotation.models import Assignment

    body = client_for(alice).get(f"/api/v1/projects/{project.pk}/tasks/next/").json()
    assignment = Assignment.objects.get(task_id=body["task"], annotator=alice)
    assert [c["id"] for c in body["candidates"]] == assignment.display_order
    assert [c["label"] for c in body["candidates"]] == ["A", "B", "C"]
    assert body["prompt"]["text"].startswith("A ") and body["prompt"]["messages"] is None
    assert body["progress"] == {"done": 0, "remaining": 2}
    again = client_for(alice).get(f"/api/v1/projects/{project.pk}/tasks/next/").json()
    assert again["task"] == body["task"]  # the lease held is handed back


def test_next_task_is_204_when_nothing_is_left(project, alice):
    client = client_for(alice)
    for _ in range(2):
        task = client.get(f"/api/v1/projects/{project.pk}/tasks/next/").json()
        ranking = [[c["id"]] for c in task["candidates"]]
        assert (
            client.post(
                f"/api/v1/tasks/{task['task']}/ranking/", {"ranking": ranking}, format="json"
            ).status_code
            == 201
        )
    response = client.get(f"/api/v1/projects/{project.pk}/tasks/next/")
    assert response.status_code == 204 and not response.content


def test_second_submit_of_same_ranking_is_idempotent(project, alice):
    client = client_for(alice)
    task = client.get(f"/api/v1/projects/{project.pk}/tasks/next/").json()
    ids = [c["id"] for c in task["candidates"]]
    payload = {"ranking": [[ids[1]], [ids[0], ids[2]]], "rationale": "B is right", "flags": []}
    first = client.post(f"/api/v1/tasks/{task['task']}/ranking/", payload, format="json")
    second = client.post(f"/api/v1/tasks/{task['task']}/ranking/", payload, format="json")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.json()["ranking"] == [[ids[1]], sorted([ids[0], ids[2]])]
    different = client.post(
        f"/api/v1/tasks/{task['task']}/ranking/", {**payload, "rationale": "no"}, format="json"
    )
    assert different.status_code == 409
    assert different.json()["errors"][0]["field"] == "ranking"
    assert Ranking.objects.count() == 1


@pytest.mark.parametrize(
    ("ranking", "field"),
    [
        ("nope", "ranking"),
        ([], "ranking"),
        ([[]], "ranking[0]"),
        ([["x"]], "ranking[0]"),
        ([[0], [1]], "ranking[0]"),
    ],
)
def test_malformed_ranking_is_400_naming_the_field(project, alice, ranking, field):
    client = client_for(alice)
    task = client.get(f"/api/v1/projects/{project.pk}/tasks/next/").json()
    response = client.post(
        f"/api/v1/tasks/{task['task']}/ranking/", {"ranking": ranking}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert not Ranking.objects.exists()


def test_missing_ranking_and_bad_flags_name_their_fields(project, alice):
    client = client_for(alice)
    task = client.get(f"/api/v1/projects/{project.pk}/tasks/next/").json()
    url = f"/api/v1/tasks/{task['task']}/ranking/"
    assert client.post(url, {}, format="json").json() == {
        "errors": [{"field": "ranking", "message": "This field is required.", "line": None}]
    }
    ids = [[c["id"]] for c in task["candidates"]]
    bad = client.post(url, {"ranking": ids, "flags": ["meh"]}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "flags"


def test_submit_of_a_task_not_handed_out_is_409(project, alice):
    from feedback_app.annotation.models import Task

    task = Task.objects.filter(project=project).last()
    ids = [[c.pk] for c in task.candidates.all()]
    response = client_for(alice).post(
        f"/api/v1/tasks/{task.pk}/ranking/", {"ranking": ids}, format="json"
    )
    assert response.status_code == 409 and response.json()["errors"][0]["field"] == "task"


def test_skip_hands_the_next_task(project, alice):
    client = client_for(alice)
    first = client.get(f"/api/v1/projects/{project.pk}/tasks/next/").json()["task"]
    assert client.post(f"/api/v1/tasks/{first}/skip/").json() == {
        "task": first,
        "status": "skipped",
    }
    assert client.get(f"/api/v1/projects/{project.pk}/tasks/next/").json()["task"] != first


def test_unknown_path_is_a_json_404(alice, db):
    response = client_for(alice).get("/api/v1/nothing/here/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["field"] == "url"


def test_throttled_request_is_429_in_the_error_shape(settings, make_user):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "2/min", "anon": "2/min"},
    }
    client = client_for(make_user("throttled"))
    statuses = [client.get("/api/v1/projects/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = client.get("/api/v1/projects/")
    assert response.json()["errors"][0]["field"] == "throttle" and response["Retry-After"]


def test_unexpected_error_is_a_json_500_without_traceback(project, alice, monkeypatch):

    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(handout, "task_assign_next", boom)
    response = client_for(alice).get(f"/api/v1/projects/{project.pk}/tasks/next/")
    assert response.status_code == 500
    assert response.json() == {
        "errors": [{"field": "server", "message": "unexpected error; it was logged", "line": None}]
    }


def test_rankings_list_filters(world):
    client = client_for(world.root)
    a = world.project_a.pk
    assert len(client.get(f"/api/v1/rankings/?project={a}").json()["results"]) == 1
    assert client.get(f"/api/v1/rankings/?annotator={world.bob.pk}").json()["results"] == []
    assert client.get("/api/v1/rankings/?round=2").json()["results"] == []
    assert client.get("/api/v1/rankings/?since=2999-01-01T00:00:00Z").json()["results"] == []
    bad = client.get("/api/v1/rankings/?since=yesterday")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "since"


# These two run in this order (the file's): the first leaves its counts behind, the second
# would inherit them, as any later test did before tests/conftest.py reset them (issue 26).
LOW = {"user": "3/min", "anon": "3/min"}


def test_isolation_first_a_test_spends_its_whole_rate(settings, make_user):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": LOW}
    client = client_for(make_user("spender"))
    assert [client.get("/api/v1/projects/").status_code for _ in range(4)][-1] == 429
    anonymous = APIClient()  # the API docs page is open to anyone: throttled by address
    assert [anonymous.get("/api/v1/docs/").status_code for _ in range(4)][-1] == 429


def test_isolation_then_the_next_test_starts_with_nothing_counted(settings, make_user):
    """Same user id on SQLite (the rollback hands it out again), same address: fresh anyway."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": LOW}
    client = client_for(make_user("spender"))
    assert [client.get("/api/v1/projects/").status_code for _ in range(3)] == [200] * 3
    anonymous = APIClient()
    assert [anonymous.get("/api/v1/docs/").status_code for _ in range(3)] == [200] * 3
