"""An admin opens the quality dashboards from the loop page, refreshes them through the real
worker, and finds every picture drawn."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from feedback_app.annotation.models import Candidate
from feedback_app.core.models import Membership, ModelVersion

from ..preferences.test_reports import BOTS, run_bots
from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PICTURES = {  # page -> what its points are drawn with
    "agreement": "circle",
    "leaderboard": "circle",
    "progress": "rect",
    "reward_models": "circle",
}


def test_admin_refreshes_the_dashboards_on_the_worker_and_sees_the_plots(
    page, live_server, start_worker, make_project, make_user, make_snapshot, settings
):
    settings.QUALITY_REFRESH_SECONDS = 0  # only the button sends a refresh here
    start_worker()
    users = {b.name: make_user(b.name) for b in reversed(BOTS)}  # ids not in the expected order
    project = make_project(name="Dash", k=4, overlap=3, n_tasks=100, annotators=users.values())
    Membership.objects.create(project=project, user=make_user("boss"), role="admin")
    a = ModelVersion.objects.create(project=project, kind="policy", name="alpha", weights="x")
    b = ModelVersion.objects.create(project=project, kind="policy", name="beta", weights="y")
    Candidate.objects.filter(task__project=project, position__in=(0, 1)).update(model_version=a)
    Candidate.objects.filter(task__project=project, position__in=(2, 3)).update(model_version=b)
    for n, acc in ((50, 0.6), (150, 0.7)):
        snap = make_snapshot(project)
        snap.counts = {"train": n}
        snap.save()
        ModelVersion.objects.create(
            project=project, kind="reward", name=f"rm-{n}", weights="w", snapshot=snap,
            metrics={"heldout_accuracy": acc, "heldout_pairs": 20},
        )  # fmt: skip
    run_bots(project, users)

    login(page, live_server, "boss", "pw-boss")
    page.goto(f"{live_server.url}/projects/{project.pk}/loop/")
    page.get_by_role("link", name="Quality").click()
    expect(page.get_by_test_id("stale")).to_have_text("Not computed yet.")
    page.get_by_test_id("refresh").click()
    deadline = time.monotonic() + 120
    while "Up to date." not in page.get_by_test_id("report-status").inner_text():
        assert time.monotonic() < deadline, "the worker did not refresh the report"
        page.wait_for_timeout(500)
        page.reload()

    for name, mark in PICTURES.items():
        page.goto(f"{live_server.url}/projects/{project.pk}/quality/{name}/")
        chart = page.locator("svg[data-testid=chart]")
        expect(chart).to_have_count(1)
        assert chart.locator(f"{mark}[data-point]").count() >= 2, name
        box = chart.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50, name
    assert page.locator("svg[data-testid=chart] polyline").count() == 1  # accuracy vs pairs
    page.goto(f"{live_server.url}/projects/{project.pk}/quality/leaderboard/")
    expect(page.locator("svg[data-testid=chart] line.whisker")).to_have_count(6)  # 2 models
    expect(page.get_by_test_id("win-matrix")).to_contain_text("alpha")

    page.get_by_test_id("quality-nav").get_by_role("link", name="Annotators").click()
    rows = page.locator("[data-testid=reliability] tbody tr")
    order = [n for n in rows.evaluate_all("rs => rs.map(r => r.dataset.annotator)") if n != "first"]
    assert order == ["careful", "sloppy", "careless"]
    expect(page.locator('tr[data-annotator="first"] [data-flag="position"]')).to_have_count(1)
