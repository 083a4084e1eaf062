"""K (candidates a task) is fixed once a project has tasks: through the API and the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from feedback_app.core.models import Project

pytestmark = pytest.mark.django_db

WHY = "fixed once the project has tasks"


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def _api_patch_k(root, project, k):
    client = APIClient()
    client.force_authenticate(root)
    return client.patch(
        f"/api/v1/projects/{project.pk}/", {"candidates_per_task": k}, format="json"
    )


def _admin_post_k(client, root, project, k):
    """Post the admin change form of `project` as it is shown, with K set to `k`."""
    client.force_login(root)
    url = reverse("admin:core_project_change", args=[project.pk])
    shown = client.get(url)
    data: dict = {}
    forms = [shown.context["adminform"].form]
    for inline in shown.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    for form in forms:
        for bound in form:
            value = bound.value()
            if value is not None and value is not False:
                data[bound.html_name] = "on" if value is True else value
    data["candidates_per_task"] = str(k)
    return client.post(url, data)


def test_the_api_refuses_to_change_k_once_the_project_has_tasks_and_says_why(make_project, root):
    project = make_project(k=3, n_tasks=2)
    response = _api_patch_k(root, project, 4)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "candidates_per_task" and WHY in error["message"]
    assert Project.objects.get(pk=project.pk).candidates_per_task == 3


def test_the_api_changes_k_while_the_project_has_no_tasks(root):
    project = Project.objects.create(name="empty", candidates_per_task=3)
    assert _api_patch_k(root, project, 4).status_code == 200
    assert Project.objects.get(pk=project.pk).candidates_per_task == 4


def test_the_admin_refuses_to_change_k_once_the_project_has_tasks_and_says_why(
    client, make_project, root
):
    project = make_project(k=3, n_tasks=2)
    response = _admin_post_k(client, root, project, 4)
    assert response.status_code == 200  # the form again, with the error
    assert WHY in response.content.decode()
    assert Project.objects.get(pk=project.pk).candidates_per_task == 3


def test_the_admin_changes_k_while_the_project_has_no_tasks(client, root):
    project = Project.objects.create(name="empty", candidates_per_task=3)
    assert _admin_post_k(client, root, project, 4).status_code == 302
    assert Project.objects.get(pk=project.pk).candidates_per_task == 4
