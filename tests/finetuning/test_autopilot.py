"""The autopilot's engine, step by step: the jobs are real rows run through `job_execute`, with
the real snapshot and promote runners; only the torch runners are stand-ins that register what
a training run would (versions and metrics), so every branch is quick to reach.

The end-to-end proof on a real worker with real training is tests/integration/test_autopilot.py.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from feedback_app.annotation import handout, submit
from feedback_app.annotation.models import Candidate, Prompt, Task
from feedback_app.common.errors import InvalidInput
from feedback_app.core.models import AuditEvent, Job, ModelVersion
from feedback_app.finetuning import autopilot, jobs, runners, versions
from feedback_app.finetuning.models import Autopilot, AutopilotRun, AutopilotStep
from feedback_app.finetuning.rounds import round_store

pytestmark = pytest.mark.django_db

# What the stand-in evaluation measures; a test changes it to fail the gate.
GOOD_EVAL = {"win_rate": 0.9, "win_rate_low": 0.7, "kl_to_parent": 0.2}
BAD_EVAL = {"win_rate": 0.3, "win_rate_low": 0.1, "kl_to_parent": 0.2}  # fails min 0.6


class Stand:
    """Stand-in runners for the torch kinds, and a switch to fail one kind."""

    def __init__(self):
        self.evaluation = dict(GOOD_EVAL)
        self.reward_accuracy = 0.9
        self.fail: set[str] = set()

    def runner(self, kind):
        def run(job, reporter):
            if kind in self.fail:
                raise RuntimeError(f"{kind} broke")
            return getattr(self, kind)(job)

        return run

    def train_reward(self, job):
        rm = versions.model_register(
            project=job.project, kind="reward", name=f"rm-{job.pk}", weights="/nowhere",
            job=job, metrics={"heldout_accuracy": self.reward_accuracy},
        )  # fmt: skip
        return {"model_version": rm.pk}

    def train_policy(self, job):
        parent = ModelVersion.objects.get(pk=job.params["policy"])
        policy = versions.model_register(
            project=job.project, kind="policy", name=f"policy-{job.pk}", weights="/nowhere",
            parent=parent, job=job, activate_if_first=False,
        )  # fmt: skip
        return {"model_version": policy.pk}

    train_dpo = train_kto = train_grpo = train_rloo = train_policy

    def evaluate(self, job):
        policy = ModelVersion.objects.get(pk=job.params["policy"])
        policy.metrics = {**policy.metrics, **self.evaluation}
        policy.save()
        return {"model_version": policy.pk}

    def generate(self, job):
        versions_ = [ModelVersion.objects.get(pk=pk) for pk in job.params["model_versions"]]
        prompts = list(Prompt.objects.filter(project=job.project).order_by("id"))
        split = zip(versions_, job.params["split"], strict=True)
        row = [(f"{v.name} answer {i}", v) for v, n in split for i in range(n)]
        rows = [list(row) for _ in prompts]
        rnd = round_store(project=job.project, prompts=prompts, candidates=rows, versions=versions_)
        return {"round": rnd.number, "tasks": len(prompts)}


@pytest.fixture
def stand():
    return Stand()


@pytest.fixture
def pilot_project(make_project, alice, tmp_path):
    """Four tasks of K=3 in round 1, one ranking each wanted, a base policy active."""
    project = make_project(name="auto", k=3, overlap=1, n_tasks=4, annotators=[alice])
    versions.model_register(project=project, kind="policy", name="base", weights=str(tmp_path))
    return project


def rank_all(project, user) -> int:
    """Rank every open task: candidates by id, best first (gives pairs, unlike ties)."""
    done = 0
    while (a := handout.task_assign_next(project=project, annotator=user)) is not None:
        ids = sorted(Candidate.objects.filter(task_id=a.task_id).values_list("id", flat=True))
        submit.ranking_submit(task_id=a.task_id, annotator=user, groups=[[i] for i in ids])
        done += 1
    return done


STAND_KINDS = ("train_reward", "train_dpo", "train_kto", "train_grpo", "train_rloo", "evaluate",
               "generate")  # fmt: skip


def drive(project, stand, *, limit=20, settle=True) -> list[Job]:
    """Run the project's queued jobs one by one as a worker does, advancing after each (at
    most `limit`; with `settle`, none may be left)."""
    ran = []
    for _ in range(limit):
        job = Job.objects.filter(project=project, status="queued").order_by("id").first()
        if job is None:
            return ran
        table = {kind: stand.runner(kind) for kind in STAND_KINDS}
        table.update(build_dataset=runners.run_build_dataset, promote=runners.run_promote)
        jobs.job_execute(job_id=job.pk, worker="test", runners=table)
        autopilot.autopilot_after_job(job_id=job.pk)
        ran.append(job)
    assert not settle, "the pipeline did not settle"
    return ran


def turn_on(project, **settings):
    return autopilot.autopilot_update(project=project, data={"enabled": True, **settings})


def run_round(project, user, stand, evaluation) -> AutopilotRun:
    """Rank the open round, then let the autopilot run on it to the end, its evaluation
    measuring `evaluation` (GOOD_EVAL passes a gate of min_win_rate_low 0.6, BAD_EVAL fails)."""
    stand.evaluation = dict(evaluation)
    rank_all(project, user)
    autopilot.autopilot_advance(project_id=project.pk)
    drive(project, stand)
    return AutopilotRun.objects.filter(project=project).order_by("-number").first()


def steps_of(run):
    return {s.name: s.job for s in AutopilotStep.objects.filter(run=run).select_related("job")}


# --- off, waiting, trigger --------------------------------------------------------------------


def test_off_by_default_and_nothing_happens(pilot_project, alice):
    rank_all(pilot_project, alice)
    assert not autopilot.autopilot_get(project=pilot_project).enabled
    assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "off"
    assert autopilot.autopilot_tick() == {}
    assert not Job.objects.exists() and not AutopilotRun.objects.exists()


def test_waits_until_the_share_of_tasks_done_is_reached(pilot_project, alice):
    turn_on(pilot_project, trigger_share=1.0)
    annotation_done = 0
    while annotation_done < 3:
        a = handout.task_assign_next(project=pilot_project, annotator=alice)
        ids = sorted(Candidate.objects.filter(task_id=a.task_id).values_list("id", flat=True))
        submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=[[i] for i in ids])
        annotation_done += 1
    assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "waiting"
    assert autopilot.round_progress(project=pilot_project).share_done == 0.75
    rank_all(pilot_project, alice)
    assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "started:snapshot"
    run = AutopilotRun.objects.get()
    assert (run.number, run.round, run.state, run.step) == (1, 1, "running", "snapshot")
    assert steps_of(run)["snapshot"].kind == "build_dataset"


def test_the_rankings_trigger_counts_the_open_rounds_rankings(pilot_project, alice):
    turn_on(pilot_project, trigger="rankings", trigger_rankings=4)
    rank_all(pilot_project, alice)
    assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "started:snapshot"


def test_advancing_again_starts_nothing_twice(pilot_project, alice):
    rank_all(pilot_project, alice)
    turn_on(pilot_project)
    for _ in range(3):
        assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "waiting:snapshot"
    assert Job.objects.count() == 1 and AutopilotStep.objects.count() == 1


# --- a whole run ------------------------------------------------------------------------------


def test_a_run_goes_through_every_step_promotes_and_generates_a_head_to_head_round(
    pilot_project, alice, stand
):
    rank_all(pilot_project, alice)
    turn_on(pilot_project, head_to_head_share=0.34, min_win_rate_low=0.6)
    ran = drive(pilot_project, stand)
    assert [j.kind for j in ran] == [
        "build_dataset", "train_reward", "train_dpo", "evaluate", "promote", "generate",
    ]  # fmt: skip
    assert all(j.status == "succeeded" for j in Job.objects.all())
    run = AutopilotRun.objects.get()
    assert (run.state, run.promoted, run.round, run.next_round) == ("done", True, 1, 2)
    assert run.gate["passed"] and run.gate["inputs"]["win_rate_low"] == 0.7
    assert run.gate["thresholds"]["min_win_rate_low"] == 0.6
    assert run.policy.is_active and run.policy.parent == run.parent and not run.parent.is_active
    assert run.reward.metrics["heldout_accuracy"] == 0.9
    # Head-to-head: of K=3 the parent writes round(3 * 0.34) = 1, the new policy 2.
    generate = steps_of(run)["generate"]
    assert generate.params["model_versions"] == [run.policy_id, run.parent_id]
    assert generate.params["split"] == [2, 1]
    assert Task.objects.filter(project=pilot_project, round=2).count() == 4
    # Evaluated by this run's reward model; the policy trained from the parent on the snapshot.
    steps = steps_of(run)
    assert steps["evaluate"].params["reward"] == run.reward_id
    assert steps["policy"].params["snapshot"] == steps["snapshot"].outputs["snapshot"]
    assert AuditEvent.objects.filter(action="autopilot.gate").count() == 1
    # Done with round 1: nothing starts again until round 2 is ranked.
    assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "waiting"
    rank_all(pilot_project, alice)
    assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "started:snapshot"
    assert AutopilotRun.objects.get(number=2).round == 2
    # Run 2 passes too: its reward model becomes the active one with its policy, so the next
    # round's active selection scores with the reward model the gate accepted.
    drive(pilot_project, stand)
    second = AutopilotRun.objects.get(number=2)
    assert second.promoted and second.reward_id != run.reward_id
    active = ModelVersion.objects.get(project=pilot_project, kind="reward", is_active=True)
    assert active == second.reward


def test_a_gate_that_fails_stops_promotion_and_the_next_round_comes_from_the_parent(
    pilot_project, alice, stand
):
    rank_all(pilot_project, alice)
    turn_on(pilot_project, min_win_rate_low=1.0)  # impossible: the lower end is always below 1
    ran = drive(pilot_project, stand)
    assert "promote" not in [j.kind for j in ran]
    run = AutopilotRun.objects.get()
    assert (run.state, run.promoted, run.next_round) == ("done", False, 2)
    assert not run.gate["passed"] and "win rate lower bound 0.700 < 1.000" in run.gate["reason"]
    assert run.parent.is_active and not run.policy.is_active
    generate = steps_of(run)["generate"]
    assert generate.params["model_versions"] == [run.parent_id]


@pytest.mark.parametrize("stage", ["kto", "grpo", "rloo"])
def test_other_stages_train_with_their_kind_and_leave_evaluation_to_the_evaluate_step(
    pilot_project, alice, stand, stage
):
    rank_all(pilot_project, alice)
    turn_on(pilot_project, stage=stage, trigger_share=0.5)
    # The KTO snapshot needs rows: the runner is the real one, so check the launch alone.
    autopilot.autopilot_advance(project_id=pilot_project.pk)
    drive(pilot_project, stand, limit=2, settle=False)  # snapshot, reward
    run = AutopilotRun.objects.get()
    steps = steps_of(run)
    if stage == "kto":
        assert steps["kto_snapshot"].params["kind"] == "kto"
        return
    policy = steps["policy"]
    assert policy.kind == f"train_{stage}" and policy.params["eval_prompts"] == 0
    assert policy.params["reward_model"] == run.reward_id


# --- failures stop, never loop ----------------------------------------------------------------


def test_a_failed_step_stops_the_run_with_its_reason_and_nothing_retries_by_itself(
    pilot_project, alice, stand
):
    rank_all(pilot_project, alice)
    turn_on(pilot_project)
    stand.fail.add("train_reward")
    drive(pilot_project, stand)
    run = AutopilotRun.objects.get()
    assert run.state == "stopped" and run.step == "reward"
    assert "Train the reward model: job #" in run.stop_reason and "reward broke" in run.stop_reason
    pilot = autopilot.autopilot_get(project=pilot_project)
    assert pilot.paused and pilot.pause_reason == f"Run 1 stopped: {run.stop_reason}"
    for _ in range(3):  # the sweeper's passes and later jobs change nothing
        autopilot.autopilot_tick()
        assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "paused"
    assert Job.objects.filter(kind="train_reward").count() == 1


def test_resume_retries_the_failed_job_and_the_run_goes_on(pilot_project, alice, stand):
    rank_all(pilot_project, alice)
    turn_on(pilot_project)
    stand.fail.add("evaluate")
    drive(pilot_project, stand)
    failed = Job.objects.get(kind="evaluate")
    stand.fail.clear()
    autopilot.autopilot_update(project=pilot_project, data={"paused": False})
    assert autopilot.autopilot_get(project=pilot_project).pause_reason == ""
    retry = Job.objects.get(retry_of=failed)  # the ordinary retry: a new row pointing back
    assert AutopilotRun.objects.get().state == "running"
    drive(pilot_project, stand)
    run = AutopilotRun.objects.get()
    assert run.state == "done" and run.promoted and steps_of(run)["evaluate"] == retry


def test_a_retry_from_the_job_page_is_followed_when_the_admin_resumes(pilot_project, alice, stand):
    from feedback_app.finetuning import services

    rank_all(pilot_project, alice)
    turn_on(pilot_project)
    stand.fail.add("train_dpo")
    drive(pilot_project, stand)
    stand.fail.clear()
    retry = services.job_retry(job=Job.objects.get(kind="train_dpo"))
    drive(pilot_project, stand)  # the retry runs and succeeds; the run stays stopped, paused
    assert AutopilotRun.objects.get().state == "stopped"
    autopilot.autopilot_update(project=pilot_project, data={"paused": False})
    assert Job.objects.filter(kind="train_dpo").count() == 2  # adopted, not retried again
    drive(pilot_project, stand)
    run = AutopilotRun.objects.get()
    assert run.state == "done" and steps_of(run)["policy"] == retry


def test_a_steps_job_deleted_stops_the_run_and_resuming_starts_the_step_afresh(
    pilot_project, alice, stand
):
    rank_all(pilot_project, alice)
    turn_on(pilot_project)
    drive(pilot_project, stand, limit=1, settle=False)  # the snapshot
    Job.objects.filter(kind="train_reward").delete()
    autopilot.autopilot_tick()
    assert "its job is gone" in AutopilotRun.objects.get().stop_reason
    autopilot.autopilot_update(project=pilot_project, data={"paused": False})
    assert Job.objects.filter(kind="train_reward", status="queued").count() == 1
    drive(pilot_project, stand)
    assert AutopilotRun.objects.get().state == "done"


def test_a_job_cancelled_while_queued_stops_the_run_at_the_sweepers_pass(pilot_project, alice):
    rank_all(pilot_project, alice)
    turn_on(pilot_project)
    jobs.job_cancel(job=Job.objects.get(kind="build_dataset"))
    autopilot.autopilot_tick()
    run = AutopilotRun.objects.get()
    assert run.state == "stopped" and "cancelled" in run.stop_reason


def test_a_step_whose_parameters_are_refused_stops_naming_the_problem(make_project, alice, stand):
    project = make_project(name="ties", k=2, overlap=1, n_tasks=2, annotators=[alice])
    versions.model_register(project=project, kind="policy", name="b", weights="/nowhere")
    while (a := handout.task_assign_next(project=project, annotator=alice)) is not None:
        ids = list(Candidate.objects.filter(task_id=a.task_id).values_list("id", flat=True))
        submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=[ids])  # all tied
    turn_on(project)
    drive(project, stand)
    run = AutopilotRun.objects.get()
    assert run.state == "stopped" and run.step == "reward"
    assert "could not start" in run.stop_reason and "snapshot" in run.stop_reason
    assert not Job.objects.filter(kind="train_reward").exists()
    assert not AutopilotStep.objects.filter(name="reward").exists()


def test_paused_it_starts_no_step_and_resuming_takes_the_next(pilot_project, alice, stand):
    rank_all(pilot_project, alice)
    turn_on(pilot_project)
    autopilot.autopilot_update(project=pilot_project, data={"paused": True})
    drive(pilot_project, stand)  # the snapshot job that was queued still runs
    assert list(Job.objects.values_list("kind", flat=True)) == ["build_dataset"]
    autopilot.autopilot_update(project=pilot_project, data={"paused": False})
    assert Job.objects.filter(kind="train_reward").exists()


# --- gates that keep failing pause it ---------------------------------------------------------


def test_three_failed_gates_in_a_row_pause_it_with_the_reason_and_leave_the_round_open(
    pilot_project, alice, stand
):
    turn_on(pilot_project, min_win_rate_low=0.6)  # max_failed_gates: 3 by default
    for number in (1, 2):
        run = run_round(pilot_project, alice, stand, BAD_EVAL)
        assert (run.number, run.state, run.promoted) == (number, "done", False)
        assert not autopilot.autopilot_get(project=pilot_project).paused
    run = run_round(pilot_project, alice, stand, BAD_EVAL)
    assert (run.number, run.state, run.next_round, run.config["max_failed_gates"]) == (
        3, "done", 4, 3,
    )  # fmt: skip
    pilot = autopilot.autopilot_get(project=pilot_project)
    assert pilot.paused
    assert pilot.pause_reason.startswith(
        "3 gates failed in a row (runs 1-3): no policy was promoted (the last: win rate lower "
        "bound 0.100 < 0.600"
    )
    assert pilot.pause_reason.endswith("check the gate's thresholds or the data, then resume.")
    status = autopilot.autopilot_status(project=pilot_project)
    assert status.state == "paused" and status.detail == f"Paused: {pilot.pause_reason}"
    event = AuditEvent.objects.get(action="autopilot.pause")
    assert event.project == pilot_project and event.target == "run 3"
    assert event.data["runs"] == [1, 2, 3] and event.data["max_failed_gates"] == 3
    # The round run 3 generated stays open for annotators; no run starts on it.
    assert rank_all(pilot_project, alice) == 4
    assert autopilot.autopilot_advance(project_id=pilot_project.pk) == "paused"
    assert AutopilotRun.objects.count() == 3


def test_max_failed_gates_0_never_pauses(pilot_project, alice, stand):
    turn_on(pilot_project, min_win_rate_low=0.6, max_failed_gates=0)
    for _ in range(4):
        run_round(pilot_project, alice, stand, BAD_EVAL)
    assert not autopilot.autopilot_get(project=pilot_project).paused
    assert AutopilotRun.objects.filter(state="done", promoted=False).count() == 4
    assert not AuditEvent.objects.filter(action="autopilot.pause").exists()


def test_a_passed_gate_in_between_resets_the_failed_gate_streak(pilot_project, alice, stand):
    turn_on(pilot_project, min_win_rate_low=0.6, max_failed_gates=2)
    for evaluation in (BAD_EVAL, GOOD_EVAL, BAD_EVAL):
        run_round(pilot_project, alice, stand, evaluation)
        assert not autopilot.autopilot_get(project=pilot_project).paused
    assert AutopilotRun.objects.get(number=2).promoted
    run_round(pilot_project, alice, stand, BAD_EVAL)
    pilot = autopilot.autopilot_get(project=pilot_project)
    assert pilot.paused and "2 gates failed in a row (runs 3-4)" in pilot.pause_reason


def test_after_a_resume_it_takes_max_failed_gates_new_failures_to_pause_again(
    pilot_project, alice, stand
):
    turn_on(pilot_project, min_win_rate_low=0.6, max_failed_gates=2)
    for _ in range(2):
        run_round(pilot_project, alice, stand, BAD_EVAL)
    assert autopilot.autopilot_get(project=pilot_project).paused
    autopilot.autopilot_update(project=pilot_project, data={"paused": False})
    pilot = autopilot.autopilot_get(project=pilot_project)
    assert not pilot.paused and pilot.pause_reason == ""
    assert autopilot.autopilot_status(project=pilot_project).state == "waiting"
    run_round(pilot_project, alice, stand, BAD_EVAL)  # run 3: one failure since the resume
    assert not autopilot.autopilot_get(project=pilot_project).paused
    run = run_round(pilot_project, alice, stand, BAD_EVAL)
    pilot = autopilot.autopilot_get(project=pilot_project)
    assert run.number == 4 and pilot.paused
    assert "2 gates failed in a row (runs 3-4)" in pilot.pause_reason
    assert AuditEvent.objects.filter(action="autopilot.pause").count() == 2


def test_a_run_pauses_by_the_cap_it_started_with(pilot_project, alice, stand):
    turn_on(pilot_project, min_win_rate_low=0.6, max_failed_gates=1)
    rank_all(pilot_project, alice)
    autopilot.autopilot_advance(project_id=pilot_project.pk)  # run 1 starts with a cap of 1
    autopilot.autopilot_update(project=pilot_project, data={"max_failed_gates": 0})
    stand.evaluation = dict(BAD_EVAL)
    drive(pilot_project, stand)
    pilot = autopilot.autopilot_get(project=pilot_project)
    assert pilot.paused and pilot.pause_reason.startswith("1 gate failed (run 1): ")


# --- settings ---------------------------------------------------------------------------------


BAD_SETTINGS = [
    ({"bogus": 1}, "bogus"),
    ({"enabled": "true"}, "enabled"),
    ({"trigger": "sometimes"}, "trigger"),
    ({"trigger_share": 0}, "trigger_share"),
    ({"trigger_rankings": 1.5}, "trigger_rankings"),
    ({"stage": "ppo"}, "stage"),
    ({"min_win_rate_low": 1.5}, "min_win_rate_low"),
    ({"max_kl": -1}, "max_kl"),
    ({"head_to_head_share": 1}, "head_to_head_share"),
    ({"max_failed_gates": -1}, "max_failed_gates"),
    ({"max_failed_gates": 1.5}, "max_failed_gates"),
    ({"max_failed_gates": "x"}, "max_failed_gates"),
    ({"max_failed_gates": 1001}, "max_failed_gates"),
    ({"max_failed_gates": True}, "max_failed_gates"),
    ({"step_params": []}, "step_params"),
    ({"step_params": {"train": {}}}, "step_params.train"),
    ({"step_params": {"policy": {"beta": 0}}}, "step_params.policy.beta"),
    ({"step_params": {"policy": {"snapshot": 3}}}, "step_params.policy.snapshot"),
    ({"step_params": {"reward": {"epochs": -1}}}, "step_params.reward.epochs"),
    ({"step_params": {"generate": {"split": [1, 2]}}}, "step_params.generate.split"),
    ({"step_params": {"generate": {"max_new_tokens": 0}}}, "step_params.generate.max_new_tokens"),
    ({"step_params": {"evaluate": {"prompt_limit": 0}}}, "step_params.evaluate.prompt_limit"),
    ({"step_params": {"generate": {"round_size": 0}}}, "step_params.generate.round_size"),
    ({"step_params": {"generate": {"pool_size": 8}}}, "step_params.generate.pool_size"),
    ({"step_params": {"generate": {"round_size": 8, "pool_size": 4}}},
     "step_params.generate.pool_size"),
    ({"step_params": {"snapshot": {"min_agreement": 2}}}, "step_params.snapshot.min_agreement"),
    ({"step_params": {"snapshot": {"kind": "kto"}}}, "step_params.snapshot.kind"),
    ([], "body"),
]  # fmt: skip


def test_bad_settings_are_refused_naming_the_field_and_nothing_is_stored(pilot_project):
    for data, field in BAD_SETTINGS:
        with pytest.raises(InvalidInput) as caught:
            autopilot.autopilot_update(project=pilot_project, data=data)
        assert caught.value.field == field, data
    assert not Autopilot.objects.exists()


def test_max_failed_gates_is_an_integer_from_0_to_1000(pilot_project):
    assert autopilot.autopilot_get(project=pilot_project).max_failed_gates == 3
    for value in (0, 1000, 5):
        pilot = autopilot.autopilot_update(project=pilot_project, data={"max_failed_gates": value})
        assert pilot.max_failed_gates == value
    with pytest.raises(InvalidInput) as caught:
        autopilot.autopilot_update(project=pilot_project, data={"max_failed_gates": 2.0})
    assert str(caught.value.problems[0]) == "max_failed_gates: must be an integer in [0, 1000]"
    with pytest.raises(InvalidInput):
        autopilot.autopilot_update(project=pilot_project, data={"pause_reason": "x"})


def test_the_generate_step_may_ask_a_round_of_unasked_prompts_by_the_selection_rule(
    pilot_project,
):
    data = {"step_params": {"generate": {"round_size": 4, "pool_size": 8}}}
    pilot = autopilot.autopilot_update(project=pilot_project, data=data)
    assert pilot.step_params == {"generate": {"round_size": 4, "pool_size": 8}}


def test_policy_params_are_checked_against_the_stage_chosen_in_the_same_change(pilot_project):
    data = {"stage": "kto", "step_params": {"policy": {"desirable_weight": 2.0}}}
    pilot = autopilot.autopilot_update(project=pilot_project, data=data)
    assert pilot.step_params == {"policy": {"desirable_weight": 2.0}}
    with pytest.raises(InvalidInput):
        autopilot.autopilot_update(project=pilot_project, data={"stage": "dpo"})


def test_a_run_keeps_the_settings_it_started_with(pilot_project, alice, stand):
    rank_all(pilot_project, alice)
    turn_on(pilot_project, min_win_rate_low=0.6)
    autopilot.autopilot_update(project=pilot_project, data={"min_win_rate_low": 1.0})
    drive(pilot_project, stand)
    run = AutopilotRun.objects.get()
    assert run.config["min_win_rate_low"] == 0.6 and run.gate["passed"]


# --- two at once ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres  # row locks
def test_two_workers_advancing_at_once_start_each_step_once(pilot_project, alice):
    rank_all(pilot_project, alice)
    Autopilot.objects.create(project=pilot_project, enabled=True)
    barrier = threading.Barrier(2)
    answers, errors = [], []

    def advance():
        try:
            barrier.wait()
            answers.append(autopilot.autopilot_advance(project_id=pilot_project.pk))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    for _ in range(3):  # start the run and its first step; then again: both only wait
        threads = [threading.Thread(target=advance) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    assert sorted(answers) == ["started:snapshot"] + ["waiting:snapshot"] * 5
    assert AutopilotRun.objects.count() == 1 and Job.objects.count() == 1
