"""The quality figures in the API: the stored report, whole or by figure, and its refresh."""

from __future__ import annotations

import pytest
from celery import current_app

from feedback_app.core.models import Membership
from feedback_app.preferences import reports
from feedback_app.preferences.models import QualityReport

from .conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def ranked(make_project, make_user):
    from tests.preferences.test_reports import BOTS, run_bots

    users = {b.name: make_user(b.name) for b in BOTS}
    project = make_project(name="Q", k=4, overlap=3, n_tasks=40, annotators=users.values())
    admin = make_user("qadmin")
    Membership.objects.create(project=project, user=admin, role=Membership.Role.ADMIN)
    run_bots(project, users)
    return project, client_for(admin)


def test_report_is_null_until_refreshed_then_serves_every_figure_as_stored(ranked):
    project, client = ranked
    body = client.get(f"/api/v1/projects/{project.pk}/quality/").json()
    assert body["figures"] is None and body["stale"] is True and body["new_rankings"] == 120
    stored = reports.quality_refresh(project=project).figures
    body = client.get(f"/api/v1/projects/{project.pk}/quality/").json()
    assert body["stale"] is False and body["rankings_count"] == 120
    assert body["figures"]["reliability"] == stored["reliability"]
    assert body["figures"]["agreement"] == stored["agreement"]
    assert set(body["figures"]) == set(reports.FIGURES)


@pytest.mark.parametrize("figure", reports.FIGURES)
def test_each_figure_alone_equals_its_part_of_the_report(ranked, figure):
    project, client = ranked
    stored = reports.quality_refresh(project=project).figures
    body = client.get(f"/api/v1/projects/{project.pk}/quality/{figure}/").json()
    assert body["figure"] == stored[figure]
    assert body["status"]["stale"] is False


def test_an_unknown_figure_is_a_404_naming_the_choices(ranked):
    project, client = ranked
    response = client.get(f"/api/v1/projects/{project.pk}/quality/bogus/")
    assert response.status_code == 404
    assert "reliability" in response.json()["errors"][0]["message"]


def test_refresh_queues_the_worker_task(ranked):
    project, client = ranked
    eager, current_app.conf.task_always_eager = current_app.conf.task_always_eager, True
    try:
        response = client.post(f"/api/v1/projects/{project.pk}/quality/refresh/")
    finally:
        current_app.conf.task_always_eager = eager
    assert response.status_code == 202
    assert QualityReport.objects.get(project=project).rankings_count == 120


def test_snapshot_policy_flagged_weight_is_checked_and_recorded(ranked):
    project, client = ranked
    url = f"/api/v1/projects/{project.pk}/snapshots/"
    response = client.post(url, {"flagged_weight": 2}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "flagged_weight"
    response = client.post(url, {"flagged_weight": 0.5}, format="json")
    assert response.status_code == 202
    assert response.json()["params"]["flagged_weight"] == 0.5


def test_pairs_export_refuses_a_flagged_weight_out_of_bounds(ranked):
    project, client = ranked
    response = client.get(f"/api/v1/projects/{project.pk}/pairs/?format=json&flagged_weight=-1")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "flagged_weight"


def test_the_documented_serializers_describe_the_stored_report_exactly(ranked):
    """The API serves the stored JSON as it is; this keeps the schema's serializers honest."""
    from feedback_app.api.serializers.quality import FiguresSerializer

    project, _ = ranked
    stored = reports.quality_refresh(project=project).figures
    assert FiguresSerializer(stored).data == stored
