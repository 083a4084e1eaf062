"""A password change or reset ends the user's other sessions and, by their choice on the
account page, their API tokens; each is in the audit log (issue 26)."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from rest_framework.test import APIClient

from feedback_app.accounts.models import ApiToken
from feedback_app.accounts.tokens import token_create
from feedback_app.core.models import AuditEvent

pytestmark = pytest.mark.django_db
NEW = "a-long-new-pass"


def _signed_in(username: str) -> Client:
    client = Client()
    login = {"username": username, "password": f"pw-{username}"}
    assert client.post("/accounts/login/", login).status_code == 302
    return client


def _sessions_of(user) -> int:
    return sum(s.get_decoded().get("_auth_user_id") == str(user.pk) for s in Session.objects.all())


def _api_ok(key: str) -> bool:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/v1/projects/").status_code == 200


def _change(client: Client, **extra) -> object:
    body = {"old_password": "pw-ann", "new_password1": NEW, "new_password2": NEW, **extra}
    return client.post("/account/password/", body)


def test_a_password_change_ends_the_other_sessions_keeps_this_one_and_is_audited(make_user):
    ann = make_user("ann")
    here, elsewhere, phone = _signed_in("ann"), _signed_in("ann"), _signed_in("ann")
    other_user = _signed_in(make_user("bob").username)
    key = token_create(user=ann, name="ci", expiry_days=0).key
    assert _sessions_of(ann) == 3
    response = _change(here)
    assert response.status_code == 302
    assert "2 other sessions ended" in here.get("/account/").content.decode()
    assert _sessions_of(ann) == 1  # the rows are gone, not only unusable
    assert here.get("/account/").status_code == 200
    for client in (elsewhere, phone):
        assert client.get("/account/").status_code == 302  # to the login page
    assert other_user.get("/account/").status_code == 200
    assert _api_ok(key)  # tokens stay unless asked
    event = AuditEvent.objects.get(action="account.password")
    assert (event.actor, event.target, event.via) == (ann, "ann", "page")
    assert event.data == {"user_id": ann.pk, "how": "account page", "sessions_ended": 2,
                          "tokens_revoked": 0}  # fmt: skip


def test_the_checkbox_on_the_page_also_revokes_every_api_token(make_user):
    ann = make_user("ann")
    keys = [token_create(user=ann, name=f"t{i}", expiry_days=0).key for i in range(2)]
    bobs = token_create(user=make_user("bob"), name="b", expiry_days=0).key
    here = _signed_in("ann")
    assert "Also revoke all my API tokens" in here.get("/account/").content.decode()
    assert _change(here, revoke_tokens="on").status_code == 302
    assert not any(_api_ok(k) for k in keys) and _api_ok(bobs)
    assert not ApiToken.objects.filter(user=ann).exists()
    assert AuditEvent.objects.get(action="account.password").data["tokens_revoked"] == 2


def test_a_refused_change_ends_nothing_and_records_nothing(make_user):
    ann = make_user("ann")
    here, elsewhere = _signed_in("ann"), _signed_in("ann")
    token_create(user=ann, name="ci", expiry_days=0)
    response = _change(here, old_password="wrong", revoke_tokens="on")
    assert response.status_code == 400
    assert elsewhere.get("/account/").status_code == 200 and ApiToken.objects.filter(user=ann)
    assert not AuditEvent.objects.filter(action="account.password").exists()


def test_a_reset_in_the_django_admin_ends_the_users_sessions_and_is_audited(make_user):
    ann = make_user("ann")
    root = make_user("root", is_staff=True, is_superuser=True)
    theirs = _signed_in("ann")
    admin = Client()
    admin.force_login(root)
    url = f"/admin/auth/user/{ann.pk}/password/"
    response = admin.post(url, {"password1": NEW, "password2": NEW, "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert theirs.get("/account/").status_code == 302 and _sessions_of(ann) == 0
    assert admin.get("/admin/").status_code == 200  # the admin's own session is untouched
    event = AuditEvent.objects.get(action="account.password")
    assert (event.actor, event.target) == (root, "ann")
    assert event.data["how"] == "admin" and event.data["sessions_ended"] == 1
