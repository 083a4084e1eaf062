"""Issue 25: the quality dashboards say when a refresh is queued, and behind which jobs of the
quick worker, until the refreshed report is written."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from feedback_app.core.models import Job, Membership
from feedback_app.preferences.reports import quality_refresh

pytestmark = pytest.mark.django_db


def test_a_queued_refresh_is_shown_with_the_jobs_ahead_of_it_until_it_is_written(
    client, make_project, make_user
):
    cache.clear()  # refreshes other tests sent for a project of the same id
    project = make_project(name="Pending", n_tasks=2)
    boss = make_user("boss")
    Membership.objects.create(project=project, user=boss, role="admin")
    client.force_login(boss)
    page = reverse("preferences:quality-figure", args=[project.pk, "agreement"])
    assert 'data-testid="refresh-pending"' not in client.get(page).content.decode()

    client.post(reverse("preferences:quality-refresh", args=[project.pk]), {"figure": "agreement"})
    shown = client.get(page).content.decode()
    assert "A refresh is queued</strong>: the worker takes it" in shown

    ahead = Job.objects.create(
        project=project, kind="generate", status="running", progress=0.4, queue="generation"
    )
    Job.objects.create(project=project, kind="train_dpo", status="running", queue="training")
    shown = client.get(page).content.decode()
    assert f'behind <a href="/jobs/{ahead.pk}/">job {ahead.pk}</a> (Generate a round, 40%)' in shown
    assert "Train with DPO" not in shown  # the trainer is another process: not ahead of it

    quality_refresh(project=project)  # what the worker's task does
    assert 'data-testid="refresh-pending"' not in client.get(page).content.decode()
