"""Allow/deny matrix: every endpoint x every role. No one reads or writes what is not theirs.

Objects of a project the caller cannot see are 404 (their existence is not revealed); a
project they see but may not administer answers 403 to admin actions; no credentials or a
revoked token is 401.
"""

from __future__ import annotations

import pytest

ROLES = ["anonymous", "revoked", "alice", "bob", "dave", "root"]


def _event(w, project) -> int:
    """An audit event (of `project`, or of none, like a token's), made when its URL is."""
    from feedback_app.core.audit import Origin, record

    return record("job.launch", origin=Origin(w.root), project=project).pk


def _invitee(w) -> int:
    """Someone invited to A who has not set a password yet, made when the URL is."""
    from django.contrib.auth import get_user_model

    from feedback_app.core.models import Membership

    user = get_user_model()(username=f"invitee{get_user_model().objects.count()}")
    user.set_unusable_password()
    user.save()
    Membership.objects.create(project=w.project_a, user=user)
    return user.pk


def _ranking_body(w):
    ids = sorted(c.pk for c in w.task_a.candidates.all())
    return {"ranking": [[i] for i in ids]}


# (name, method, url(world), body(world) or None, expected status per role in ROLES order)
# alice: annotator of A; bob: annotator of B; dave: admin (membership) of A; root: staff.
ENDPOINTS = [
    ("projects list", "get", lambda w: "/api/v1/projects/", None, [401, 401, 200, 200, 200, 200]),
    ("project detail", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/", None,
     [401, 401, 200, 404, 200, 200]),
    ("project create", "post", lambda w: "/api/v1/projects/",
     lambda w: {"name": "New", "candidates_per_task": 2}, [401, 401, 403, 403, 403, 201]),
    ("project update", "patch", lambda w: f"/api/v1/projects/{w.project_a.pk}/",
     lambda w: {"guidelines": "Be kind."}, [401, 401, 403, 404, 200, 200]),
    ("projects list archived", "get", lambda w: "/api/v1/projects/?archived=true", None,
     [401, 401, 200, 200, 200, 200]),
    ("project archive", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/archive/", None,
     [401, 401, 403, 404, 200, 200]),
    ("project restore", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/restore/", None,
     [401, 401, 403, 404, 200, 200]),
    ("members list", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/members/", None,
     [401, 401, 403, 404, 200, 200]),
    ("member add", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/members/",
     lambda w: {"user": "bob", "role": "annotator"}, [401, 401, 403, 404, 201, 201]),
    ("member role", "patch",
     lambda w: f"/api/v1/projects/{w.project_a.pk}/members/{w.alice.pk}/",
     lambda w: {"role": "admin"}, [401, 401, 403, 404, 200, 200]),
    ("member remove", "delete",
     lambda w: f"/api/v1/projects/{w.project_a.pk}/members/{w.alice.pk}/", None,
     [401, 401, 403, 404, 204, 204]),
    ("member of another project", "patch",
     lambda w: f"/api/v1/projects/{w.project_a.pk}/members/{w.bob.pk}/",
     lambda w: {"role": "admin"}, [401, 401, 403, 404, 404, 404]),
    ("invitation send", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/invitations/",
     lambda w: {"email": "new@example.com", "role": "annotator"},
     [401, 401, 403, 404, 201, 201]),
    ("invitation revoke", "delete",
     lambda w: f"/api/v1/projects/{w.project_a.pk}/invitations/{_invitee(w)}/", None,
     [401, 401, 403, 404, 204, 204]),
    ("invitation revoke, accepted", "delete",
     lambda w: f"/api/v1/projects/{w.project_a.pk}/invitations/{w.alice.pk}/", None,
     [401, 401, 403, 404, 409, 409]),
    # dave administers every project of alice (A); carol is an admin, so only staff may.
    ("deactivate an annotator", "post", lambda w: f"/api/v1/users/{w.alice.pk}/deactivate/",
     None, [401, 401, 404, 404, 200, 200]),
    ("deactivate an admin", "post", lambda w: f"/api/v1/users/{w.carol.pk}/deactivate/",
     None, [401, 401, 404, 404, 403, 200]),
    ("deactivate another project's", "post", lambda w: f"/api/v1/users/{w.bob.pk}/deactivate/",
     None, [401, 401, 404, 404, 404, 200]),
    ("reactivate an annotator", "post", lambda w: f"/api/v1/users/{w.alice.pk}/reactivate/",
     None, [401, 401, 404, 404, 200, 200]),
    ("prompts import", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/prompts/",
     lambda w: [{"prompt": "new one"}], [401, 401, 403, 404, 201, 201]),
    ("next task", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/tasks/next/", None,
     [401, 401, 200, 404, 200, 403]),
    ("ranking submit", "post", lambda w: f"/api/v1/tasks/{w.task_a.pk}/ranking/", _ranking_body,
     [401, 401, 201, 404, 409, 403]),
    ("task skip", "post", lambda w: f"/api/v1/tasks/{w.skip_task_a.pk}/skip/", None,
     [401, 401, 200, 404, 409, 403]),
    ("rankings list", "get", lambda w: "/api/v1/rankings/", None, [401, 401, 403, 403, 200, 200]),
    ("ranking detail", "get", lambda w: f"/api/v1/rankings/{w.ranking_a.pk}/", None,
     [401, 401, 403, 403, 200, 200]),
    ("pairs export", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/pairs/", None,
     [401, 401, 403, 404, 200, 200]),
    ("pairs page", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/pairs/?format=json",
     None, [401, 401, 403, 404, 200, 200]),
    ("project export", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/export/", None,
     [401, 401, 403, 404, 200, 200]),
    # Staff only; staff get past the rule and are asked for the file (the import itself:
    # tests/finetuning/test_archive.py).
    ("archive import", "post", lambda w: "/api/v1/projects/import-archive/", None,
     [401, 401, 403, 403, 403, 400]),
    ("snapshots list", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/snapshots/", None,
     [401, 401, 403, 404, 200, 200]),
    ("snapshot create", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/snapshots/",
     lambda w: {"min_votes": 1}, [401, 401, 403, 404, 202, 202]),
    ("snapshot detail", "get", lambda w: f"/api/v1/snapshots/{w.snapshot_a.pk}/", None,
     [401, 401, 403, 403, 200, 200]),
    ("snapshot file", "get", lambda w: f"/api/v1/snapshots/{w.snapshot_a.pk}/files/train/", None,
     [401, 401, 403, 403, 200, 200]),
    ("jobs list", "get", lambda w: "/api/v1/jobs/", None, [401, 401, 403, 403, 200, 200]),
    ("job create", "post", lambda w: "/api/v1/jobs/",
     lambda w: {"project": w.project_a.pk, "kind": "build_dataset", "params": {}},
     [401, 401, 403, 403, 201, 201]),
    ("job detail", "get", lambda w: f"/api/v1/jobs/{w.job_a.pk}/", None,
     [401, 401, 403, 403, 200, 200]),
    ("job cancel", "post", lambda w: f"/api/v1/jobs/{w.job_a.pk}/cancel/", None,
     [401, 401, 403, 403, 200, 200]),
    ("versions list", "get", lambda w: "/api/v1/model-versions/", None,
     [401, 401, 403, 403, 200, 200]),
    ("version detail", "get", lambda w: f"/api/v1/model-versions/{w.version_a.pk}/", None,
     [401, 401, 403, 403, 200, 200]),
    ("version promote", "post", lambda w: f"/api/v1/model-versions/{w.version_a.pk}/promote/",
     None, [401, 401, 403, 403, 200, 200]),
    ("feedback create", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/feedback/",
     lambda w: {"kind": "thumbs", "source": "web", "prompt": "hi", "response": "yo",
                "rating": "up"}, [401, 401, 201, 404, 201, 201]),
    ("feedback list", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/feedback/", None,
     [401, 401, 403, 404, 200, 200]),
    ("review queue", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/review/", None,
     [401, 401, 403, 404, 200, 200]),
    ("review more votes", "post",
     lambda w: f"/api/v1/projects/{w.project_a.pk}/review/more-votes/",
     lambda w: {"task": w.ranking_a.task_id, "reason": "split vote"},
     [401, 401, 403, 404, 201, 201]),
    ("review drop", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/review/drop/",
     lambda w: {"ranking": w.ranking_a.pk, "reason": "spam"}, [401, 401, 403, 404, 201, 201]),
    ("quality report", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/quality/", None,
     [401, 401, 403, 404, 200, 200]),
    ("quality figure", "get",
     lambda w: f"/api/v1/projects/{w.project_a.pk}/quality/reliability/", None,
     [401, 401, 403, 404, 200, 200]),
    ("quality refresh", "post", lambda w: f"/api/v1/projects/{w.project_a.pk}/quality/refresh/",
     None, [401, 401, 403, 404, 202, 202]),
    ("autopilot", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/autopilot/", None,
     [401, 401, 403, 404, 200, 200]),
    ("autopilot update", "put", lambda w: f"/api/v1/projects/{w.project_a.pk}/autopilot/",
     lambda w: {"trigger_share": 0.8}, [401, 401, 403, 404, 200, 200]),
    ("autopilot runs", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/autopilot/runs/",
     None, [401, 401, 403, 404, 200, 200]),
    ("rounds report", "get", lambda w: f"/api/v1/projects/{w.project_a.pk}/rounds/", None,
     [401, 401, 403, 404, 200, 200]),
    ("schema", "get", lambda w: "/api/v1/schema/", None, [200, 200, 200, 200, 200, 200]),
    ("tokens list", "get", lambda w: "/api/v1/auth/tokens/", None, [401, 401, 200, 200, 200, 200]),
    # By password, so anyone may ask; a bad token header is still refused before the body.
    ("token create", "post", lambda w: "/api/v1/auth/tokens/",
     lambda w: {"username": "alice", "password": "pw-alice", "name": "n"},
     [201, 401, 201, 201, 201, 201]),
    ("token revoke (another's)", "delete",
     lambda w: f"/api/v1/auth/tokens/{w.other_token_id}/", None, [401, 401, 404, 404, 404, 404]),
    ("audit list", "get", lambda w: "/api/v1/audit/", None, [401, 401, 403, 403, 200, 200]),
    ("audit event of A", "get", lambda w: f"/api/v1/audit/{_event(w, w.project_a)}/", None,
     [401, 401, 403, 403, 200, 200]),
    ("audit event of B", "get", lambda w: f"/api/v1/audit/{_event(w, w.project_b)}/", None,
     [401, 401, 403, 403, 404, 200]),
    ("audit event of no project", "get", lambda w: f"/api/v1/audit/{_event(w, None)}/", None,
     [401, 401, 403, 403, 404, 200]),
    ("audit write", "post", lambda w: "/api/v1/audit/", lambda w: {"action": "job.launch"},
     [401, 401, 403, 403, 405, 405]),
    ("audit delete", "delete", lambda w: f"/api/v1/audit/{_event(w, w.project_a)}/", None,
     [401, 401, 403, 403, 405, 405]),
]  # fmt: skip

