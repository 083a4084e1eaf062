"""API tokens: stored as digests only, expiring, revocable at once, made by one function."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from feedback_app.accounts.models import ApiToken
from feedback_app.accounts.tokens import token_create

pytestmark = pytest.mark.django_db
URL = "/api/v1/projects/"


def get(key: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(URL)


def test_a_new_token_authenticates_with_the_token_header(make_user):
    created = token_create(user=make_user("ann"), name="script", expiry_days=30)
    assert get(created.key).status_code == 200


def test_the_database_holds_only_a_digest_that_does_not_authenticate(make_user):
    created = token_create(user=make_user("ann"), name="script", expiry_days=0)
    row = ApiToken.objects.values().get(pk=created.token.pk)
    assert created.key not in {str(v) for v in row.values()}  # no column holds the key
    for stored in (row["digest"], row["token_key"]):  # what a dump would show
        response = get(stored)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
    assert get(created.key).status_code == 200


def test_an_expired_token_fails_at_once(make_user):
    created = token_create(user=make_user("ann"), name="script", expiry_days=7)
    assert get(created.key).status_code == 200
    ApiToken.objects.filter(pk=created.token.pk).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )
    response = get(created.key)
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "authorization"


def test_expiry_choices_set_the_expiry_and_zero_never_expires(make_user):
    user = make_user("ann")
    week = token_create(user=user, name="a", expiry_days=7).token
    never = token_create(user=user, name="b", expiry_days=0).token
    assert timedelta(days=6, hours=23) < week.expiry - timezone.now() <= timedelta(days=7)
    assert never.expiry is None


def test_the_api_gives_a_token_for_a_password_once_and_lists_it_without_its_key(make_user):
    make_user("ann")
    client = APIClient()
    response = client.post(
        "/api/v1/auth/tokens/",
        {"username": "ann", "password": "pw-ann", "name": "nightly export", "expiry_days": 30},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "nightly export" and body["expiry"] and not body["expired"]
    listing = APIClient()
    listing.credentials(HTTP_AUTHORIZATION=f"Token {body['key']}")
    tokens = listing.get("/api/v1/auth/tokens/").json()
    assert [t["name"] for t in tokens] == ["nightly export"]
    assert "key" not in tokens[0] and body["key"] not in str(tokens)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "wrong"}, "credentials"),
        ({"name": " "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"expiry_days": 3}, "expiry_days"),
        ({"expiry_days": "soon"}, "expiry_days"),
        ({"username": None}, "username"),
    ],
)
def test_the_token_api_names_the_field_that_is_wrong(make_user, change, field):
    make_user("ann")
    body = {"username": "ann", "password": "pw-ann", "name": "n", "expiry_days": 7} | change
    response = APIClient().post("/api/v1/auth/tokens/", body, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not ApiToken.objects.exists()


def test_revoking_over_the_api_ends_the_token_and_only_ones_own(make_user):
    ann, bob = make_user("ann"), make_user("bob")
    mine = token_create(user=ann, name="a", expiry_days=0)
    other = token_create(user=bob, name="b", expiry_days=0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {mine.key}")
    assert client.delete(f"/api/v1/auth/tokens/{other.token.pk}/").status_code == 404
    assert get(other.key).status_code == 200
    assert client.delete(f"/api/v1/auth/tokens/{mine.token.pk}/").status_code == 204
    assert get(mine.key).status_code == 401


def test_a_deactivated_users_token_fails(make_user):
    user = make_user("ann")
    created = token_create(user=user, name="a", expiry_days=0)
    user.is_active = False
    user.save()
    assert get(created.key).status_code == 401


def test_token_authentication_costs_one_query(make_user, django_assert_num_queries):
    """knox's own class also reads all of the user's tokens each request; ours does not."""
    user = make_user("ann")
    for i in range(3):
        token_create(user=user, name=f"old {i}", expiry_days=7)
    created = token_create(user=user, name="script", expiry_days=7)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {created.key}")
    with django_assert_num_queries(2):  # the token with its user, then the list itself
        assert client.get("/api/v1/auth/tokens/").status_code == 200
