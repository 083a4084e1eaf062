"""The audit log's writer and its append-only rule."""

import pytest
from django.test import RequestFactory

from feedback_app.core.audit import record
from feedback_app.core.models import AuditEvent, Project

pytestmark = pytest.mark.django_db


def test_record_takes_actor_address_and_interface_from_the_request(django_user_model):
    admin = django_user_model.objects.create_user("ada", password="x")
    project = Project.objects.create(name="p")
    request = RequestFactory().post("/api/v1/projects/", REMOTE_ADDR="10.1.2.3")
    request.user = admin
    event = record("project.update", request=request, project=project, data={"k": [4, 3]})
    assert (event.actor, event.actor_name, event.via, event.address) == (
        admin,
        "ada",
        "api",
        "10.1.2.3",
    )
    page = RequestFactory().post("/projects/1/settings/")
    page.user = admin
    assert record("project.update", request=page).via == "page"
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
