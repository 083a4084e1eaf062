"""The audit log's writer and its append-only rule."""

import re

import pytest
from django.test import RequestFactory

from feedback_app.core.audit import Origin, record
from feedback_app.core.models import AuditEvent, Project

pytestmark = pytest.mark.django_db


def test_record_takes_actor_address_and_interface_from_the_request(django_user_model):
    admin = django_user_model.objects.create_user("ada", password="x")
    project = Project.objects.create(name="p")
    request = RequestFactory().post("/api/v1/projects/", REMOTE_ADDR="10.1.2.3")
    request.user = admin
    event = record("project.update", origin=Origin.of(request), project=project, data={"k": [4, 3]})
    assert (event.actor, event.actor_name, event.via, event.address) == (
        admin,
        "ada",
        "api",
        "10.1.2.3",
    )
    page = RequestFactory().post("/projects/1/settings/")
    page.user = admin
    assert record("project.update", origin=Origin.of(page)).via == "page"
    assert record("job.launch").via == "system"


def test_audit_events_cannot_be_changed_or_deleted():
    event = record("token.create", target="laptop")
    event.action = "token.revoke"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "token.create"


def _raw(sql: str, *params) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_database_itself_refuses_to_change_an_event(django_user_model):
    """Past the ORM (raw SQL, another program): a trigger refuses, on both backends; PostgreSQL
    refuses a DELETE too (SQLite's test flush deletes rows, so there it is the ORM's rule)."""
    from django.db import DatabaseError, connection, transaction

    event = record("job.launch", data={"kind": "generate"})
    user = django_user_model.objects.create_user("mallory")
    table = AuditEvent._meta.db_table
    changes = ["action = 'x'", "data = '{}'", "address = '10.0.0.1'", f"actor_id = {user.pk}",
               "actor_name = 'mallory'", "created_at = created_at"]  # fmt: skip
    for change in changes[:-1]:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            _raw(f"UPDATE {table} SET {change} WHERE id = %s", event.pk)
    _raw(f"UPDATE {table} SET {changes[-1]} WHERE id = %s", event.pk)  # the same: allowed
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            _raw(f"DELETE FROM {table} WHERE id = %s", event.pk)
    got = AuditEvent.objects.get(pk=event.pk)
    assert (got.action, got.data, got.address, got.actor_id) == (
        "job.launch", {"kind": "generate"}, None, None,
    )  # fmt: skip


def test_an_event_outlives_the_account_and_the_project_it_names(django_user_model):
    """Removing a user or a project clears the link (the one change the trigger allows) and
    keeps the event, with the name the actor had."""
    ada = django_user_model.objects.create_user("ada")
    project = Project.objects.create(name="gone")
    event = record("project.update", origin=Origin(ada), project=project, target="gone")
    ada.delete()
    project.delete()
    got = AuditEvent.objects.get(pk=event.pk)
    assert (got.actor_id, got.actor_name, got.project_id, got.target) == (None, "ada", None, "gone")


def test_changes_name_each_changed_field_and_cut_long_text():
    from feedback_app.core.audit import VALUE_MAX, changes

    assert changes({"name": "A", "k": 3}, {"name": "B", "k": 3}) == {"name": ["A", "B"]}
    old, new = changes({"g": ""}, {"g": "x" * (VALUE_MAX + 1)})["g"]
    assert old == "" and new == "x" * VALUE_MAX + f"… ({VALUE_MAX + 1} characters)"


def test_an_action_or_an_area_filters_the_log():
    from feedback_app.core.audit import action_lookup

    for action in ("job.launch", "job.cancel", "jobs.x", "token.create"):
        record(action)
    names = lambda value: sorted(AuditEvent.objects.filter(action_lookup(value)).values_list(  # noqa: E731
        "action", flat=True))  # fmt: skip
    assert names("job") == ["job.cancel", "job.launch"]
    assert names("job.launch") == ["job.launch"]


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_appended(settings):
    from feedback_app.core.audit import client_address

    settings.LOGIN_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    factory = RequestFactory()
    forged = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 192.0.2.5")
    assert client_address(forged) == "192.0.2.5"  # the client's own "1.1.1.1" is not believed
    assert client_address(factory.get("/", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"
    junk = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-address")
    assert client_address(junk) == "10.0.0.2"
    settings.LOGIN_CLIENT_IP_HEADER = ""
    assert client_address(forged) == "10.0.0.2"


def test_every_action_the_page_names_is_recorded_somewhere():
    """The catalogue (core.audit.ACTIONS) and the code stay in step: each name is recorded by
    some interface, so the page's list of actions offers nothing that never happens."""
    from pathlib import Path

    from feedback_app.core.audit import ACTIONS

    root = Path(__file__).resolve().parents[1] / "feedback_app"
    code = "\n".join(
        p.read_text()
        for p in root.rglob("*.py")
        if p.name != "audit.py" and "migrations" not in p.parts
    )
    assert [a for a in ACTIONS if f'"{a}"' not in code] == []
    recorded = set(re.findall(r'record\(\s*"([a-z][a-z0-9_.-]*)"', code))
    recorded |= set(re.findall(r'"([a-z]+\.[a-z_]+)" if \w+ else "([a-z]+\.[a-z_]+)"', code)[0])
    assert recorded and recorded - set(ACTIONS) == set()
