"""The stored quality report: figures from a simulated run through the real services."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import transaction

from feedback_app.annotation import handout, quality_refresh, submit
from feedback_app.annotation.models import Candidate, Ranking
from feedback_app.core.models import ModelVersion, Project
from feedback_app.preferences import reports
from feedback_app.preferences.models import QualityReport
from feedback_app.preferences.quality.agreement import pairwise_counts


@dataclass(frozen=True)
class Bot:
    """Ranks in the true order (import position), except: with probability `error_rate` in
    reverse; then with probability `position_bias` the first-shown candidate moved to the top.

    Each bot draws from its own generator, seeded by its name: the tasks are handed out in the
    same order on every backend, so its errors fall on the same tasks whatever the user ids."""

    name: str
    error_rate: float = 0.0
    position_bias: float = 0.0


BOTS = [Bot("careful"), Bot("sloppy", 0.2), Bot("careless", 0.5), Bot("first", 0, 0.9)]


def run_bots(project: Project, users: dict[str, object], seed: int = 0) -> int:
    """Every bot takes tasks in turn through task_assign_next / ranking_submit until none left."""
    rngs = {b.name: random.Random(f"{seed}:{b.name}") for b in BOTS}
    active = list(BOTS)
    submitted = 0
    while active:
        for bot in list(active):
            user = users[bot.name]
            a = handout.task_assign_next(project=project, annotator=user)
            if a is None:
                active.remove(bot)
                continue
            position = dict(
                Candidate.objects.filter(task_id=a.task_id).values_list("id", "position")
            )
            order = sorted(a.display_order, key=position.get)
            rng = rngs[bot.name]
            if rng.random() < bot.error_rate:
                order.reverse()
            if rng.random() < bot.position_bias:
                order.remove(a.display_order[0])
                order.insert(0, a.display_order[0])
            submit.ranking_submit(task_id=a.task_id, annotator=user, groups=[[c] for c in order])
            submitted += 1
    return submitted


@pytest.fixture
def simulated(make_project, make_user):
    users = {b.name: make_user(b.name) for b in reversed(BOTS)}  # ids not in the expected order
    project = make_project(name="Sim", k=4, overlap=3, n_tasks=100, annotators=users.values())
    run_bots(project, users)
    return project


@pytest.mark.django_db
def test_reliability_orders_bots_by_error_rate_and_flags_the_position_biased_one(simulated):
    report = reports.quality_refresh(project=simulated)
    rows = report.figures["reliability"]
    order = [r["annotator"] for r in rows if r["annotator"] != "first"]
    assert order == ["careful", "sloppy", "careless"]
    flagged = {r["annotator"]: {f["code"] for f in r["flags"]} for r in rows}
    assert "position" in flagged["first"]
    assert all("position" not in codes for name, codes in flagged.items() if name != "first")
    first = next(r for r in rows if r["annotator"] == "first")
    assert first["position_bias"]["p_value"] < 0.001
    assert first["position_bias"]["expected"] == pytest.approx(0.25)


@pytest.mark.django_db
def test_project_agreement_is_the_sum_of_its_rounds_and_matches_the_pure_figure(simulated):
    report = reports.quality_refresh(project=simulated)
    agreement = report.figures["agreement"]
    rows = reports.project_rows(project=simulated)
    expected = pairwise_counts(rows.judgements)
    assert agreement["project"]["pairwise"]["compared"] == expected.compared
    assert agreement["project"]["pairwise"]["value"] == pytest.approx(expected.value)
    assert [r["round"] for r in agreement["rounds"]] == [1]
    assert agreement["project"]["pairwise"]["tasks"] == 100
    assert agreement["project"]["alpha"]["judgements"] == report.rankings_count == 300


@pytest.mark.django_db
def test_leaderboard_puts_the_model_whose_candidates_win_first(simulated):
    # Candidates at import position 0 are the best (the bots' true order): give them model "a".
    a = ModelVersion.objects.create(
        project=simulated, kind="policy", name="a", weights="x", stage="dpo"
    )
    b = ModelVersion.objects.create(project=simulated, kind="policy", name="b", weights="y")
    Candidate.objects.filter(task__project=simulated, position=0).update(model_version=a)
    Candidate.objects.filter(task__project=simulated, position__gt=0).update(model_version=b)
    board = reports.quality_refresh(project=simulated).figures["leaderboard"]
    names = [s["name"] for s in board["standings"]]
    assert names == ["a · DPO", "b"]  # the one naming of versions (ModelVersion.label)
    best = board["standings"][0]
    assert best["low"] <= best["strength"] <= best["high"]
    assert board["win_matrix"]["games"][0][1] == board["win_matrix"]["games"][1][0] > 0


@pytest.mark.django_db
def test_reward_models_figure_reads_heldout_accuracy_and_train_pairs(make_project, make_snapshot):
    project = make_project(name="RM")
    for n, acc in ((300, 0.7), (100, 0.6)):
        snap = make_snapshot(project)
        snap.counts = {"train": n}
        snap.save()
        ModelVersion.objects.create(
            project=project,
            kind="reward",
            name=f"rm-{n}",
            weights="w",
            snapshot=snap,
            metrics={"heldout_accuracy": acc, "heldout_pairs": 40},
        )
    figure = reports.quality_refresh(project=project).figures["reward_models"]
    assert [(r["train_pairs"], r["heldout_accuracy"]) for r in figure] == [(100, 0.6), (300, 0.7)]


@pytest.mark.django_db
def test_report_view_says_stale_after_a_new_ranking(simulated, make_user):
    reports.quality_refresh(project=simulated)
    assert not reports.quality_report(project=simulated).stale
    Ranking.objects.filter(pk=Ranking.objects.order_by("-id").first().pk).update(id=10**9)
    assert reports.quality_report(project=simulated).new_rankings == 1


@pytest.mark.django_db(transaction=True)
def test_submits_ask_for_one_refresh_per_window(make_project, make_user, settings, monkeypatch):
    settings.QUALITY_REFRESH_SECONDS = 30
    cache.clear()
    quality_refresh._sent_at.clear()
    sent = []
    monkeypatch.setattr(quality_refresh, "send_refresh", lambda pid, countdown: sent.append(pid))
    users = [make_user(f"u{i}") for i in range(3)]
    project = make_project(name="Deb", n_tasks=3, overlap=3, annotators=users)
    for user in users:
        a = handout.task_assign_next(project=project, annotator=user)
        submit.ranking_submit(
            task_id=a.task_id, annotator=user, groups=[[c] for c in a.display_order]
        )
    assert sent == [project.pk]
    quality_refresh._sent_at.clear()  # another process: the shared cache still says "sent"
    with transaction.atomic():
        quality_refresh.refresh_soon(project.pk)
    assert sent == [project.pk]


@pytest.mark.django_db(transaction=True)
def test_refresh_task_runs_eagerly_and_stores_the_report(make_project, settings):
    from celery import current_app

    project = make_project(name="Eager")
    eager, current_app.conf.task_always_eager = current_app.conf.task_always_eager, True
    try:
        quality_refresh.send_refresh(project.pk)
    finally:
        current_app.conf.task_always_eager = eager
    assert QualityReport.objects.get(project=project).version == reports.REPORT_VERSION


@pytest.mark.django_db
def test_the_learning_curve_warns_until_the_newest_reward_model_is_clearly_above_chance(
    make_project, make_snapshot, make_user, client
):
    from feedback_app.core.models import Membership

    project = make_project(name="curve")
    admin = make_user("curve-admin")
    Membership.objects.create(project=project, user=admin, role="admin")
    client.force_login(admin)

    def train(rankings: int, acc: float, pairs: int) -> None:
        snap = make_snapshot(project)
        snap.counts = {"train": rankings, "rankings": rankings, "yardstick": pairs}
        snap.save()
        ModelVersion.objects.create(
            project=project, kind="reward", name=f"rm-{rankings}", weights="w", snapshot=snap,
            metrics={"yardstick_accuracy": acc, "yardstick_pairs": pairs},
        )  # fmt: skip
        reports.quality_refresh(project=project)

    def page() -> str:
        return client.get(f"/projects/{project.pk}/quality/reward_models/").content.decode()

    train(100, 0.8, 10)  # 0.8 on 10 pairs: the interval (0.49-0.94) still holds chance
    figure = reports.quality_report(project=project).figures["reward_models"]
    assert figure[0]["rankings"] == 100 and figure[0]["yardstick_low"] < 0.5
    assert 'data-testid="learning-warning"' in page() and "Do not trust rm-100" in page()
    train(300, 0.66, 200)  # clear of chance, below 0.7
    assert "Do not trust rm-300" in page()
    train(500, 0.8, 200)
    html = page()
    assert 'data-testid="learning-warning"' not in html
    assert 'data-series="yardstick accuracy"' in html and html.count("rm-500: 0.800") == 1
