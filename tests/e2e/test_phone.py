"""On a phone (390x844, touch): ranking by taps, a tie included, and admin pages that fit."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from feedback_app.annotation.models import Ranking
from feedback_app.core.models import Job, ModelVersion

from .conftest import login
from .test_annotate_page import at, expect_badges, open_ranking_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def test_annotator_ranks_by_tapping_cards_with_a_tie_and_an_undo(
    new_page, live_server, make_user, make_project
):
    alice = make_user("alice")
    project = make_project(name="Taps", k=4, n_tasks=2, annotators=[alice])
    page = new_page(**PHONE)
    assignment = open_ranking_page(page, live_server, alice, project)
    expect(page.get_by_test_id("touch-hint")).to_be_visible()
    expect(page.locator(".hint-keys")).to_be_hidden()
    expect(page.get_by_test_id("undo")).to_be_disabled()

    page.get_by_test_id("candidate-C").tap()
    page.get_by_test_id("candidate-A").tap()  # a wrong tap ...
    expect_badges(page, {"A": "#2", "C": "#1"})
    page.get_by_test_id("undo").tap()  # ... taken back
    expect_badges(page, {"A": "", "C": "#1"})
    page.get_by_test_id("tie").tap()
    expect(page.get_by_test_id("tie")).to_have_attribute("aria-pressed", "true")
    page.get_by_test_id("candidate-B").tap()  # ties with C
    page.get_by_test_id("candidate-D").tap()  # then D; A is left and falls into place
    expect_badges(page, {"A": "#3", "B": "#1 (tie)", "C": "#1 (tie)", "D": "#2"})
    expect(page.get_by_test_id("ranking").locator("li")).to_have_text(["C = B", "D", "A"])

    page.get_by_test_id("submit").tap()
    expect(page.get_by_test_id("progress")).to_contain_text("1 done")
    ranking = Ranking.objects.get(annotator=alice)
    assert ranking.groups == [at(assignment, 2, 3), at(assignment, 4), at(assignment, 1)]


def test_admin_pages_fit_a_phone_without_sideways_scrolling(
    new_page, live_server, make_user, make_project
):
    root = make_user("root", is_staff=True, is_superuser=True)
    project = make_project(name="A project with a rather long name", annotators=[root])
    base = ModelVersion.objects.create(
        project=project, kind="policy", stage="base", name="base", weights="/w", is_active=True
    )
    ModelVersion.objects.create(
        project=project, kind="policy", stage="dpo", name="dpo-job-7-with-a-long-name",
        weights="/w2", parent=base, metrics={"win_rate": 0.4, "win_rate_low": 0.2,
        "win_rate_high": 0.6, "kl_to_parent": -0.059, "comparisons": 20},
    )  # fmt: skip
    job = Job.objects.create(
        project=project, kind="build_dataset", status="succeeded",
        outputs={"snapshot": 1, "rankings": 4, "pairs": 12, "train": 10, "test": 2},
    )  # fmt: skip
    page = new_page(**PHONE)
    login(page, live_server, "root", "pw-root")
    paths = [
        "/", f"/projects/{project.pk}/loop/", f"/projects/{project.pk}/models/",
        f"/projects/{project.pk}/rounds/", f"/projects/{project.pk}/review/",
        f"/projects/{project.pk}/quality/", f"/projects/{project.pk}/settings/",
        f"/projects/{project.pk}/members/", f"/projects/{project.pk}/import/",
        f"/jobs/{job.pk}/", "/audit/", "/account/",
    ]  # fmt: skip
    wide = {}
    for path in paths:
        page.goto(live_server.url + path)
        width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        if width[0] > width[1]:
            wide[path] = width
    assert wide == {}
