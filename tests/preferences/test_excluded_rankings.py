"""Rankings that never count as votes: a gold task's, and a dropped one. Checked through both
consumers of the one pipeline (a snapshot and the export give the same bytes, test_rows.py)."""

from __future__ import annotations

import pytest

from feedback_app.annotation.gold import task_gold_set
from feedback_app.annotation.models import Ranking, Task
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.review import ranking_drop

from .test_rows import _snapshots, rank_all, root, same_rows  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def test_a_gold_tasks_rankings_are_in_neither_the_snapshot_nor_the_export(
    make_project,
    alice,
    bob,
    root,  # noqa: F811
):
    project = make_project(k=2, overlap=2, n_tasks=3, annotators=[alice, bob])
    rank_all(project, alice)
    rank_all(project, bob)
    before, _ = same_rows(project, PairPolicy(), root)
    gold = Task.objects.filter(project=project).order_by("id").first()
    ids = sorted(gold.candidates.values_list("pk", flat=True))
    task_gold_set(project=project, task_id=gold.pk, groups=[[ids[0]], [ids[1]]])
    after, _ = same_rows(project, PairPolicy(), root)
    gold_prompt = gold.prompt.text
    assert any(r["prompt"] == gold_prompt for r in before)
    assert not any(r["prompt"] == gold_prompt for r in after)
    assert after == [r for r in before if r["prompt"] != gold_prompt]


def test_a_dropped_ranking_is_in_neither_the_snapshot_nor_the_export_but_is_kept(
    make_project,
    alice,
    bob,
    root,  # noqa: F811
):
    project = make_project(k=2, overlap=2, n_tasks=3, annotators=[alice, bob])
    rank_all(project, alice)
    rank_all(project, bob)
    policy = PairPolicy(min_votes=2)  # one ranking fewer: that task's pairs fall below it
    before, _ = same_rows(project, policy, root)
    ranking = Ranking.objects.filter(task__project=project, annotator=bob).order_by("id").first()
    ranking_drop(project=project, ranking_id=ranking.pk, by=root, reason="careless")
    after, _ = same_rows(project, policy, root)
    dropped_prompt = ranking.task.prompt.text
    assert any(r["prompt"] == dropped_prompt for r in before)
    assert after == [r for r in before if r["prompt"] != dropped_prompt]
    assert Ranking.objects.filter(pk=ranking.pk).exists()
