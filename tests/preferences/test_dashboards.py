"""The quality pages: admins only, read the stored report, draw their pictures as inline SVG."""

from __future__ import annotations

import re

import pytest
from celery import current_app
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from feedback_app.core.models import Membership, ModelVersion
from feedback_app.preferences import reports
from feedback_app.preferences.charts import bar_chart, interval_chart, line_chart
from feedback_app.preferences.dashboards import PAGES
from feedback_app.preferences.models import QualityReport

from .test_reports import BOTS, run_bots


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """One project of 100 tasks ranked 300 times by the bots through the real hand-out, built
    once for the module (8-18 s a test when each test built its own) inside a transaction that
    is rolled back after the module's last test; each test's own changes roll back to it."""
    from django.contrib.auth import get_user_model

    from tests.conftest import new_project, new_snapshot

    with django_db_blocker.unblock(), transaction.atomic():
        create = get_user_model().objects.create_user
        make_user = lambda name: create(username=name, password="pw-" + name)  # noqa: E731
        # ids not in the expected order
        users = {b.name: make_user(b.name) for b in reversed(BOTS)}
        project = new_project(name="Dash", k=4, overlap=3, n_tasks=100, annotators=users.values())
        admin = make_user("boss")
        Membership.objects.create(project=project, user=admin, role="admin")
        a = ModelVersion.objects.create(project=project, kind="policy", name="alpha", weights="x")
        b = ModelVersion.objects.create(project=project, kind="policy", name="beta", weights="y")
        for c in project.tasks.first().candidates.model.objects.filter(task__project=project):
            c.model_version = a if c.position % 2 else b
            c.save(update_fields=["model_version"])
        snap = new_snapshot(tmp_path_factory.mktemp("dash"), project)
        snap.counts = {"train": 120}
        snap.save()
        ModelVersion.objects.create(
            project=project, kind="reward", name="rm", weights="w", snapshot=snap,
            metrics={"heldout_accuracy": 0.7, "heldout_pairs": 30},
        )  # fmt: skip
        run_bots(project, users)
        yield project, admin, users
        transaction.set_rollback(True)


def _get(client, user, url):
    client.force_login(user)
    return client.get(url)


