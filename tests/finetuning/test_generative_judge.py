"""A generative judge (issue 23): a tiny local causal LM ranks a round through the `judge_round`
job, i.e. the people's hand-out and submit: every pair asked in both orders, a pair whose two
orders disagree is a tie and is counted as position-inconsistent, the rationale of both orders
is stored beside the ranking, and the task is marked for triage.

The model's answers are known (tests/model_server.py, JUDGED_CANDIDATES): of the three
candidates, "res" loses to both others in both orders, "headers" vs "builds" flips with the
order."""

from __future__ import annotations

import pytest

from feedback_app.annotation import services as annotation
from feedback_app.annotation.importing import check_records
from feedback_app.annotation.models import Assignment, Candidate, JudgeVote, Ranking
from feedback_app.core.models import Project
from feedback_app.finetuning import jobs, kinds, services
from feedback_app.workspace.judges import JudgeSpec, judge_add
from tests.model_server import JUDGED_CANDIDATES, TAIL_TEMPLATE

pytestmark = pytest.mark.django_db

N_TASKS = 3


def judged_project(*, name: str, weights: str, overlap: int = 2):
    """A project of N_TASKS tasks of JUDGED_CANDIDATES and a causal-LM judge on `weights`."""
    project = Project.objects.create(name=name, candidates_per_task=3, annotations_per_task=overlap)
    records = [
        {"prompt": f"Which word {i}", "candidates": JUDGED_CANDIDATES} for i in range(N_TASKS)
    ]
    annotation.prompts_import(project=project, records=check_records(enumerate(records, 1), k=3))
    judge = judge_add(
        project=project,
        spec=JudgeSpec(
            name=f"{name}-lm", kind="causal_lm", weights=weights, template=TAIL_TEMPLATE
        ),
    )
    return project, judge


def check_judged_round(project, judge, job) -> None:
    """What a causal-LM judge's round must leave behind (shared with the real-worker test)."""
    assert job.status == "succeeded", f"{job.error}\n{job.traceback}"
    assert job.outputs["ranked"] == N_TASKS and job.outputs["comparisons"] == 3 * N_TASKS
    assert job.outputs["position_inconsistent"] == N_TASKS  # one flipping pair a task
    assert job.outputs["tokens"] > 0 and job.progress == 1.0
    assert Assignment.objects.filter(annotator=judge.user, status="submitted").count() == N_TASKS
    text = dict(Candidate.objects.filter(task__project=project).values_list("pk", "text"))
    for ranking in Ranking.objects.filter(annotator=judge.user):
        # headers and builds tied (their orders disagreed), res below both.
        groups = [sorted(text[c] for c in group) for group in ranking.groups]
        assert groups == [["It builds", "It headers"], ["It res"]]
        vote = JudgeVote.objects.get(ranking=ranking)
        assert vote.inconsistent == 1 and vote.confidence == 0.0
        by_pair = {frozenset((text[c["a"]], text[c["b"]])): c for c in vote.comparisons}
        flip = by_pair[frozenset(("It headers", "It builds"))]
        assert flip["a_first"] == -flip["b_first"] != 0  # each order picked the one shown first
        for loser_pair in ({"It headers", "It res"}, {"It builds", "It res"}):
            c = by_pair[frozenset(loser_pair)]
            assert c["a_first"] == c["b_first"] != 0  # the same side in both orders
            winner = c["a"] if c["a_first"] == 1 else c["b"]
            assert text[winner] != "It res"
        # Both orders' answers are stored, for each of the three pairs.
        assert ranking.rationale.count("[a shown first] P(A)=") == 3
        assert ranking.rationale.count("[b shown first] P(A)=") == 3
        assert ranking.task.judge_unsure == 33  # one pair of three flipped: people see it first


def test_a_causal_lm_judge_ranks_a_round_through_the_handout_and_submit(tiny_judge_model):
    project, judge = judged_project(name="gen", weights=tiny_judge_model)
    job = services.job_launch(project=project, kind="judge_round", params={"judge": judge.pk})
    jobs.job_execute(
        job_id=job.pk, worker="w", runners=kinds.RUNNERS, torch_kinds=kinds.TORCH_KINDS
    )
    job.refresh_from_db()
    check_judged_round(project, judge, job)
