"""The judge_round job on a real Celery worker: a tiny causal-LM judge ranks a round through
the hand-out and submit in the worker process, as in production (tests/finetuning/
test_generative_judge.py runs the same round in-process and says what it must leave)."""

import pytest

from feedback_app.core.models import Judge
from tests.finetuning.test_generative_judge import check_judged_round, judged_project

from .test_loop import run


@pytest.mark.slow
def test_a_judge_round_runs_on_a_real_worker(start_worker, tiny_judge_model):
    start_worker()
    project, judge = judged_project(name="worker", weights=tiny_judge_model)
    job = run(project, "judge_round", {"judge": judge.pk}, timeout=240)
    check_judged_round(project, Judge.objects.get(pk=judge.pk), job)
