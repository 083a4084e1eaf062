"""The audit log from the pages, the command line and the Django admin: each admin action there
records who, when and from where (and nothing secret); the audit page shows each admin only
their projects' events, filtered and a page at a time."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from feedback_app.accounts.models import ApiToken
from feedback_app.core.audit import Origin, record
from feedback_app.core.models import AuditEvent, Job, Membership
from feedback_app.finetuning import jobs, versions
from tests.hostile import TEXT_EXAMPLES, every_case, hostile_text, nul_text

pytestmark = pytest.mark.django_db

ADDRESS = "198.51.100.23"
AUDIT = "/audit/"


def _since(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=mark).order_by("pk"))


def _mark() -> int:
    last = AuditEvent.objects.order_by("-pk").first()
    return last.pk if last else 0


@pytest.fixture
def setup(make_project, make_user, alice, monkeypatch):
    """Project P (alice annotates, ada administers it by membership) and Q (nobody of theirs)."""
    monkeypatch.setattr(jobs, "_enqueue", lambda job: None)
    project = make_project(name="P", k=3, n_tasks=2, annotators=[alice])
    other = make_project(name="Q", k=3, n_tasks=1)
    ada = make_user("ada")
    Membership.objects.create(project=project, user=ada, role=Membership.Role.ADMIN)
    return project, other, ada


def test_each_page_admin_action_records_who_when_where_and_what(client, setup):
    project, _, ada = setup
    client.force_login(ada)
    base = versions.model_register(project=project, kind="policy", name="base", weights="/b")
    mark, started = _mark(), timezone.now()
    upload = SimpleUploadedFile("p.jsonl", b'{"prompt": "fresh"}\n')
    post = {"REMOTE_ADDR": ADDRESS}
    assert (
        client.post(f"/projects/{project.pk}/import/", {"file": upload}, **post).status_code == 302
    )
    data = {"build_dataset-min_votes": "1", "build_dataset-min_agreement": "0.6",
            "build_dataset-test_fraction": "0.2", "build_dataset-seed": "3"}  # fmt: skip
    client.post(reverse("finetuning:launch", args=[project.pk, "build_dataset"]), data, **post)
    job = Job.objects.get(project=project)
    client.post(reverse("finetuning:job-cancel", args=[job.pk]), **post)
    client.post(reverse("finetuning:job-retry", args=[job.pk]), **post)
    client.post(reverse("finetuning:promote", args=[project.pk, base.pk]), **post)

    events = _since(mark)
    assert [(e.action, e.actor, e.via, e.address, e.project) for e in events] == [
        (action, ada, "page", ADDRESS, project)
        for action in ("prompts.import", "job.launch", "job.cancel", "job.retry", "model.promote")
    ]
    assert all(started <= e.created_at <= timezone.now() for e in events)
    imported, launched, cancelled, retried, promoted = events
    assert imported.data == {"created": 1, "existing": 0, "tasks": 0}
    assert launched.data["params"]["min_agreement"] == 0.6
    assert cancelled.data["status"] == "cancelled" and retried.data["retry_of"] == job.pk
    assert promoted.data == {"version": base.pk, "kind": "policy", "name": "base"}


def test_the_account_page_records_token_creation_and_revocation_without_the_key(client, alice):
    client.force_login(alice)
    mark = _mark()
    response = client.post(
        "/account/tokens/", {"name": "nightly", "expiry_days": "30"}, REMOTE_ADDR=ADDRESS
    )
    key = response.context_data["created"].key
    token = ApiToken.objects.get(name="nightly")
    client.post(f"/account/tokens/{token.pk}/revoke/", REMOTE_ADDR=ADDRESS)
    created, revoked = _since(mark)
    assert [(e.action, e.actor, e.via, e.address) for e in (created, revoked)] == [
        ("token.create", alice, "page", ADDRESS),
        ("token.revoke", alice, "page", ADDRESS),
    ]
    assert created.data["expiry"] is not None and created.data["owner"] == "alice"
    for event in (created, revoked):
        text = json.dumps([event.target, event.data])
        assert key not in text and key[:15] not in text and token.digest not in text


def test_the_import_command_records_an_import_from_the_command_line(setup, tmp_path):
    project, _, _ = setup
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "from a script"}\n')
    mark = _mark()
    call_command("import_prompts", str(project.pk), str(path), stdout=open(tmp_path / "o", "w"))  # noqa: SIM115
    (event,) = _since(mark)
    assert (event.action, event.via, event.actor, event.address) == (
        "prompts.import", "cli", None, None,
    )  # fmt: skip
    assert event.project == project and event.data["created"] == 1


def test_revoking_a_token_and_lifting_a_lockout_in_the_django_admin_are_recorded(
    client, make_user, alice
):
    from axes.models import AccessAttempt

    from feedback_app.accounts.tokens import token_create

    boss = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(boss)
    created = token_create(user=alice, name="ci", expiry_days=0)
    attempt = AccessAttempt.objects.create(
        username="alice", ip_address="192.0.2.9", user_agent="x", failures_since_start=9,
        get_data="", post_data="password=********",
    )  # fmt: skip
    mark = _mark()
    url = reverse("admin:accounts_apitoken_delete", args=[created.token.pk])
    assert client.post(url, {"post": "yes"}, REMOTE_ADDR=ADDRESS).status_code == 302
    changelist = reverse("admin:axes_accessattempt_changelist")
    bulk = {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"}
    assert client.post(changelist, bulk, REMOTE_ADDR=ADDRESS).status_code == 302
    revoked, lifted = _since(mark)
    assert (revoked.action, revoked.actor, revoked.via, revoked.address) == (
        "token.revoke", boss, "page", ADDRESS,
    )  # fmt: skip
    assert revoked.data["owner"] == "alice" and created.key[:15] not in json.dumps(revoked.data)
    assert (lifted.action, lifted.actor, lifted.address) == ("lockout.lift", boss, ADDRESS)
    assert lifted.data == {"username": "alice", "ip_address": "192.0.2.9", "failures": 9,
                           "locked": True}  # fmt: skip
    assert "password" not in json.dumps(lifted.data | {"t": lifted.target})


def test_the_django_admin_shows_the_audit_log_read_only(client, make_user):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    event = record("job.launch", target="job 1")
    assert client.get(reverse("admin:core_auditevent_changelist")).status_code == 200
    change = reverse("admin:core_auditevent_change", args=[event.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"action": "x"}).status_code == 403
    assert client.get(reverse("admin:core_auditevent_add")).status_code == 403
    assert client.get(reverse("admin:core_auditevent_delete", args=[event.pk])).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "job.launch"


# --- the audit page ------------------------------------------------------------------------------


@pytest.fixture
def logged(setup, make_user):
    project, other, ada = setup
    root = make_user("root", is_staff=True)
    return {
        "p": record("job.launch", origin=Origin(ada, "page"), project=project, target="job 1"),
        "p_cli": record("prompts.import", origin=Origin(interface="cli"), project=project),
        "q": record("job.cancel", origin=Origin(root, "api"), project=other),
        "none": record("token.create", origin=Origin(ada, "api"), target="token 3 of ada"),
        "root": root,
    }


def _shown(client, **query) -> list[int]:
    response = client.get(AUDIT, query)
    assert response.status_code == 200, response.content[:300]
    return [e.pk for e, _, _ in response.context_data["rows"]]


def test_staff_see_every_event_a_project_admin_theirs_and_annotators_nothing(
    client, setup, logged, alice
):
    _, _, ada = setup
    client.force_login(logged["root"])
    every = [logged[k].pk for k in ("none", "q", "p_cli", "p")]
    assert _shown(client) == every
    body = client.get(AUDIT).content.decode()
    assert "token 3 of ada" in body and "job launched" in body
    client.force_login(ada)
    assert _shown(client) == [logged["p_cli"].pk, logged["p"].pk]
    client.force_login(alice)
    assert client.get(AUDIT).status_code == 404
    client.logout()
    assert client.get(AUDIT).status_code == 302  # to the login page


def test_the_audit_page_filters(client, setup, logged):
    project, other, ada = setup
    client.force_login(logged["root"])
    p, p_cli, q, none = (logged[k].pk for k in ("p", "p_cli", "q", "none"))
    assert _shown(client, project=project.pk) == [p_cli, p]
    assert _shown(client, actor="ada") == [none, p]
    assert _shown(client, action="job") == [q, p]
    assert _shown(client, action="job.cancel", via="api") == [q]
    today = timezone.now().date()
    assert _shown(client, since=today, until=today) == [none, q, p_cli, p]
    assert _shown(client, until=today.replace(year=today.year - 1)) == []
    assert _shown(client, project="", actor="", action="", via="") == [none, q, p_cli, p]
    client.force_login(ada)  # Q is not theirs: not even a choice
    assert client.get(AUDIT, {"project": other.pk}).status_code == 400


def test_the_audit_page_comes_a_page_at_a_time_newest_first(client, setup, logged, monkeypatch):
    from feedback_app.core import views

    monkeypatch.setattr(views, "EVENTS_PER_PAGE", 3)
    client.force_login(logged["root"])
    first = client.get(AUDIT, {"via": ""})
    older = first.context_data["older"]
    assert older and "via=" in older
    rest = client.get(AUDIT + older).context_data["rows"]
    ids = [e.pk for e, _, _ in first.context_data["rows"] + rest]
    assert ids == [logged[k].pk for k in ("none", "q", "p_cli", "p")]
    assert client.get(AUDIT + older).context_data["newest"] == "?via="


BAD_FILTERS = [("project", "abc"), ("action", "Job"), ("action", "a" * 65), ("via", "mail"),
               ("since", "2026-02-30"), ("until", "someday"), ("before", "-1"),
               ("before", "9" * 30), ("actor", "a" * 151)]  # fmt: skip


def test_a_bad_filter_on_the_page_is_a_400_marking_the_field(client, logged):
    client.force_login(logged["root"])
    for field, value in BAD_FILTERS:
        response = client.get(AUDIT, {field: value})
        assert response.status_code == 400, (field, value)
        assert field in response.context_data["form"].errors, (field, value)
        assert 'data-testid="errors"' in response.content.decode()
    response = client.get(AUDIT, {"since": "2026-02-02", "until": "2026-02-01"})
    assert "until" in response.context_data["form"].errors


def test_hostile_filter_values_on_the_page_are_400s(client, logged):
    """tests/hostile.py's query-string values in each filter: a 400 marking it, never a 500.
    Only the action filter takes a plain word ("inf" may name an area of actions)."""
    client.force_login(logged["root"])

    def attempt(field, value):
        if field == "action" and value.isalpha() and value.islower():
            return
        response = client.get(AUDIT, {field: value})
        assert response.status_code == 400, (field, value)
        assert field in response.context_data["form"].errors, (field, value)

    fields = ["project", "action", "via", "since", "until", "before"]
    every_case(fields, TEXT_EXAMPLES, hostile_text | nul_text, attempt)
    assert client.get(AUDIT, {"actor": "a\x00b"}).status_code == 400
    assert client.get(AUDIT, {"until": "9999-12-31", "since": "2026-01-01"}).status_code == 200


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "UTC"])
def test_first_and_last_days_on_the_page_are_no_bound_in_any_time_zone(
    client, logged, settings, zone
):
    """Day 0001-01-01 begins before year 1 in UTC east of Greenwich, and 9999-12-31 ends after
    9999 everywhere: such a bound excludes nothing, so it is dropped (never an overflow)."""
    settings.TIME_ZONE = zone
    client.force_login(logged["root"])
    everything = client.get(AUDIT).context_data["rows"]
    for since, until in [("0001-01-01", "9999-12-31"), ("0001-01-01", ""), ("", "9999-12-31")]:
        response = client.get(AUDIT, {"since": since, "until": until})
        assert response.status_code == 200, (zone, since, until)
        assert response.context_data["rows"] == everything


def test_the_topbar_and_the_loop_nav_link_to_the_audit_page(client, setup, logged):
    project, _, ada = setup
    client.force_login(logged["root"])
    assert f'href="{AUDIT}"' in client.get("/").content.decode()
    client.force_login(ada)
    loop = client.get(reverse("finetuning:loop", args=[project.pk])).content.decode()
    assert f'href="{AUDIT}?project={project.pk}"' in loop


def test_project_settings_changed_in_the_django_admin_are_recorded(client, make_user, setup):
    project, _, _ = setup
    boss = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(boss)
    form = {"name": project.name, "guidelines": "Be brief.", "candidates_per_task": 3,
            "annotations_per_task": 4, "rationale": "optional", "gold_rate": "0",
            "lease_seconds": project.lease_seconds, "generation": "{}", "annotations_max": 0,
            "judge_min_agreement": project.judge_min_agreement,
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}  # fmt: skip
    url = reverse("admin:core_project_change", args=[project.pk])
    mark = _mark()
    response = client.post(url, form, REMOTE_ADDR=ADDRESS)
    assert response.status_code == 302, response.context_data["adminform"].form.errors
    assert client.post(url, form, REMOTE_ADDR=ADDRESS).status_code == 302  # the same again
    (event,) = _since(mark)
    assert (event.action, event.actor, event.via, event.address) == (
        "project.update", boss, "page", ADDRESS,
    )  # fmt: skip
    assert event.data == {"changed": {"guidelines": [project.guidelines, "Be brief."],
                                      "annotations_per_task": [2, 4]}}  # fmt: skip


def test_members_added_changed_and_removed_in_the_django_admin_inline_are_recorded(
    client, make_user, setup, bob
):
    """The admin's member inline goes through the member services: each change is an event
    with the admin, the page and the address, like the members page's."""
    project, _, _ = setup
    boss = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(boss)
    url = reverse("admin:core_project_change", args=[project.pk])
    settings = {"name": project.name, "guidelines": project.guidelines,
                "candidates_per_task": 3, "annotations_per_task": project.annotations_per_task,
                "rationale": project.rationale, "gold_rate": "0",
                "lease_seconds": project.lease_seconds, "generation": "{}",
                "annotations_max": 0,
                "judge_min_agreement": project.judge_min_agreement}  # fmt: skip
    rows = list(Membership.objects.filter(project=project).order_by("pk"))

    def post(extra: list[dict], changed: dict[int, dict]) -> None:
        form = dict(settings)
        form["memberships-TOTAL_FORMS"] = str(len(rows) + len(extra))
        form["memberships-INITIAL_FORMS"] = str(len(rows))
        for i, m in enumerate(rows):
            values = {"id": m.pk, "project": project.pk, "user": m.user_id, "role": m.role}
            values.update(changed.get(i, {}))
            form.update({f"memberships-{i}-{k}": v for k, v in values.items()})
        for j, values in enumerate(extra, start=len(rows)):
            form.update({f"memberships-{j}-{k}": v for k, v in values.items()})
        response = client.post(url, form, REMOTE_ADDR=ADDRESS)
        assert response.status_code == 302, response.context_data["errors"]

    mark = _mark()
    post([{"project": project.pk, "user": bob.pk, "role": "annotator"}], {})
    rows = list(Membership.objects.filter(project=project).order_by("pk"))
    added = rows.index(Membership.objects.get(project=project, user=bob))
    post([], {added: {"role": "admin"}})
    post([], {added: {"DELETE": "on"}})
    events = _since(mark)
    assert [(e.action, e.target, e.actor, e.via, e.address) for e in events] == [
        ("member.add", "bob", boss, "page", ADDRESS),
        ("member.role", "bob", boss, "page", ADDRESS),
        ("member.remove", "bob", boss, "page", ADDRESS),
    ]
    assert not Membership.objects.filter(project=project, user=bob).exists()
