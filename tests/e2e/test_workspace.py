"""A new admin's first hour, in a real browser: create a project, import prompts, invite an
annotator; the annotator follows the link, sets a password, signs in and ranks; the admin sees
the ranking on the loop page and the invitation in the audit log."""

from __future__ import annotations

import json
import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from feedback_app.annotation.models import Ranking
from feedback_app.core.models import AuditEvent, Project

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_creates_imports_invites_and_the_invited_annotator_ranks(
    new_page, live_server, make_user, settings
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    make_user("root", is_staff=True)
    admin = new_page()
    login(admin, live_server, "root", "pw-root")

    # Create the project; the guidelines' live preview comes back through the sanitiser.
    admin.get_by_test_id("new-project").click()
    admin.fill("#id_name", "Fresh")
    admin.fill("#id_candidates_per_task", "3")
    admin.fill("#id_annotations_per_task", "1")
    admin.fill("#id_guidelines", "Prefer **short** answers. <script>alert(1)</script>")
    expect(admin.get_by_test_id("preview").locator("strong")).to_have_text("short")
    expect(admin.get_by_test_id("preview")).to_contain_text("<script>alert(1)</script>")
    admin.get_by_test_id("save").click()
    project = Project.objects.get(name="Fresh")
    admin.wait_for_url(f"{live_server.url}/projects/{project.pk}/members/")

    # Import prompts with candidates.
    lines = [{"prompt": f"Question {i}?", "candidates": ["yes", "no", "maybe"]} for i in range(2)]
    admin.goto(f"{live_server.url}/projects/{project.pk}/import/")
    admin.set_input_files(
        "#id_file",
        files=[{"name": "p.jsonl", "mimeType": "application/json",
                "buffer": "\n".join(json.dumps(x) for x in lines).encode()}],
    )  # fmt: skip
    admin.click("main form button[type=submit]")
    expect(admin.locator(".messages")).to_contain_text("Imported 2 prompts")

    # Invite an annotator by e-mail.
    admin.goto(f"{live_server.url}/projects/{project.pk}/members/")
    admin.fill("#invite_email", "ann@example.com")
    admin.get_by_test_id("invite").locator("button").click()
    expect(admin.get_by_test_id("member-ann")).to_contain_text("invited")
    (message,) = mail.outbox
    link = re.search(r"http://\S+/invitation/\S+", message.body)[0]

    # The annotator sets a password through the link, signs in and ranks.
    annotator = new_page()
    annotator.goto(link)
    annotator.fill("#id_new_password1", "correct horse battery")
    annotator.fill("#id_new_password2", "correct horse battery")
    annotator.get_by_test_id("set-password").locator("button").click()
    annotator.wait_for_url(f"{live_server.url}/accounts/login/")
    login(annotator, live_server, "ann", "correct horse battery")
    annotator.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    expect(annotator.locator("#rank-form.js")).to_have_count(1)
    for key in ["2", "1"]:
        annotator.keyboard.press(key)
    annotator.keyboard.press("Enter")
    expect(annotator.get_by_test_id("progress")).to_contain_text("1 done")
    assert Ranking.objects.filter(annotator__username="ann", task__project=project).count() == 1

    # The admin sees the ranking on the loop page, and the invitation in the audit log.
    admin.goto(f"{live_server.url}/projects/{project.pk}/loop/")
    expect(admin.get_by_test_id("since-snapshot")).to_have_text("1")
    events = {e.action: e for e in AuditEvent.objects.filter(project=project)}
    assert {"project.create", "invitation.send"} <= set(events)
    assert events["invitation.send"].actor_name == "root"
    assert events["invitation.send"].data["email"] == "ann@example.com"
    accepted = AuditEvent.objects.get(action="invitation.accept")
    assert (accepted.actor_name, accepted.via) == ("ann", "page")
    admin.goto(f"{live_server.url}/audit/?action=invitation")  # the accept names no project
    rows = admin.get_by_test_id("audit-event")
    expect(
        rows.filter(has_text="invitation.send").filter(has_text="ann@example.com")
    ).to_have_count(1)
    expect(rows.filter(has_text="invitation.accept")).to_have_count(1)
