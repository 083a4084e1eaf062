"""Triage (issue 23): with the project's `judge_triage`, people are handed first the tasks AI
judges disagreed on, then those a judge was unsure of, most doubtful first (the share of pairs
that flipped with the order, tied, or fell under its `unsure_margin`), then the rest in the
usual order; off, nothing moves.

The judges here are scripted `PairwiseJudge`s (their answers known), ranking through the same
hand-out and submit as the `judge_round` job (annotation/judge_votes.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from django.db import connection
from django.utils import timezone

from feedback_app.annotation import handout, services
from feedback_app.annotation.judge_votes import DISPUTED, SURE, judge_ranking_submit
from feedback_app.annotation.models import Task
from feedback_app.workspace.judges import JudgeSpec, judge_add
from training.judges.base import Asked, Cost, PairwiseJudge

pytestmark = pytest.mark.django_db


class Scripted(PairwiseJudge):
    """Answers with `preference(prompt, first, second)`: positive prefers the first shown."""

    def __init__(self, preference: Callable[[str, str, str], float]) -> None:
        self.preference = preference

    def ask(self, prompt: str, shown: Sequence[tuple[str, str]]) -> list[Asked]:
        return [Asked(self.preference(prompt, f, s), "scripted", Cost(1, 0.0)) for f, s in shown]


def _sure(prompt: str, first: str, second: str) -> float:
    return 0.9 if first < second else -0.9  # prefers the earlier answer, in either order


def _first_judge(prompt: str, first: str, second: str) -> float:
    if prompt.endswith(" 1"):
        return 0.9  # always the one shown first: every pair flips with the order
    if prompt.endswith(" 2"):
        return 0.05 if first < second else -0.05  # consistent, but hardly any margin
    return _sure(prompt, first, second)


def _second_judge(prompt: str, first: str, second: str) -> float:
    return -_sure(prompt, first, second) if prompt.endswith(" 3") else _sure(prompt, first, second)


def _judge_all(project, judge, ai: PairwiseJudge) -> None:
    """Rank every task the hand-out gives the judge, as the judge_round job does."""
    while (lease := handout.task_assign_next(project=project, annotator=judge.user)) is not None:
        texts = {c.pk: c.text for c in lease.task.candidates.all()}
        order = list(lease.display_order)
        ranking = ai.rank(lease.task.prompt.text, [texts[c] for c in order])
        judge_ranking_submit(
            task_id=lease.task_id, project_id=project.pk, annotator=judge.user, order=order,
            ranking=ranking, unsure_margin=judge.unsure_margin,
        )  # fmt: skip


def _people_order(project, person) -> list[str]:
    """The prompts in the order the hand-out gives them to `person` (each skipped to go on)."""
    seen = []
    while (lease := handout.task_assign_next(project=project, annotator=person)) is not None:
        seen.append(lease.task.prompt.text)
        services.task_skip(task_id=lease.task_id, annotator=person)
    return seen


@pytest.fixture
def judged(make_project, alice):
    """Five tasks (T 0..T 4) ranked by two judges: T 1 flips, T 2 low margin, T 3 disputed."""
    project = make_project(name="T", k=3, overlap=3, n_tasks=5, annotators=[alice])
    first = judge_add(
        project=project, spec=JudgeSpec(name="j1", kind="causal_lm", weights="x", unsure_margin=0.1)
    )
    second = judge_add(project=project, spec=JudgeSpec(name="j2", kind="causal_lm", weights="x"))
    _judge_all(project, first, Scripted(_first_judge))
    _judge_all(project, second, Scripted(_second_judge))
    return project


def test_the_judges_submits_mark_each_task_by_how_unsure_they_were(judged):
    levels = dict(judged.tasks.values_list("prompt__text", "judge_unsure"))
    # T 1 and T 2: every one of their 3 pairs unsure; T 3: every pair disputed.
    assert levels == {"T 0": SURE, "T 1": 100, "T 2": 100, "T 3": DISPUTED + 100, "T 4": SURE}


def test_with_triage_people_get_the_disputed_then_the_unsure_tasks_first(judged, alice):
    judged.judge_triage = True
    judged.save(update_fields=["judge_triage"])
    assert _people_order(judged, alice) == ["T 3", "T 1", "T 2", "T 0", "T 4"]


def test_without_triage_the_order_is_unchanged(judged, alice):
    assert not judged.judge_triage
    assert _people_order(judged, alice) == ["T 0", "T 1", "T 2", "T 3", "T 4"]


def test_a_later_sure_vote_never_clears_an_earlier_judges_doubt(make_project, alice):
    project = make_project(name="T", k=2, overlap=3, n_tasks=2, annotators=[alice])
    doubtful = judge_add(project=project, spec=JudgeSpec(name="d", kind="causal_lm", weights="x"))
    sure = judge_add(project=project, spec=JudgeSpec(name="s", kind="causal_lm", weights="x"))
    _judge_all(project, doubtful, Scripted(lambda p, f, s: 0.9))  # position bias on both
    _judge_all(project, sure, Scripted(_sure))
    assert set(project.tasks.values_list("judge_unsure", flat=True)) == {100}


def test_the_more_pairs_a_judge_doubted_the_sooner_people_get_the_task(make_project, alice):
    """T 0: one pair of three flipped with the order (33); T 1: all three (100); T 2 sure. With
    triage people get T 1 before T 0, though T 0 is older."""
    project = make_project(name="T", k=3, overlap=3, n_tasks=3, annotators=[alice])
    texts = sorted(project.tasks.get(prompt__text="T 0").candidates.values_list("text", flat=True))
    doubted = set(texts[:2])  # the one pair of T 0 the judge answers by position

    def judge(prompt: str, first: str, second: str) -> float:
        if prompt.endswith(" 1") or (prompt.endswith(" 0") and {first, second} == doubted):
            return 0.9
        return _sure(prompt, first, second)

    _judge_all(project, judge_add(project=project, spec=JudgeSpec(name="g", kind="causal_lm",
               weights="x")), Scripted(judge))  # fmt: skip
    levels = dict(project.tasks.values_list("prompt__text", "judge_unsure"))
    assert levels == {"T 0": 33, "T 1": 100, "T 2": SURE}
    project.judge_triage = True
    project.save(update_fields=["judge_triage"])
    assert _people_order(project, alice) == ["T 1", "T 0", "T 2"]


@pytest.mark.postgres  # a PostgreSQL plan
def test_triage_handout_walks_its_index_without_sorting(make_project, alice):
    project = make_project(n_tasks=3, annotators=[alice])
    sql_text = handout.open_task_sql(triage=True)
    params = handout.lease_params(project=project.pk, annotator=alice.pk, now=timezone.now())
    with connection.cursor() as cursor:
        # A 3-task table would be read whole, or sorted in memory: with both priced out, the plan
        # still holds a Sort unless an index gives the triage order (the one under test).
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_sort = off")
        cursor.execute(f"EXPLAIN {sql_text}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_sort")
    assert "task_triage_by_project" in plan and "Sort" not in plan, plan


def test_tasks_no_judge_ranked_keep_level_zero(make_project):
    project = make_project(name="N", n_tasks=2)
    assert set(Task.objects.filter(project=project).values_list("judge_unsure", flat=True)) == {0}


def test_the_triage_rules_examples_hold():
    import doctest

    from feedback_app.annotation import judge_votes

    assert doctest.testmod(judge_votes).failed == 0
