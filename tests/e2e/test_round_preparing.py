"""Issue 25: before the loop demo's round 1 exists, its ranking page says a round is being
prepared (and by which job) instead of "You have ranked every task... Thank you!"; the admin
follows the job's link to its page. The demo is set up as `make run` does, with no worker yet."""

import pytest
from playwright.sync_api import expect

from feedback_app.annotation import demo
from feedback_app.core.models import Job
from feedback_app.finetuning.demo import loop_demo_bootstrap

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_before_round_one_the_loop_demo_says_its_round_is_being_prepared(new_page, live_server):
    demo.demo_bootstrap(password="pw-demo", reset_passwords=True)
    loop = loop_demo_bootstrap()
    assert loop.job.kind == Job.Kind.BUILD_BASE and loop.job.status == Job.Status.QUEUED

    page = new_page(viewport={"width": 390, "height": 844})
    login(page, live_server, "annotator-1", "pw-demo")
    card = page.get_by_test_id(f"project-{loop.project.pk}")
    expect(card.get_by_test_id("round-preparing")).to_contain_text(f"job {loop.job.pk}, queued")
    card.get_by_role("link", name="Start ranking").click()
    notice = page.get_by_test_id("round-preparing")
    expect(notice).to_contain_text("A round is being prepared")
    expect(notice).to_contain_text("the base model is being set up, then round 1 is generated")
    expect(page.get_by_text("Thank you")).to_have_count(0)
    expect(notice.get_by_role("link")).to_have_count(0)  # the job's page is for admins

    admin = new_page()
    login(admin, live_server, demo.ADMIN, "pw-demo")
    admin.goto(f"{live_server.url}/projects/{loop.project.pk}/annotate/")
    admin.get_by_test_id("round-preparing-job").click()
    expect(admin).to_have_url(f"{live_server.url}/jobs/{loop.job.pk}/")
    expect(admin.get_by_test_id("job-status")).to_have_text("queued")
