"""The account page: change one's password, create (shown once), list and revoke tokens."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from feedback_app.accounts.models import ApiToken
from feedback_app.accounts.tokens import token_create

pytestmark = pytest.mark.django_db
PAGE = "/account/"
KEY = re.compile(r'data-testid="token-key">([0-9a-f]{64})<')


@pytest.fixture
def ann(make_user):
    return make_user("ann")


@pytest.fixture
def client(ann) -> Client:
    client = Client()
    client.force_login(ann)
    return client


def api_status(key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/v1/projects/").status_code


def test_the_page_needs_a_login():
    response = Client().get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_token_made_on_the_page_is_shown_once_and_then_listed_without_its_key(client):
    response = client.post("/account/tokens/", {"name": "nightly export", "expiry_days": "30"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    [key] = KEY.findall(response.content.decode())
    assert api_status(key) == 200
    again = client.get(PAGE).content.decode()
    assert "nightly export" in again and key not in again and key[:8] in again


def test_a_token_without_a_name_is_refused_with_the_reason(client):
    response = client.post("/account/tokens/", {"name": "  ", "expiry_days": "30"})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoke_on_the_page_ends_the_token_and_reaches_only_ones_own(client, ann, make_user):
    mine = token_create(user=ann, name="mine", expiry_days=0)
    theirs = token_create(user=make_user("bob"), name="theirs", expiry_days=0)
    assert "theirs" not in client.get(PAGE).content.decode()
    assert client.post(f"/account/tokens/{theirs.token.pk}/revoke/").status_code == 404
    assert api_status(theirs.key) == 200
    response = client.post(f"/account/tokens/{mine.token.pk}/revoke/")
    assert response.status_code == 302
    assert api_status(mine.key) == 401


def test_a_password_change_needs_the_old_password_and_keeps_this_session(client):
    wrong = client.post(
        "/account/password/",
        {
            "old_password": "nope",
            "new_password1": "a-long-new-pass",
            "new_password2": "a-long-new-pass",
        },
    )
    assert wrong.status_code == 400 and "incorrectly" in wrong.content.decode()
    response = client.post(
        "/account/password/",
        {
            "old_password": "pw-ann",
            "new_password1": "a-long-new-pass",
            "new_password2": "a-long-new-pass",
        },
    )
    assert response.status_code == 302
    assert client.get(PAGE).status_code == 200  # still signed in
    login = Client().post("/accounts/login/", {"username": "ann", "password": "a-long-new-pass"})
    assert login.status_code == 302


def test_the_forms_need_the_csrf_token(ann):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ann)
    assert client.post("/account/tokens/", {"name": "x", "expiry_days": "7"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_every_page_links_to_the_account_page(client):
    assert 'href="/account/"' in client.get("/").content.decode()