CASES = [
    pytest.param(name, method, url, body, role, expected[i], id=f"{name}-{role}")
    for name, method, url, body, expected in ENDPOINTS
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("name", "method", "url", "body", "role", "expected"), CASES)
def test_each_role_reaches_only_what_is_theirs(world, name, method, url, body, role, expected):
    client = world.client(role)
    kwargs = {"format": "json"} if body is not None else {}
    response = getattr(client, method)(url(world), body(world) if body else None, **kwargs)
    assert response.status_code == expected, (name, role, getattr(response, "data", None))
    if expected >= 400:
        body = response.json()
        assert body["errors"] and all(e["field"] and e["message"] for e in body["errors"])


def test_revoked_token_fails_at_once(world, make_user):
    from feedback_app.accounts.tokens import token_create, token_revoke

    user = make_user("erin")
    created = token_create(user=user, name="script", expiry_days=30)
    client = world.client("anonymous")
    client.credentials(HTTP_AUTHORIZATION=f"Token {created.key}")
    assert client.get("/api/v1/projects/").status_code == 200
    token_revoke(user=user, token_id=created.token.pk)  # the account page's Revoke button
    response = client.get("/api/v1/projects/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["errors"][0]["field"] == "authorization"


def test_lists_show_only_projects_of_the_caller(world):
    names = {p["name"] for p in world.client("bob").get("/api/v1/projects/").json()["results"]}
    assert names == {"B"}
    names = {p["name"] for p in world.client("alice").get("/api/v1/projects/").json()["results"]}
    assert names == {"A"}


def test_admin_of_one_project_sees_nothing_of_another(world, make_user):
    from feedback_app.core.models import Membership

    frank = make_user("frank")
    Membership.objects.create(project=world.project_b, user=frank, role=Membership.Role.ADMIN)
    client = world.client("anonymous")
    client.force_authenticate(frank)
    for url in ("/api/v1/jobs/", "/api/v1/rankings/", "/api/v1/model-versions/", "/api/v1/audit/"):
        assert client.get(url).json()["results"] == [], url
    assert client.get(f"/api/v1/jobs/{world.job_a.pk}/").status_code == 404
    assert client.get(f"/api/v1/projects/{world.project_a.pk}/pairs/").status_code == 404
    assert client.get(f"/api/v1/snapshots/{world.snapshot_a.pk}/").status_code == 404
    response = client.post(
        "/api/v1/jobs/",
        {"project": world.project_a.pk, "kind": "build_dataset", "params": {}},
        format="json",
    )
    assert response.status_code == 404


def test_session_authentication_works_for_the_pages(world, client):
    client.force_login(world.alice)
    assert client.get("/api/v1/projects/").status_code == 200
