"""The audit log through the API: each admin action records who, when and from where, and
nothing secret; the read-only list shows each caller only what is theirs, filtered strictly."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from feedback_app.accounts.models import ApiToken
from feedback_app.core.audit import Origin, record
from feedback_app.core.models import AuditEvent, Job

from .conftest import client_for
from .test_bad_requests import errors_of

AUDIT = "/api/v1/audit/"
ADDRESS = "203.0.113.7"


def _client(world, role: str):
    client = client_for(getattr(world, role))
    client.defaults["REMOTE_ADDR"] = ADDRESS
    return client


def _events_since(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=mark).order_by("pk"))


def _mark() -> int:
    last = AuditEvent.objects.order_by("-pk").first()
    return last.pk if last else 0


def test_each_api_admin_action_records_who_when_where_and_what(world, monkeypatch):
    from feedback_app.finetuning import jobs
    from feedback_app.finetuning.versions import model_register

    monkeypatch.setattr(jobs, "_enqueue", lambda job: None)  # launched jobs stay queued
    a = world.project_a
    dave, root = _client(world, "dave"), _client(world, "root")
    mark, started = _mark(), timezone.now()
    v2 = model_register(project=a, kind="policy", name="v3", weights="/nowhere3")

    assert dave.post(f"/api/v1/projects/{a.pk}/prompts/", [{"prompt": "new"}], format="json")
    launched = dave.post(
        "/api/v1/jobs/", {"project": a.pk, "kind": "build_dataset", "params": {}}, format="json"
    ).json()
    built = dave.post(f"/api/v1/projects/{a.pk}/snapshots/", {"min_votes": 1}, format="json")
    assert dave.post(f"/api/v1/jobs/{launched['id']}/cancel/").status_code == 200
    retried = dave.post(f"/api/v1/jobs/{launched['id']}/retry/").json()
    assert dave.post(f"/api/v1/model-versions/{v2.pk}/promote/").status_code == 200
    created = root.post(
        "/api/v1/projects/", {"name": "New", "candidates_per_task": 2}, format="json"
    )
    assert (
        dave.patch(
            f"/api/v1/projects/{a.pk}/", {"annotations_per_task": 5}, format="json"
        ).status_code
        == 200
    )

    events = _events_since(mark)
    assert [(e.action, e.actor_name, e.via, e.address) for e in events] == [
        ("prompts.import", "dave", "api", ADDRESS),
        ("job.launch", "dave", "api", ADDRESS),
        ("job.launch", "dave", "api", ADDRESS),
        ("job.cancel", "dave", "api", ADDRESS),
        ("job.retry", "dave", "api", ADDRESS),
        ("model.promote", "dave", "api", ADDRESS),
        ("project.create", "root", "api", ADDRESS),
        ("project.update", "dave", "api", ADDRESS),
    ]
    assert all(started <= e.created_at <= timezone.now() for e in events)
    assert [e.project_id for e in events[:6]] == [a.pk] * 6
    imported, launch, snapshot, cancel, retry, promote, create, update = events
    assert imported.data == {"created": 1, "existing": 0, "tasks": 0}
    assert launch.data == {"job": launched["id"], "kind": "build_dataset", "status": "queued",
                           "params": Job.objects.get(pk=launched["id"]).params}  # fmt: skip
    assert snapshot.data["job"] == built.json()["id"] and snapshot.data["params"]["min_votes"] == 1
    assert (cancel.data["job"], cancel.data["status"]) == (launched["id"], "cancelled")
    assert retry.data["job"] == retried["id"] and retry.data["retry_of"] == launched["id"]
    assert promote.data == {"version": v2.pk, "kind": "policy", "name": "v3"}
    assert create.project_id == created.json()["id"] and create.data["settings"]["name"] == "New"
    assert update.data == {"changed": {"annotations_per_task": [2, 5]}}
    assert update.actor == world.dave and create.actor == world.root


def test_token_creation_and_revocation_are_recorded_without_the_key(world):
    client = client_for()
    client.defaults["REMOTE_ADDR"] = ADDRESS
    mark = _mark()
    body = {"username": "bob", "password": "pw-bob", "name": "laptop", "expiry_days": 7}
    key = client.post("/api/v1/auth/tokens/", body, format="json").json()["key"]
    token = ApiToken.objects.get(name="laptop")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.delete(f"/api/v1/auth/tokens/{token.pk}/").status_code == 204

    created, revoked = _events_since(mark)
    # Asked by password: the owner is the actor, though nobody was signed in.
    assert (created.action, created.actor, created.via, created.address) == (
        "token.create", world.bob, "api", ADDRESS,
    )  # fmt: skip
    assert (revoked.action, revoked.actor, revoked.address) == ("token.revoke", world.bob, ADDRESS)
    assert created.project is None and created.data["token"] == revoked.data["token"] == token.pk
    assert created.data["name"] == "laptop" and created.data["owner"] == "bob"
    for event in (created, revoked):
        text = json.dumps([event.target, event.data])
        for secret in (key, key[:15], token.digest, token.token_key, "pw-bob"):
            assert secret not in text


def test_refused_actions_record_nothing(world, settings):
    settings.AXES_ENABLED = False
    dave = _client(world, "dave")
    finished = Job.objects.create(project=world.project_a, kind="build_dataset", status="failed")
    mark = _mark()
    bad = {"project": world.project_a.pk, "kind": "build_dataset", "params": {"min_votes": -1}}
    assert dave.post("/api/v1/jobs/", bad, format="json").status_code == 400
    assert dave.post(f"/api/v1/jobs/{finished.pk}/cancel/").status_code == 409
    assert dave.post(f"/api/v1/jobs/{world.job_a.pk}/retry/").status_code == 409
    b = world.project_b.pk
    foreign = dave.post(f"/api/v1/projects/{b}/prompts/", [{"prompt": "x"}], format="json")
    assert foreign.status_code == 404
    patch = dave.patch(f"/api/v1/projects/{world.project_a.pk}/", {"gold_rate": 2}, format="json")
    assert patch.status_code == 400
    wrong = {"username": "bob", "password": "nope", "name": "n"}
    assert client_for().post("/api/v1/auth/tokens/", wrong, format="json").status_code == 400
    assert dave.delete(f"/api/v1/auth/tokens/{world.other_token_id}/").status_code == 404
    assert _events_since(mark) == []


def test_a_project_update_records_what_changed_and_cuts_long_text(world):
    from feedback_app.core.audit import VALUE_MAX

    a = world.project_a
    dave = _client(world, "dave")
    mark = _mark()
    long = "g" * (VALUE_MAX + 50)
    assert (
        dave.patch(f"/api/v1/projects/{a.pk}/", {"guidelines": long}, format="json").status_code
        == 200
    )
    assert (
        dave.patch(f"/api/v1/projects/{a.pk}/", {"guidelines": long}, format="json").status_code
        == 200
    )
    (event,) = _events_since(mark)  # the second PATCH changed nothing: nothing recorded
    old, new = event.data["changed"]["guidelines"]
    assert old == a.guidelines and new == "g" * VALUE_MAX + f"… ({VALUE_MAX + 50} characters)"


# --- reading the log -----------------------------------------------------------------------------


@pytest.fixture
def logged(world):
    """Events of both projects and one of no project (someone's token)."""
    return {
        "a": record("job.launch", origin=Origin(world.dave, "api"), project=world.project_a),
        "a_page": record("job.cancel", origin=Origin(world.dave, "page"), project=world.project_a),
        "b": record("prompts.import", origin=Origin(world.root, "cli"), project=world.project_b),
        "none": record("token.create", origin=Origin(world.bob, "api"), target="token 1 of bob"),
    }


def _ids(client, **query) -> list[int]:
    response = client.get(AUDIT, query)
    assert response.status_code == 200, response.json()
    return [e["id"] for e in response.json()["results"]]


def test_staff_read_every_event_and_a_project_admin_only_their_projects(world, logged):
    every = [logged[k].pk for k in ("none", "b", "a_page", "a")]  # newest first
    assert _ids(world.client("root")) == every
    assert _ids(world.client("dave")) == [logged["a_page"].pk, logged["a"].pk]
    assert _ids(world.client("dave"), project=world.project_b.pk) == []  # not theirs: nothing
    for role in ("alice", "bob"):  # annotators: no audit log at all
        assert "permission" in errors_of(world.client(role).get(AUDIT), 403)
    assert world.client("dave").get(f"{AUDIT}{logged['none'].pk}/").status_code == 404
    assert world.client("dave").get(f"{AUDIT}{logged['b'].pk}/").status_code == 404
    event = world.client("root").get(f"{AUDIT}{logged['none'].pk}/").json()
    assert event["actor"] == world.bob.pk and event["actor_name"] == "bob"
    assert set(event) == {"id", "created_at", "actor", "actor_name", "via", "address", "action",
                          "project", "target", "data"}  # fmt: skip


def test_the_audit_filters_narrow_the_list(world, logged):
    root = world.client("root")
    a, b, a_page, none = (logged[k].pk for k in ("a", "b", "a_page", "none"))
    assert _ids(root, project=world.project_a.pk) == [a_page, a]
    assert _ids(root, actor=world.dave.pk) == [a_page, a]
    assert _ids(root, action="job.launch") == [a]
    assert _ids(root, action="job") == [a_page, a]  # an area: every job.* action
    assert _ids(root, action="jo") == []  # not a prefix of names: a whole area
    assert _ids(root, via="cli") == [b]
    assert _ids(root, via="api", actor=world.bob.pk) == [none]
    made = logged["a"].created_at
    assert _ids(root, until=made.isoformat()) == []
    assert _ids(root, since=made.isoformat()) == [none, b, a_page, a]
    assert _ids(root, since=timezone.now().isoformat()) == []


def test_the_audit_list_comes_in_cursor_pages(world, logged):
    root = world.client("root")
    first = root.get(AUDIT, {"page_size": 3}).json()
    rest = root.get(first["next"]).json()
    ids = [e["id"] for e in first["results"] + rest["results"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids)) == 4


@pytest.mark.parametrize(
    ("name", "value"),
    [("action", "Job.Launch"), ("action", "job..launch"), ("action", "a" * 65),
     ("action", "job launch"), ("action", "a\x00b"), ("via", "email"), ("actor", "bob"),
     ("project", "0"), ("since", "yesterday"), ("until", "2026-13-01")],
)  # fmt: skip
def test_a_bad_audit_filter_is_a_400_naming_it(world, name, value):
    assert name in errors_of(world.client("root").get(AUDIT, {name: value}))
