"""Projects and members through the API: the same services and rules as the pages."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from feedback_app.core.models import AuditEvent, Membership

pytestmark = pytest.mark.django_db


def test_archived_projects_leave_the_list_refuse_changes_and_come_back(world):
    dave, alice = world.client("dave"), world.client("alice")
    a = world.project_a.pk
    assert dave.post(f"/api/v1/projects/{a}/archive/").json()["archived"] is True
    assert [p["name"] for p in alice.get("/api/v1/projects/").json()["results"]] == []
    archived = alice.get("/api/v1/projects/?archived=true").json()["results"]
    assert [p["name"] for p in archived] == ["A"]
    assert alice.get(f"/api/v1/projects/{a}/tasks/next/").status_code == 204
    for response in (
        dave.patch(f"/api/v1/projects/{a}/", {"guidelines": "x"}, format="json"),
        dave.post(f"/api/v1/projects/{a}/prompts/", [{"prompt": "new"}], format="json"),
        dave.post(f"/api/v1/projects/{a}/members/", {"user": "bob"}, format="json"),
    ):
        assert response.status_code == 409
        assert response.json()["errors"][0]["field"] == "archived"
    assert dave.post(f"/api/v1/projects/{a}/restore/").json()["archived"] is False
    assert alice.get(f"/api/v1/projects/{a}/tasks/next/").status_code == 200


def test_a_base_model_that_does_not_load_is_a_400_naming_it_and_nothing_changes(world):
    a = world.project_a.pk
    response = world.client("dave").patch(
        f"/api/v1/projects/{a}/", {"base_model": "/no/such/model", "gold_rate": 0.5}, format="json"
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["base_model"]
    world.project_a.refresh_from_db()
    assert (world.project_a.base_model, world.project_a.gold_rate) == ("", 0.0)


def test_active_selection_and_adaptive_overlap_are_project_settings_in_the_api(world):
    a = world.project_a.pk
    response = world.client("dave").patch(
        f"/api/v1/projects/{a}/", {"active_selection": True, "annotations_max": 5}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["active_selection"], response.json()["annotations_max"]) == (True, 5)
    world.project_a.refresh_from_db()
    assert (world.project_a.active_selection, world.project_a.annotations_max) == (True, 5)
    event = AuditEvent.objects.get(action="project.update", project=world.project_a)
    assert event.data["changed"] == {"annotations_max": [0, 5], "active_selection": [False, True]}
    bad = world.client("dave").patch(
        f"/api/v1/projects/{a}/", {"annotations_max": 51}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "annotations_max"


def test_k_change_through_the_api_says_why_once_tasks_exist(world):
    response = world.client("root").patch(
        f"/api/v1/projects/{world.project_a.pk}/", {"candidates_per_task": 4}, format="json"
    )
    assert response.status_code == 400
    assert "fixed once the project has tasks" in response.json()["errors"][0]["message"]


def test_members_through_the_api_and_the_audit_log_keeps_each_step(
    world, django_capture_on_commit_callbacks
):
    dave = world.client("dave")
    url = f"/api/v1/projects/{world.project_a.pk}/members/"
    listed = {m["username"]: m["role"] for m in dave.get(url).json()}
    assert listed == {"alice": "annotator", "dave": "admin", "carol": "admin"}
    assert dave.post(url, {"user": "bob", "role": "annotator"}, format="json").status_code == 201
    again = dave.post(url, {"user": "bob"}, format="json")
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "user"
    assert dave.patch(f"{url}{world.bob.pk}/", {"role": "admin"}, format="json").json()["role"] == (
        "admin"
    )
    assert dave.delete(f"{url}{world.bob.pk}/").status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        invited = dave.post(
            f"/api/v1/projects/{world.project_a.pk}/invitations/",
            {"email": "Eve@Example.com", "role": "annotator"},
            format="json",
        )
    assert invited.status_code == 201 and invited.json()["invited"] is True
    assert re.search(r"http://testserver/invitation/\S+/\S+/", mail.outbox[0].body)
    events = AuditEvent.objects.filter(project=world.project_a).order_by("id")
    assert [(e.action, e.via, e.actor_name) for e in events] == [
        ("member.add", "api", "dave"),
        ("member.role", "api", "dave"),
        ("member.remove", "api", "dave"),
        ("invitation.send", "api", "dave"),
    ]


def test_deactivation_through_the_api_keeps_the_rankings(world):
    response = world.client("dave").post(f"/api/v1/users/{world.alice.pk}/deactivate/")
    assert response.json()["is_active"] is False
    assert world.ranking_a.__class__.objects.filter(annotator=world.alice).count() == 1
    assert Membership.objects.filter(user=world.alice).exists()
    assert world.client("alice").get("/api/v1/projects/").status_code == 401
