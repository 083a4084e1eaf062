"""An admin launches DPO from the loop page and watches the job page reach 100 %."""

import time

import pytest
from playwright.sync_api import expect

from feedback_app.core.models import Job, ModelVersion, Project
from feedback_app.finetuning import versions

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_admin_launches_dpo_from_the_page_and_watches_it_reach_100_percent(
    page, live_server, start_worker, tiny_policy, make_user, make_snapshot
):
    start_worker()
    make_user("boss", is_staff=True)
    project = Project.objects.create(name="Loop demo", candidates_per_task=2)
    base = versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    pairs = [
        {"prompt": f"Item {i} is", "chosen": " useful.", "rejected": " an error."} for i in range(8)
    ]
    make_snapshot(project, pairs)

    login(page, live_server, "boss", "pw-boss")
    page.goto(f"{live_server.url}/projects/{project.pk}/loop/")
    page.locator("[data-testid=advanced] > summary").click()  # DPO is not the next step here
    launcher = page.get_by_test_id("launch-train_dpo")
    launcher.locator("summary").click()
    # 200 steps: a few seconds of training, so the page's 1 s polls see the bar move (600 took
    # 140 s of a loaded CI run).
    launcher.locator("[name=train_dpo-epochs]").fill("50")
    launcher.locator("[name=train_dpo-batch_size]").fill("2")
    launcher.locator("[name=train_dpo-max_length]").fill("48")
    launcher.locator("[name=train_dpo-learning_rate]").fill("0.0005")
    launcher.get_by_test_id("start-train_dpo").click()

    expect(page).to_have_url(f"{live_server.url}/jobs/{Job.objects.get().pk}/")
    seen = set()
    deadline = time.monotonic() + 240  # ~20 s on a quiet machine; generous for a busy one
    while time.monotonic() < deadline:  # watch the bar move
        seen.add(page.get_by_test_id("job-progress").inner_text())
        if page.get_by_test_id("job-status").inner_text() == "succeeded":
            break
        page.wait_for_timeout(250)
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded")
    expect(page.get_by_test_id("job-progress")).to_have_text("100%")
    assert seen - {"0%", "100%"}, f"the bar did not move live: {seen}"
    assert page.locator("#chart polyline").count() == 1  # the loss curve was drawn
    trained = ModelVersion.objects.get(parent=base)
    assert trained.job.status == "succeeded"
