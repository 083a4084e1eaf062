"""The guided loop in a browser: a live loop page sees a job finish without a reload, and
promoting a version that lost goes through a confirmation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from feedback_app.core.models import Job, ModelVersion
from feedback_app.finetuning import versions

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_loop_page_shows_a_job_finishing_without_a_reload(
    page, live_server, make_user, make_project
):
    make_user("boss", is_staff=True)
    project = make_project(name="Live")
    job = Job.objects.create(project=project, kind="build_dataset", status="running")
    login(page, live_server, "boss", "pw-boss")
    page.goto(f"{live_server.url}/projects/{project.pk}/loop/")
    expect(page.get_by_test_id("jobs-running")).to_have_text("1 job running")
    row = page.get_by_test_id("recent-jobs").locator("tr", has_text=f"{job.pk}")
    expect(row.locator(".status")).to_have_text("running")
    page.evaluate("window.__same_page = true")

    # What a worker writes when the job ends.
    Job.objects.filter(pk=job.pk).update(status="succeeded", progress=1.0)

    row = page.get_by_test_id("recent-jobs").locator("tr", has_text=f"{job.pk}")
    expect(row.locator(".status")).to_have_text("succeeded", timeout=15_000)
    expect(page.get_by_test_id("jobs-running")).to_have_count(0)
    assert page.evaluate("window.__same_page") is True  # swapped in place, never reloaded


def test_promoting_a_version_that_lost_asks_for_a_confirmation_first(
    page, live_server, make_user, make_project
):
    make_user("boss", is_staff=True)
    project = make_project(name="Promote")
    base = versions.model_register(project=project, kind="policy", name="base", weights="/b")
    lost = versions.model_register(
        project=project, kind="policy", name="policy-5", stage="dpo", weights="/p", parent=base,
        metrics={"win_rate": 0.25, "win_rate_low": 0.1, "win_rate_high": 0.45},
        activate_if_first=False,
    )  # fmt: skip
    login(page, live_server, "boss", "pw-boss")
    page.goto(f"{live_server.url}/projects/{project.pk}/models/")
    page.get_by_test_id(f"promote-{lost.pk}").click()
    expect(page.get_by_test_id("promote-warning")).to_contain_text("lost to its parent")
    page.get_by_test_id("promote-anyway").click()  # the required checkbox stops it
    expect(page.get_by_test_id("promote-confirm")).to_be_visible()
    assert not ModelVersion.objects.get(pk=lost.pk).is_active
    page.get_by_test_id("confirm").check()
    page.get_by_test_id("promote-anyway").click()
    expect(page.locator(".messages")).to_contain_text("policy-5 · DPO is now the active")
    assert ModelVersion.objects.get(pk=lost.pk).is_active
