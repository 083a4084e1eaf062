"""The loop runs itself: two autopilot runs on a real worker and the real sweeper, with simulated
annotators, tiny models and real training. The first passes its gate and is promoted; the second
is held to an impossible gate (the lower end of a Wilson interval is never 1) and is not."""

import time

import pytest

from feedback_app.annotation.importing import check_records
from feedback_app.annotation.models import Candidate
from feedback_app.annotation.services import prompts_import
from feedback_app.annotation.simulation import bots_ensure, simulate
from feedback_app.core.models import Job, ModelVersion, Project
from feedback_app.finetuning import autopilot, versions
from feedback_app.finetuning.models import AutopilotRun, AutopilotStep

# Round 1 is imported with candidates the bots' rule tells apart (annotation/simulation.py), so
# every ranking gives a pair; later rounds are written by the policies.
GOOD, BAD = " is useful and valid here.", " fails with an error."
PROMPTS = [
    "The list type", "A function call", "The with statement", "Each module object",
    "A dictionary maps", "The import system", "A class definition", "The return value",
]  # fmt: skip
TINY = {"epochs": 1, "batch_size": 8, "max_length": 48}
SETTINGS = {
    "enabled": True,
    "trigger": "share",
    "trigger_share": 1.0,
    "stage": "dpo",
    "min_win_rate_low": 0.0,
    "max_kl": 1000.0,
    "min_reward_accuracy": 0.0,
    "head_to_head_share": 0.5,
    "step_params": {
        "snapshot": {"test_fraction": 0.3},
        "reward": TINY,
        "policy": {**TINY, "learning_rate": 5e-4},
        "evaluate": {"prompt_limit": 4, "max_new_tokens": 8},
        "generate": {"max_new_tokens": 8, "seed": 1},
    },
}


@pytest.fixture
def solo_pool(monkeypatch):
    """The worker runs jobs in its own process (as `make run` ships on the filesystem broker),
    so torch stays loaded between the nine torch steps; Redis's shipped prefork pool forks a
    fresh child a job, which imports torch again each time (the test took 239 s that way
    against 49 s, on this busy machine). The pools themselves are tests/integration/
    test_worker.py's and bench/worker_faults.py's subject, not this test's."""
    monkeypatch.setenv("CELERY_WORKER_POOL", "solo")


def wait_for_run(number: int, timeout: float = 400) -> AutopilotRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = AutopilotRun.objects.filter(number=number).first()
        if run is not None and run.state != "running":
            return run
        time.sleep(0.5)
    jobs = list(Job.objects.order_by("id").values_list("kind", "status", "error"))
    pytest.fail(f"autopilot run {number} did not finish: {jobs}")


def step_jobs(run: AutopilotRun) -> dict[str, Job]:
    return {s.name: s.job for s in AutopilotStep.objects.filter(run=run).select_related("job")}


@pytest.mark.slow  # trains a reward model and a DPO policy twice (a learning run)
def test_two_autopilot_runs_on_a_real_worker_promote_only_through_the_gate(
    solo_pool, start_worker, start_sweeper, tiny_policy
):
    project = Project.objects.create(
        name="autopilot", candidates_per_task=2, annotations_per_task=1
    )
    records = [{"prompt": p, "candidates": [p + GOOD, p + BAD]} for p in PROMPTS]
    prompts_import(project=project, records=check_records(enumerate(records, 1), k=2))
    base = versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    bots = bots_ensure(project=project, count=2)
    autopilot.autopilot_update(project=project, data=SETTINGS)
    start_worker()
    start_sweeper()  # notices the trigger; the worker advances after each job

    # Run 1: every step succeeds, the gate passes, the new policy is promoted, and the next
    # round is head-to-head between it and its parent.
    assert simulate(project=project, annotators=bots).submitted == len(PROMPTS)
    first = wait_for_run(1)
    steps = step_jobs(first)
    assert first.state == "done", first.stop_reason
    assert list(steps) == ["snapshot", "reward", "policy", "evaluate", "promote", "generate"]
    assert all(j.status == "succeeded" for j in steps.values()), steps
    assert first.gate["passed"] and first.promoted and (first.round, first.next_round) == (1, 2)
    inputs = first.gate["inputs"]
    assert 0.0 <= inputs["win_rate_low"] <= inputs["win_rate"] and inputs["kl"] is not None
    assert inputs["reward_accuracy"] is not None
    policy = ModelVersion.objects.get(pk=first.policy_id)
    assert policy.is_active and policy.parent == base and policy.stage == "dpo"
    assert (
        policy.metrics["win_rate_low"]
        <= policy.metrics["win_rate"]
        <= policy.metrics["win_rate_high"]
    )
    writers = Candidate.objects.filter(task__project=project, task__round=2)
    assert sorted(set(writers.values_list("model_version", flat=True))) == [base.pk, policy.pk]

    # Run 2 is held to a gate nothing passes: everything runs, but nothing is promoted and the
    # next round comes from the active policy alone.
    autopilot.autopilot_update(project=project, data={"min_win_rate_low": 1.0})
    assert simulate(project=project, annotators=bots).submitted == len(PROMPTS)
    second = wait_for_run(2)
    steps = step_jobs(second)
    assert second.state == "done", second.stop_reason
    assert list(steps) == ["snapshot", "reward", "policy", "evaluate", "generate"]
    assert all(j.status == "succeeded" for j in steps.values()), steps
    assert not second.gate["passed"] and not second.promoted
    assert "win rate lower bound" in second.gate["reason"]
    assert second.gate["thresholds"]["min_win_rate_low"] == 1.0
    # People had the last word on run 1's promotion (round 2 was its head-to-head): its
    # verdict is recorded, and a rollback made the parent active again before run 2 began.
    first.refresh_from_db()
    assert first.human["round"] == 2 and first.human["rankings"] > 0
    kept = base if first.human["verdict"] == "rolled back" else policy
    assert (first.human["win_rate"] < 0.5) == (kept == base)
    assert second.parent_id == kept.pk
    assert ModelVersion.objects.get(kind="policy", is_active=True) == kept
    writers = Candidate.objects.filter(task__project=project, task__round=3)
    assert set(writers.values_list("model_version", flat=True)) == {kept.pk}
    # Each step ran once: the worker's hook and the sweeper advanced side by side.
    assert Job.objects.filter(project=project).count() == 11
    assert set(Job.objects.values_list("status", flat=True)) == {"succeeded"}
