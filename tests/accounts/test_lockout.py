"""Failed logins lock an account and an address (django-axes), on the page and the API, and
an admin lifts the lockout."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
LIMIT = 3
TOKENS = "/api/v1/auth/tokens/"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_ENABLED = True


def page_login(username: str, password: str, address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": username, "password": password}
    )


def api_token(username: str, password: str, address: str = "10.0.0.1"):
    body = {"username": username, "password": password, "name": "n", "expiry_days": 7}
    return APIClient(REMOTE_ADDR=address).post(TOKENS, body, format="json")


def assert_locked_page(response) -> None:
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert int(response["Retry-After"]) > 0


def assert_locked_api(response) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["field"] == "credentials" and "too many failed logins" in error["message"]
    assert int(response["Retry-After"]) > 0


def test_the_login_page_locks_an_account_after_the_limit_even_for_the_right_password(make_user):
    make_user("ann")
    for _ in range(LIMIT - 1):
        assert page_login("ann", "wrong").status_code == 200  # the form, with its error
    assert_locked_page(page_login("ann", "wrong"))
    assert_locked_page(page_login("ann", "pw-ann", address="10.9.9.9"))  # per account


def test_the_login_page_locks_an_address_trying_many_accounts(make_user):
    make_user("zed")
    for name in ("a1", "a2", "a3"):
        page_login(name, "guess")
    assert_locked_page(page_login("zed", "pw-zed"))  # same address, another account
    assert page_login("zed", "pw-zed", address="10.0.0.2").status_code == 302


def test_a_login_below_the_limit_succeeds_and_forgets_the_failures(make_user):
    make_user("ann")
    for _ in range(LIMIT - 1):
        page_login("ann", "typo")
    assert page_login("ann", "pw-ann").status_code == 302
    for _ in range(LIMIT - 1):
        page_login("ann", "typo")
    assert page_login("ann", "pw-ann").status_code == 302


def test_the_api_token_endpoint_counts_failures_and_answers_429_in_json(make_user):
    make_user("ann")
    for _ in range(LIMIT - 1):
        assert api_token("ann", "wrong").status_code == 400
    assert_locked_api(api_token("ann", "wrong"))
    assert_locked_api(api_token("ann", "pw-ann", address="10.9.9.9"))
    assert_locked_page(page_login("ann", "pw-ann"))  # one count for page and API


def test_manage_py_axes_reset_username_lifts_the_lockout(make_user):
    make_user("ann")
    for _ in range(LIMIT):
        api_token("ann", "wrong", address=f"10.0.1.{_}")
    assert_locked_api(api_token("ann", "pw-ann", address="10.0.2.1"))
    call_command("axes_reset_username", "ann")
    assert api_token("ann", "pw-ann", address="10.0.2.1").status_code == 201


def test_an_admin_lifts_the_lockout_in_the_django_admin(make_user):
    from axes.models import AccessAttempt

    make_user("ann")
    for _ in range(LIMIT):
        page_login("ann", "wrong", address=f"10.0.1.{_}")
    assert_locked_page(page_login("ann", "pw-ann", address="10.0.2.1"))
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    changelist = "/admin/axes/accessattempt/"
    assert "ann" in admin.get(changelist).content.decode()
    ids = [
        str(pk) for pk in AccessAttempt.objects.filter(username="ann").values_list("pk", flat=True)
    ]
    response = admin.post(
        changelist, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert response.status_code == 302
    assert page_login("ann", "pw-ann", address="10.0.2.1").status_code == 302


def test_behind_a_proxy_the_configured_header_names_the_address(settings, make_user):
    settings.LOGIN_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    make_user("zed")
    proxy = "172.16.0.1"
    for name in ("a1", "a2", "a3"):  # one client behind the proxy tries many accounts
        Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="1.1.1.1, 10.0.0.7").post(
            "/accounts/login/", {"username": name, "password": "guess"}
        )
    other_client = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="10.0.0.8")
    response = other_client.post("/accounts/login/", {"username": "zed", "password": "pw-zed"})
    assert response.status_code == 302  # the proxy's address is not locked for everyone
    locked = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="9.9.9.9, 10.0.0.7")
    assert_locked_page(locked.post("/accounts/login/", {"username": "zed", "password": "pw-zed"}))


def _locked_out(username: str) -> None:
    for n in range(LIMIT):
        page_login(username, "wrong", address=f"10.0.3.{n}")


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("axes_reset", []),
        ("axes_reset_username", ["ann"]),
        ("axes_reset_ip", ["10.0.3.0", "10.0.3.1", "10.0.3.2"]),
        ("axes_reset_ip_username", ["10.0.3.0", "ann"]),
    ],
)
def test_every_axes_reset_command_lifts_and_records_each_lift(make_user, command, args):
    from axes.models import AccessAttempt

    from feedback_app.core.models import AuditEvent

    make_user("ann")
    _locked_out("ann")
    lifted = AccessAttempt.objects.count() if command != "axes_reset_ip_username" else 1
    call_command(command, *args, stdout=open("/dev/null", "w"))  # noqa: SIM115
    events = AuditEvent.objects.filter(action="lockout.lift")
    assert events.count() == lifted
    assert {(e.via, e.actor, e.data["username"]) for e in events} == {("cli", None, "ann")}


def test_a_lift_in_the_admin_is_recorded_once(make_user):
    from axes.models import AccessAttempt

    from feedback_app.core.models import AuditEvent

    make_user("ann")
    _locked_out("ann")
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    attempt = AccessAttempt.objects.first()
    response = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    (event,) = AuditEvent.objects.filter(action="lockout.lift")
    assert event.via == "page" and event.actor.username == "root"


def test_old_login_records_and_expired_attempts_are_pruned_by_the_sweeper(make_user, settings):
    """axes keeps a row per login forever: the sweeper prunes them on a schedule."""
    from datetime import timedelta

    from axes.models import AccessAttempt, AccessLog
    from django.utils import timezone

    from feedback_app.core.models import AuditEvent

    settings.LOGIN_RECORDS_KEEP_DAYS = 30
    make_user("ann")
    make_user("bob")
    for _ in range(2):
        page_login("ann", "pw-ann")
    _locked_out("bob")
    assert AccessLog.objects.count() == 2
    old = timezone.now() - timedelta(days=31)
    AccessLog.objects.filter(pk=AccessLog.objects.first().pk).update(attempt_time=old)
    AccessAttempt.objects.update(attempt_time=old)  # long past the cool-off
    call_command("sweep_jobs", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert AccessLog.objects.count() == 1 and not AccessAttempt.objects.exists()
    (event,) = AuditEvent.objects.filter(action="lockout.prune")
    assert event.data["logins"] == 1 and event.data["expired_attempts"] == 3
    call_command("sweep_jobs", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert AuditEvent.objects.filter(action="lockout.prune").count() == 1  # nothing more to do