@pytest.mark.django_db
@pytest.mark.parametrize("page", list(PAGES))
def test_every_dashboard_draws_its_figure_from_the_stored_report(client, world, page):
    project, admin, _ = world
    reports.quality_refresh(project=project)
    r = _get(client, admin, f"/projects/{project.pk}/quality/{page}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Up to date." in html
    if page == "judges":  # this world has no AI judge (tests/preferences/test_judge_figures.py)
        assert 'data-testid="no-judges"' in html
    elif page != "reliability":
        assert re.search(r"<svg[^>]*data-testid=\"chart\"", html)
        assert "data-point" in html


@pytest.mark.django_db
def test_reliability_page_lists_bots_in_order_and_flags_the_biased_one(client, world):
    project, admin, _ = world
    reports.quality_refresh(project=project)
    html = _get(client, admin, f"/projects/{project.pk}/quality/reliability/").content.decode()
    order = [n for n in re.findall(r'data-annotator="([^"]+)"', html) if n != "first"]
    assert order == ["careful", "sloppy", "careless"]
    row = re.search(r'data-annotator="first".*?</tr>', html, re.S).group(0)
    assert 'data-flag="position"' in row


@pytest.mark.django_db
def test_dashboards_are_for_the_projects_admins_only(client, world, make_user):
    project, _, users = world
    stranger = make_user("stranger")
    for user in (users["careful"], stranger):
        assert _get(client, user, f"/projects/{project.pk}/quality/").status_code == 404
    client.logout()
    assert client.get(f"/projects/{project.pk}/quality/").status_code == 302


@pytest.mark.django_db
def test_dashboard_reads_the_report_not_the_rankings(client, world):
    """The queries of a page do not grow with the rankings (pinned: session, user, project,
    membership, report, the capped count of new rankings...)."""
    project, admin, _ = world
    reports.quality_refresh(project=project)
    client.force_login(admin)
    with CaptureQueriesContext(connection) as ctx:
        client.get(f"/projects/{project.pk}/quality/reliability/")
    sqls = [q["sql"] for q in ctx.captured_queries]
    ranking_reads = [s for s in sqls if "annotation_ranking" in s]
    assert len(ranking_reads) == 1 and "LIMIT" in ranking_reads[0]


@pytest.mark.django_db
def test_before_a_refresh_the_page_says_not_computed_and_the_button_refreshes(client, world):
    project, admin, _ = world
    html = _get(client, admin, f"/projects/{project.pk}/quality/").content.decode()
    assert "Not computed yet." in html
    eager, current_app.conf.task_always_eager = current_app.conf.task_always_eager, True
    try:
        r = client.post(f"/projects/{project.pk}/quality/refresh/", {"figure": "progress"})
    finally:
        current_app.conf.task_always_eager = eager
    assert r.status_code == 302 and r["Location"].endswith("/quality/progress/")
    assert QualityReport.objects.get(project=project).rankings_count == 300


@pytest.mark.django_db
def test_a_report_of_an_older_shape_is_not_drawn(client, world):
    project, admin, _ = world
    reports.quality_refresh(project=project)
    QualityReport.objects.filter(project=project).update(version=0)
    html = _get(client, admin, f"/projects/{project.pk}/quality/").content.decode()
    assert "older version" in html and "<svg" not in html


def test_line_chart_maps_the_range_onto_the_plot_area():
    chart = line_chart([("a", "s0", [(1, 0.0, "lo"), (3, 1.0, "hi"), (2, None, "gap")])],
                       x_label="round", y_low=0, y_high=1)  # fmt: skip
    (series,) = chart.series
    assert [(p.x, p.y) for p in series.points] == [(64.0, 196.0), (592.0, 8.0)]


def test_interval_chart_puts_whiskers_around_each_point():
    chart = interval_chart([("m", 0.0, -1.0, 1.0)], x_label="strength")
    point = chart.series[0].points[0]
    xs = sorted({s.x1 for s in chart.segments} | {s.x2 for s in chart.segments})
    assert xs[0] < point.x < xs[-1]


def test_bar_chart_stacks_values_and_skips_zeros():
    chart = bar_chart([("a", [3, 1]), ("b", [4, 0])], x_label="tasks")
    assert [b.css for b in chart.bars] == ["s0", "s1", "s0"]
    assert chart.bars[1].x == pytest.approx(chart.bars[0].x + chart.bars[0].width)


def test_the_jinja2_loop_nav_is_the_twin_of_the_django_one():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    django_nav = (root / "templates/finetuning/_nav.html").read_text()
    jinja_nav = (root / "jinja2/preferences/_nav.html").read_text()
    links = re.findall(r"url '([\w:-]+)' project.pk %}\">([^<]+)<", django_nav)
    assert links and links == re.findall(r"url\('([\w:-]+)', project.pk\) }}\">([^<]+)<", jinja_nav)


@pytest.mark.django_db
def test_long_tables_come_in_pages_and_the_flagged_are_listed_on_every_page(client, make_user):
    from feedback_app.core.models import Project
    from feedback_app.preferences.dashboards import ROWS_PER_PAGE

    project = Project.objects.create(name="Many")
    admin = make_user("pager")
    Membership.objects.create(project=project, user=admin, role="admin")
    row = {"annotator_id": 0, "rankings": 1, "median_seconds": None, "skips": 0,
           "skip_rate": None, "flags": []}  # fmt: skip
    rate = {"value": None, "hits": 0, "trials": 0, "expected": None, "p_value": None}
    rows = [
        {**row, "annotator": f"a{i}", "majority_agreement": rate, "gold_accuracy": rate,
         "position_bias": rate, "length_bias": rate,
         "flags": [{"code": "fast", "reason": "quick"}] if i == 0 else []}
        for i in range(ROWS_PER_PAGE + 5)
    ]  # fmt: skip
    QualityReport.objects.create(
        project=project, version=reports.REPORT_VERSION, computed_at="2026-01-01T00:00Z",
        seconds=1, rankings_count=0, figures={"reliability": rows},
    )  # fmt: skip
    client.force_login(admin)
    url = f"/projects/{project.pk}/quality/reliability/"
    first = client.get(url).content.decode()
    second = client.get(url + "?page=2").content.decode()
    assert first.count("data-annotator=") == ROWS_PER_PAGE
    assert second.count("data-annotator=") == 5 and "page 2 of 2" in second
    assert 'data-testid="flagged"' in second and "a0" in second
    assert client.get(url + "?page=x%00").status_code == 200
