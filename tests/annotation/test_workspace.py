"""Projects and members as services and pages: create, edit, archive, members, invitations,
deactivation, each written to the audit log; the rules that protect data hold on every path."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from feedback_app.annotation import handout, submit
from feedback_app.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from feedback_app.core.audit import Origin
from feedback_app.core.models import AuditEvent, Membership, Project
from feedback_app.workspace import members, projects

pytestmark = pytest.mark.django_db


def bare(name: str = "P", annotators=()) -> Project:
    """A project without tasks (K may still change)."""
    project = Project.objects.create(name=name, candidates_per_task=3, annotations_per_task=2)
    for user in annotators:
        Membership.objects.create(project=project, user=user)
    return project


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True)


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


# --- services --------------------------------------------------------------------------------


def test_project_create_stores_the_settings_and_records_who_did_it(root):
    project = projects.project_create(
        data={"name": "P", "candidates_per_task": 3, "lease_seconds": 120,
              "generation": {"temperature": 0.5, "stop": ["\n"]}},
        origin=Origin(root),
    )  # fmt: skip
    assert (project.candidates_per_task, project.lease_seconds) == (3, 120)
    assert project.generation == {"temperature": 0.5, "stop": ["\n"]}
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.project) == ("project.create", root, project)


def test_new_projects_lease_for_the_deployments_default_length(settings):
    settings.ANNOTATION_LEASE_SECONDS = 321
    assert projects.project_create(data={"name": "L"}).lease_seconds == 321


def test_k_cannot_change_once_tasks_exist_and_the_message_says_why(make_project, root):
    project = make_project(k=3, n_tasks=2)
    with pytest.raises(InvalidInput) as caught:
        projects.project_update(
            project=project, data={"candidates_per_task": 4}, origin=Origin(root)
        )
    assert caught.value.field == "candidates_per_task"
    assert "fixed once the project has tasks" in str(caught.value)
    project.refresh_from_db()
    assert project.candidates_per_task == 3 and actions() == []


def test_update_logs_what_each_setting_was_and_became(make_project, root):
    project = make_project(n_tasks=1)
    projects.project_update(
        project=project,
        data={"annotations_per_task": 5, "guidelines": "Be kind."},
        origin=Origin(root),
    )
    changed = AuditEvent.objects.get(action="project.update").data["changed"]
    assert changed["annotations_per_task"] == [2, 5]
    assert changed["guidelines"][1] == "Be kind."  # texts over 200 characters are cut


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"lease_seconds": 5}, "lease_seconds"),
        ({"annotations_per_task": 0}, "annotations_per_task"),
        ({"generation": {"temperature": -1}}, "generation.temperature"),
        ({"generation": {"beam": 2}}, "generation.beam"),
        ({"generation": []}, "generation"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "Taken"}, "name"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(make_project, data, field):
    bare(name="Taken")
    project = bare(name="Mine")
    with pytest.raises(InvalidInput) as caught:
        projects.project_update(project=project, data=data)
    assert caught.value.field == field


def test_the_base_model_is_checked_by_loading_its_config_and_tokenizer(tiny_policy, make_project):
    project = bare()
    projects.project_update(project=project, data={"base_model": tiny_policy})
    assert Project.objects.get(pk=project.pk).base_model == tiny_policy
    for bad in ("/no/such/model", "nobody/not-in-the-offline-cache"):
        with pytest.raises(InvalidInput) as caught:
            projects.project_update(project=project, data={"base_model": bad})
        assert caught.value.field == "base_model"
    assert Project.objects.get(pk=project.pk).base_model == tiny_policy


def test_an_archived_project_hands_out_nothing_takes_nothing_and_is_restorable(make_project, alice):
    project = make_project(annotators=[alice], n_tasks=2)
    held = handout.task_assign_next(project=project, annotator=alice)
    projects.project_archive(project=project, origin=Origin())
    project.refresh_from_db()
    assert handout.task_assign_next(project=project, annotator=alice) is None
    ids = [[c.pk] for c in held.task.candidates.all()]
    with pytest.raises(Conflict):
        submit.ranking_submit(task_id=held.task_id, annotator=alice, groups=ids)
    with pytest.raises(Conflict):
        projects.project_update(project=project, data={"guidelines": "x"})
    with pytest.raises(Conflict):
        members.invitation_send(project=project, email="x@example.com", role="annotator")
    projects.project_archive(project=project, archived=False, origin=Origin())
    project.refresh_from_db()
    assert handout.task_assign_next(project=project, annotator=alice) is not None
    assert actions() == ["project.archive", "project.restore"]


def test_the_lease_lasts_as_long_as_the_project_says(make_project, alice):
    project = make_project(annotators=[alice], n_tasks=1)
    projects.project_update(project=project, data={"lease_seconds": 90})
    project.refresh_from_db()
    lease = handout.task_assign_next(project=project, annotator=alice)
    assert round((lease.expires_at - lease.leased_at).total_seconds()) == 90


def test_generate_jobs_take_the_projects_generation_defaults_unless_they_set_their_own(
    make_project,
):
    from feedback_app.finetuning.params import check_generate
    from feedback_app.finetuning.versions import model_register

    project = bare()
    model_register(project=project, kind="policy", name="base", weights="/nowhere")
    projects.project_update(project=project, data={"generation": {"temperature": 0.3, "seed": 7}})
    project.refresh_from_db()
    params = check_generate(project, {})
    assert (params["temperature"], params["seed"]) == (0.3, 7)
    assert check_generate(project, {"temperature": 0.9})["temperature"] == 0.9


def test_the_base_model_becomes_the_first_policy_when_a_job_is_launched(make_project):
    from feedback_app.core.models import ModelVersion
    from feedback_app.finetuning.services import job_launch

    project = bare()
    Project.objects.filter(pk=project.pk).update(base_model="/some/base")
    project.refresh_from_db()
    job_launch(project=project, kind="generate", params={})
    base = ModelVersion.objects.get(project=project)
    assert (base.weights, base.is_active, base.stage) == ("/some/base", True, "base")


def test_members_are_added_changed_and_removed_and_their_rankings_stay(make_project, alice, bob):
    project = make_project(annotators=[alice], n_tasks=2, overlap=1)
    lease = handout.task_assign_next(project=project, annotator=alice)
    ids = sorted(c.pk for c in lease.task.candidates.all())
    submit.ranking_submit(task_id=lease.task_id, annotator=alice, groups=[[i] for i in ids])
    by = Origin()  # the system: recorded without a person
    m = members.member_add(
        project=project, user=members.user_find("bob"), role="annotator", origin=by
    )
    with pytest.raises(Conflict):
        members.member_add(project=project, user=bob, role="admin")
    members.member_role_set(membership=m, role="admin", origin=by)
    alice_m = Membership.objects.get(project=project, user=alice)
    members.member_remove(membership=alice_m, origin=by)
    assert project.tasks.filter(rankings__annotator=alice).count() == 1
    assert actions() == ["member.add", "member.role", "member.remove"]
    with pytest.raises(InvalidInput):
        members.user_find("nobody")


def test_an_invitation_mails_a_one_time_link_that_sets_the_password(
    client, root, django_capture_on_commit_callbacks
):
    project = bare()
    with django_capture_on_commit_callbacks(execute=True):
        m = members.invitation_send(
            project=project, email="new.person@example.com", role="annotator", origin=Origin(root)
        )
    assert (m.user.username, m.user.has_usable_password()) == ("new.person", False)
    (message,) = mail.outbox
    link = re.search(r"/invitation/\S+", message.body)[0]
    page = client.get(link, follow=True)
    assert page.status_code == 200 and page.context["validlink"]
    form_url = page.redirect_chain[-1][0]
    client.post(
        form_url, {"new_password1": "a long pass phrase", "new_password2": "a long pass phrase"}
    )
    m.user.refresh_from_db()
    assert m.user.check_password("a long pass phrase")
    again = client.get(link, follow=True)
    assert not again.context["validlink"]  # spent with the password
    assert actions() == ["invitation.send", "invitation.accept"]
    assert "a long pass phrase" not in str(AuditEvent.objects.values_list("data", flat=True))


def _invite(project, email, origin, capture):
    with capture(execute=True):
        m = members.invitation_send(project=project, email=email, role="annotator", origin=origin)
    link = re.search(r"/invitation/\S+", mail.outbox[-1].body)[0]
    return m, link


def test_a_revoked_invitation_link_answers_revoked_and_sets_nothing(
    client, root, django_capture_on_commit_callbacks
):
    project = bare()
    m, link = _invite(project, "gone@example.com", Origin(root), django_capture_on_commit_callbacks)
    members.invitation_revoke(membership=m, origin=Origin(root))
    page = client.get(link, follow=True)
    assert page.status_code == 410 and "was revoked" in page.content.decode()
    form_url = link.replace(link.rstrip("/").rsplit("/", 1)[1], "set-password")
    posted = client.post(
        form_url, {"new_password1": "a long pass phrase", "new_password2": "a long pass phrase"}
    )
    assert posted.status_code == 410
    m.user.refresh_from_db()
    assert not m.user.has_usable_password() and not m.user.is_active
    assert not Membership.objects.filter(user=m.user).exists()
    assert actions() == ["invitation.send", "invitation.revoke"]
    event = AuditEvent.objects.get(action="invitation.revoke")
    assert (event.actor, event.project, event.target) == (root, project, "gone")
    assert event.data["link_stopped"] is True
    # Invited again: the same account comes back with a fresh link that works.
    again, fresh = _invite(
        project, "gone@example.com", Origin(root), django_capture_on_commit_callbacks
    )
    assert again.user.pk == m.user.pk and again.user.is_active
    assert client.get(fresh, follow=True).context["validlink"]
    assert client.get(link).status_code != 410  # the old link: merely spent now, not revoked
    assert not client.get(link, follow=True).context["validlink"]


def test_an_invitation_is_revoked_only_while_pending_and_only_by_an_admin(
    make_user, alice, root, django_capture_on_commit_callbacks
):
    project = bare(annotators=[alice])
    with pytest.raises(Conflict) as caught:
        members.invitation_revoke(
            membership=Membership.objects.get(user=alice), origin=Origin(root)
        )
    assert caught.value.problems[0].field == "user" and "remove them" in str(caught.value)
    m, _ = _invite(project, "x@example.com", Origin(root), django_capture_on_commit_callbacks)
    with pytest.raises(NotFound):
        members.invitation_revoke(membership=m, origin=Origin(alice, AuditEvent.Via.PAGE))
    assert Membership.objects.filter(pk=m.pk).exists()
    assert actions() == ["invitation.send"]


def test_revoking_one_of_two_invitations_keeps_the_link_for_the_other_project(
    client, root, django_capture_on_commit_callbacks
):
    a, b = bare("A"), bare("B")
    m, _ = _invite(a, "two@example.com", Origin(root), django_capture_on_commit_callbacks)
    _, link = _invite(b, "two@example.com", Origin(root), django_capture_on_commit_callbacks)
    members.invitation_revoke(membership=m, origin=Origin(root))
    assert client.get(link, follow=True).context["validlink"]
    assert list(Membership.objects.filter(user=m.user).values_list("project", flat=True)) == [b.pk]
    assert AuditEvent.objects.get(action="invitation.revoke").data["link_stopped"] is False


def test_inviting_an_address_that_has_an_account_asks_to_add_it_instead(make_project, make_user):
    make_user("carla", email="carla@example.com")
    project = bare()
    with pytest.raises(Conflict) as caught:
        members.invitation_send(project=project, email="carla@example.com", role="annotator")
    assert "add carla" in str(caught.value)
    with pytest.raises(InvalidInput):
        members.invitation_send(project=project, email="not an address", role="annotator")
    assert not mail.outbox


def test_who_may_deactivate_whom(make_project, make_user, alice, bob, root):
    a = bare(name="A", annotators=[alice])
    b = bare(name="B", annotators=[alice, bob])
    admin_a = make_user("admin_a")
    Membership.objects.create(project=a, user=admin_a, role="admin")
    # alice is in B too, which admin_a does not administer: only staff may lock her out.
    with pytest.raises(NotAllowed):
        members.account_deactivate(user=alice, origin=Origin(admin_a))
    Membership.objects.create(project=b, user=admin_a, role="admin")
    members.account_deactivate(user=alice, origin=Origin(admin_a))
    with pytest.raises(NotAllowed):
        members.account_deactivate(user=admin_a, origin=Origin(admin_a))  # not oneself
    with pytest.raises(NotAllowed):
        members.account_deactivate(user=root, origin=Origin(admin_a))  # not staff
    members.account_deactivate(user=admin_a, origin=Origin(root))
    alice.refresh_from_db()
    assert not alice.is_active
    assert actions() == ["account.deactivate", "account.deactivate"]


def test_a_deactivated_account_is_signed_out_and_its_tokens_stop(make_project, alice, root, client):
    from rest_framework.test import APIClient

    from feedback_app.accounts.tokens import token_create

    make_project(annotators=[alice], n_tasks=1)
    key = token_create(user=alice, name="script", expiry_days=0).key
    client.force_login(alice)
    members.account_deactivate(user=alice, origin=Origin(root))
    assert client.get(reverse("home")).status_code == 302  # to the login page
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/projects/").status_code == 401


# --- pages ----------------------------------------------------------------------------------


def test_staff_create_a_project_on_the_page_and_land_on_its_members(client, root):
    client.force_login(root)
    data = {"name": "Made here", "guidelines": "# Hi", "candidates_per_task": "3",
            "annotations_per_task": "2", "rationale": "optional", "gold_rate": "0",
            "lease_seconds": "600", "base_model": "", "temperature": "0.7"}  # fmt: skip
    response = client.post(reverse("workspace:project-new"), data)
    project = Project.objects.get(name="Made here")
    assert response.url == reverse("workspace:members", args=[project.pk])
    assert project.generation == {"temperature": 0.7} and project.lease_seconds == 600


def test_the_settings_page_sets_active_selection_and_adaptive_overlap(client, make_project, root):
    project = make_project(k=3, n_tasks=1)
    client.force_login(root)
    url = reverse("workspace:settings", args=[project.pk])
    form = client.get(url).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None and k != "id"}
    data.update(generation="", active_selection="on", annotations_max="4")
    assert client.post(url, data).status_code == 302
    project.refresh_from_db()
    assert (project.active_selection, project.annotations_max) == (True, 4)
    data.pop("active_selection")
    data["annotations_max"] = ""
    assert client.post(url, data).status_code == 302
    project.refresh_from_db()
    assert (project.active_selection, project.annotations_max) == (False, 0)


def test_the_settings_page_shows_the_k_rule_on_the_field_and_saves_nothing(
    client, make_project, root
):
    project = make_project(k=3, n_tasks=1)
    client.force_login(root)
    url = reverse("workspace:settings", args=[project.pk])
    form = client.get(url).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None and k != "id"}
    data.update(candidates_per_task="4", generation="")
    response = client.post(url, data)
    assert response.status_code == 400
    assert "fixed once the project has tasks" in str(response.context["form"].errors)
    assert Project.objects.get(pk=project.pk).candidates_per_task == 3


def test_the_preview_button_renders_the_guidelines_through_the_sanitiser_without_saving(
    client, make_project, root
):
    project = bare()
    client.force_login(root)
    data = {"name": project.name, "guidelines": "**bold** <script>alert(1)</script>",
            "candidates_per_task": "3", "annotations_per_task": "2", "rationale": "optional",
            "gold_rate": "0", "lease_seconds": "900", "preview": "1"}  # fmt: skip
    body = client.post(reverse("workspace:settings", args=[project.pk]), data).content.decode()
    assert "<strong>bold</strong>" in body and "<script>alert" not in body
    assert Project.objects.get(pk=project.pk).guidelines == ""
    live = client.post(reverse("workspace:preview"), {"guidelines": "_x_ <b onclick=1>"})
    assert live.content.decode().strip() == "<p><em>x</em> &lt;b onclick=1&gt;</p>"


def test_annotators_and_strangers_reach_no_settings_or_members_page(client, make_project, alice):
    project = bare(annotators=[alice])
    client.force_login(alice)
    for name in ("settings", "members"):
        assert client.get(reverse(f"workspace:{name}", args=[project.pk])).status_code == 404
    assert client.post(reverse("workspace:archive", args=[project.pk])).status_code == 404
    assert client.get(reverse("workspace:project-new")).status_code == 403
    assert client.post(reverse("workspace:preview"), {"guidelines": "x"}).status_code == 403


def test_admins_manage_members_on_the_page(
    client, make_user, alice, django_capture_on_commit_callbacks
):
    project = bare()
    boss = make_user("boss")
    Membership.objects.create(project=project, user=boss, role="admin")
    client.force_login(boss)
    url = reverse("workspace:members", args=[project.pk])
    assert client.post(url, {"user": "alice", "role": "annotator", "add": "1"}).status_code == 302
    response = client.post(url, {"user": "nobody", "role": "annotator", "add": "1"})
    assert response.status_code == 400 and "invite them instead" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"email": "z@example.com", "role": "annotator", "invite": "1"})
    member = reverse("workspace:member", args=[project.pk, alice.pk])
    client.post(member, {"role": "admin"})
    assert Membership.objects.get(project=project, user=alice).role == "admin"
    client.post(member, {"remove": "1"})
    assert not Membership.objects.filter(project=project, user=alice).exists()
    assert len(mail.outbox) == 1
    assert actions() == ["member.add", "invitation.send", "member.role", "member.remove"]
    invited = Membership.objects.get(project=project, user__email="z@example.com")
    page = client.get(url).content.decode()
    assert "Revoke invitation" in page
    client.post(reverse("workspace:member", args=[project.pk, invited.user_id]), {"revoke": "1"})
    assert not Membership.objects.filter(pk=invited.pk).exists()
    assert actions()[-1] == "invitation.revoke"


def test_archived_projects_leave_the_home_page_and_are_listed_apart(client, make_project, root):
    project = bare()
    client.force_login(root)
    client.post(reverse("workspace:archive", args=[project.pk]), {"archive": "1"})
    assert project not in client.get(reverse("home")).context["projects"]
    assert project in client.get(reverse("home") + "?archived=1").context["projects"]
    client.post(reverse("workspace:archive", args=[project.pk]), {"restore": "1"})
    assert project in client.get(reverse("home")).context["projects"]


def test_the_loop_pages_generate_form_starts_from_the_projects_generation_defaults():
    from feedback_app.finetuning.forms import GenerateForm

    project = projects.project_update(project=bare(), data={"generation": {"temperature": 0.25}})
    assert GenerateForm(project=project).fields["temperature"].initial == 0.25
