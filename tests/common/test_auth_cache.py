import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached_users(settings):
    settings.CACHE_SIGNED_IN_USERS = True
    cache.clear()
    yield
    cache.clear()


def _user_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    return response, [q for q in ctx.captured_queries if 'FROM "auth_user"' in q["sql"]]


def test_signed_in_user_is_read_from_the_cache_after_the_first_request(client, alice, cached_users):
    client.force_login(alice)
    first, loaded = _user_queries(client, reverse("home"))
    second, again = _user_queries(client, reverse("home"))
    assert first.status_code == second.status_code == 200
    assert len(loaded) == 1 and again == []


def test_a_deactivated_user_is_signed_out_at_the_next_request(client, alice, cached_users):
    client.force_login(alice)
    assert client.get(reverse("home")).status_code == 200
    alice.is_active = False
    alice.save()
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_password_change_ends_other_sessions_at_the_next_request(client, alice, cached_users):
    client.force_login(alice)
    assert client.get(reverse("home")).status_code == 200
    alice.set_password("a-new-password-123")
    alice.save()
    assert client.get(reverse("home")).status_code == 302


def test_without_a_shared_cache_the_user_is_read_from_the_database_each_time(
    client, alice, settings
):
    settings.CACHE_SIGNED_IN_USERS = False  # what settings choose without REDIS_URL
    client.force_login(alice)
    _user_queries(client, reverse("home"))
    _, again = _user_queries(client, reverse("home"))
    assert len(again) == 1
