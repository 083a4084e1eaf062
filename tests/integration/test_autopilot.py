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
    # The gate's later inputs as permissive as the rest: tiny models pass on the rule, not luck.
    "min_lc_win_rate": 0.0,
    "max_length_ratio": 1000.0,
    "max_kl_to_base": 1000.0,
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


# Prompts of the fixed evaluation set (preferences/dataset.py, `in_eval_set`, by hash): one in
# the imported round, three among the prompts later rounds choose from.
EVAL_SET = [
    "The exception handler",
    "A decorator wraps",
    "A context manager",
    "A list comprehension",
]
LATER = [
    "A decorator wraps", "A context manager", "A list comprehension", "A tuple holds",
    "The for loop", "A set contains", "The while loop", "A string method", "A generator yields",
    "The lambda form", "A module imports", "The slice syntax",
]  # fmt: skip


def snapshot_prompts(job: Job) -> tuple[set[str], list[str]]:
    """(the prompts of a snapshot's train split, of its yardstick rows), from its files."""
    import json
    from pathlib import Path

    from feedback_app.core.models import DatasetSnapshot

    snap = DatasetSnapshot.objects.get(pk=job.outputs["snapshot"])
    folder = Path(snap.path)
    train = [json.loads(x) for x in (folder / "train.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (folder / "test.jsonl").read_text().splitlines()]
    yard = test[: snap.counts["yardstick"]]
    return {r["prompt"] for r in train}, [r["prompt"] for r in yard]


@pytest.mark.slow  # two learning runs on tiny models
def test_people_who_prefer_the_parent_roll_it_back_and_the_evaluation_set_is_never_trained_on(
    solo_pool, start_worker, start_sweeper, tiny_policy
):
    from feedback_app.annotation.models import Prompt
    from feedback_app.core.models import AuditEvent
    from feedback_app.finetuning.evalset import is_eval_prompt
    from feedback_app.finetuning.models import Round

    project = Project.objects.create(
        name="verdict", candidates_per_task=2, annotations_per_task=1, active_selection=True
    )
    first_round = [*PROMPTS, EVAL_SET[0]]
    records = [{"prompt": p, "candidates": [p + GOOD, p + BAD]} for p in first_round]
    records += [{"prompt": p} for p in LATER]
    prompts_import(project=project, records=check_records(enumerate(records, 1), k=2))
    held = {p.text for p in Prompt.objects.filter(project=project) if is_eval_prompt(p)}
    assert held == set(EVAL_SET)  # the precondition: these four are the evaluation set
    base = versions.model_register(project=project, kind="policy", name="base", weights=tiny_policy)
    bots = bots_ensure(project=project, count=2)
    params = {
        **SETTINGS["step_params"],
        "generate": {"max_new_tokens": 8, "seed": 1, "round_size": 4},
    }
    autopilot.autopilot_update(project=project, data={**SETTINGS, "step_params": params})
    start_worker()
    start_sweeper()

    simulate(project=project, annotators=bots)
    first = wait_for_run(1)
    assert first.state == "done" and first.promoted, first.stop_reason
    # Round 2 is the head-to-head, chosen by active selection with the reward model run 1
    # trained: the rule scored only prompts outside the evaluation set, whose share was drawn
    # beside them at random.
    second_round = Round.objects.get(project=project, number=2)
    selection = second_round.selection
    assert selection["rule"] != "random" and selection["pool_size"] == len(LATER) - 3
    chosen = Prompt.objects.filter(pk__in=selection["chosen"])
    assert len(chosen) == 3 and not any(is_eval_prompt(p) for p in chosen)
    asked = Prompt.objects.filter(tasks__round=2).distinct()
    assert len(asked) == 4 and sorted(selection["eval_set"]) == sorted(
        p.pk for p in asked if is_eval_prompt(p)
    )

    # The people prefer whatever the parent wrote: the head-to-head is the parent's.
    autopilot.autopilot_update(
        project=project,
        data={"min_win_rate_low": 0.5, "step_params": {**params, "evaluate": {"prompt_limit": 2,
              "max_new_tokens": 8}}},
    )  # fmt: skip
    simulate(project=project, annotators=bots, prefer=lambda c: c.model_version_id == base.pk)
    second = wait_for_run(2)
    first.refresh_from_db()
    assert first.human["verdict"] == "rolled back" and first.human["win_rate"] == 0.0
    assert "people preferred the parent" in first.human["reason"]
    assert ModelVersion.objects.get(kind="policy", is_active=True) == base
    assert second.parent_id == base.pk
    assert AuditEvent.objects.filter(action="autopilot.rollback", target="run 1").exists()
    # Said before run 2 began: two comparisons cannot give a lower bound of 0.5.
    assert second.config["gate_outlook"]["can_pass"] is False
    assert "cannot pass at this sample size" in second.config["gate_outlook"]["text"]
    assert AuditEvent.objects.filter(action="autopilot.outlook", target="run 2").exists()
    assert second.state == "done" and not second.promoted

    # Neither run trained on an evaluation-set prompt: their rows are the yardstick, and run 2's
    # snapshot holds both rounds (the rounds compound).
    for run in (first, second):
        train, yard = snapshot_prompts(step_jobs(run)["snapshot"])
        assert train and not train & held
        assert yard and set(yard) <= held
    assert step_jobs(second)["snapshot"].outputs["rankings"] == len(first_round) + 4
