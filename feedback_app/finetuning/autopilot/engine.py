"""The autopilot's engine: start a run when the trigger is met, and move it one step at a time
under the project's Autopilot row lock (the package docstring says how and why)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from feedback_app.common.errors import ServiceError
from feedback_app.core.audit import Origin, record
from feedback_app.core.models import Job, ModelVersion, Project

from .. import services
from ..gate import GateThresholds, gate_decide, gate_inputs
from ..human import CONFIRMED, ROLLED_BACK, human_verdict, round_human_win_rate
from ..models import Autopilot, AutopilotRun, AutopilotStep
from ..versions import model_promote
from .settings import check_settings, settings_dict
from .status import round_progress, run_outlook, trigger_met
from .steps import (
    EVALUATE,
    GATE,
    GENERATE,
    POLICY,
    PROMOTE,
    REWARD,
    SNAPSHOT,
    STEP_LABELS,
    run_steps,
    step_kind,
    step_params,
)

log = logging.getLogger(__name__)


@transaction.atomic
def autopilot_update(*, project: Project, data: Any, origin: Origin | None = None) -> Autopilot:
    """Change some settings (a JSON object of them; the others stay). `paused: false` resumes a
    stopped run; enabling it may start a run at once when the trigger is already met.

    Locks the Autopilot row, as `autopilot_advance` does, so a change never interleaves with
    a step being started.
    """
    pilot, _ = Autopilot.objects.select_for_update().get_or_create(project=project)
    before = settings_dict(pilot)
    merged = check_settings(project, data, before)
    resume = before["paused"] and not merged["paused"]
    for name, value in merged.items():
        setattr(pilot, name, value)
    pilot.save()
    changed = {k: v for k, v in merged.items() if before[k] != v}
    if changed:
        record(
            "autopilot.update", origin=origin, project=project,
            target=str(pilot), data={"changed": sorted(changed)},
        )  # fmt: skip
    if resume:
        _resume(pilot)
    _advance(pilot)
    return pilot


def autopilot_advance(*, project_id: int) -> str:
    """Move the project's autopilot forward if it can; what it did or waits for, in a word.

    Locks the project's Autopilot row for the whole decision (see the package docstring): a
    second caller waits, then sees the step the first one started.
    """
    with transaction.atomic():
        pilot = Autopilot.objects.select_for_update().filter(project_id=project_id).first()
        if pilot is None:
            return "off"
        return _advance(pilot)


def autopilot_after_job(*, job_id: int) -> str | None:
    """After a job of any kind finished: advance its project's autopilot, if one is on."""
    project_id = (
        Autopilot.objects.filter(enabled=True, paused=False, project__jobs__pk=job_id)
        .values_list("project_id", flat=True)
        .first()
    )
    return autopilot_advance(project_id=project_id) if project_id else None


def autopilot_tick() -> dict[int, str]:
    """Advance every enabled autopilot once (the sweeper's pass): triggers are noticed here,
    and so are jobs that ended without a worker (cancelled while queued, swept)."""
    done: dict[int, str] = {}
    ids = Autopilot.objects.filter(enabled=True, paused=False).values_list("project_id", flat=True)
    for project_id in list(ids):
        try:
            done[project_id] = autopilot_advance(project_id=project_id)
        except Exception:  # one project's trouble must not stop the others' or the sweep
            log.exception("autopilot of project %s could not advance", project_id)
    return done


def _open_run(pilot: Autopilot) -> AutopilotRun | None:
    return (
        AutopilotRun.objects.filter(project_id=pilot.project_id, state__in=OPEN)
        .select_related("parent", "policy", "reward")
        .first()
    )


OPEN = (AutopilotRun.State.RUNNING, AutopilotRun.State.STOPPED)


def _advance(pilot: Autopilot) -> str:
    """The decision, under the Autopilot row's lock."""
    if not pilot.enabled:
        return "off"
    if pilot.paused:
        return "paused"
    run = _open_run(pilot)
    if run is None:
        run = _start_run(pilot)
        if run is None:
            return "waiting"
    if run.state == AutopilotRun.State.STOPPED:
        return "stopped"
    return _advance_run(pilot, run)


def _start_run(pilot: Autopilot) -> AutopilotRun | None:
    """A new run, if the open round is new since the last run and the trigger is met."""
    project = pilot.project
    progress = round_progress(project=project)
    last = AutopilotRun.objects.filter(project=project).order_by("-number").first()
    if last is not None and last.round >= progress.round:
        return None  # this round was trained on already: wait for the next one
    if not trigger_met(pilot, progress):
        return None
    if last is not None:
        _people_decide(last, progress.round)
    parent = ModelVersion.objects.filter(
        project=project, kind=ModelVersion.Kind.POLICY, is_active=True
    ).first()
    if parent is None:
        return None
    config = settings_dict(pilot)
    # Said before the run: can its gate pass at the project's sample size? A run that cannot
    # still trains a reward model and asks the next round (more data), but nobody waits for a
    # promotion that cannot come: the run, the page and the audit log say so.
    outlook, why = run_outlook(project=project, config=config)
    config["gate_outlook"] = {
        "can_pass": outlook.can_pass, "comparisons": outlook.comparisons,
        "needed_win_rate": outlook.needed_win_rate, "text": why,
    }  # fmt: skip
    run = AutopilotRun.objects.create(
        project=project,
        number=(last.number + 1) if last else 1,
        round=progress.round,
        config=config,
        parent=parent,
    )
    if not outlook.can_pass:
        record(
            "autopilot.outlook", project=project, target=f"run {run.number}",
            data=config["gate_outlook"],
        )  # fmt: skip
        log.warning("autopilot of project %s, run %s: %s", project.pk, run.number, why)
    log.info(
        "autopilot of project %s: run %s started on round %s", project.pk, run.number, run.round
    )
    return run


def _people_decide(last: AutopilotRun, round_number: int) -> None:
    """The people have the last word on the last run's promotion: its head-to-head round (the
    one it generated, now ranked) gives the human win rate of its policy over its parent;
    rolled back (the parent active again) when they prefer the parent (finetuning/human.py)."""
    if not last.promoted or last.human or last.next_round != round_number:
        return
    if last.policy_id is None or last.parent_id is None:
        return
    rate = round_human_win_rate(
        project_id=last.project_id, round_number=round_number,
        new=last.policy_id, parent=last.parent_id,
    )  # fmt: skip
    margin = last.config.get("human_margin", 0.1)
    verdict = human_verdict(rate, margin=margin)
    last.human = {**rate.to_dict(), "verdict": verdict, "round": round_number, "margin": margin}
    last.save(update_fields=["human", "updated_at"])
    if verdict == ROLLED_BACK:
        parent = ModelVersion.objects.get(pk=last.parent_id)
        model_promote(version=parent)
        reason = (
            f"people preferred the parent {parent.name} in round {round_number}: human win rate "
            f"{rate.win_rate:.2f} (95 % {rate.low:.2f}-{rate.high:.2f}, {rate.rankings} rankings)"
        )
        last.human["reason"] = reason
        last.save(update_fields=["human", "updated_at"])
        record(
            "autopilot.rollback", project=last.project, target=f"run {last.number}",
            data={**last.human, "policy": last.policy_id, "parent": last.parent_id},
        )  # fmt: skip
        log.warning("autopilot of project %s rolled back: %s", last.project_id, reason)
    elif verdict == CONFIRMED:
        record(
            "autopilot.confirm", project=last.project, target=f"run {last.number}",
            data={**last.human, "policy": last.policy_id},
        )  # fmt: skip


def _newest_attempt(job: Job) -> Job:
    """The job, or its newest retry (the admin may have retried it from the job page)."""
    while True:
        retry = Job.objects.filter(retry_of=job).order_by("-id").first()
        if retry is None:
            return job
        job = retry


def _current_step(run: AutopilotRun) -> AutopilotStep | None:
    if not run.step or run.step == GATE:
        return None
    return AutopilotStep.objects.filter(run=run, name=run.step).select_related("job").first()


def _advance_run(pilot: Autopilot, run: AutopilotRun) -> str:
    """Start the first step, wait on the current one, or take the next; stop on a failure."""
    stage = run.config["stage"]
    if not run.step:
        return _start_step(pilot, run, SNAPSHOT)
    if run.step == GATE:  # decided but the next step never started (resumed): decide again
        return _decide(pilot, run)
    step = _current_step(run)
    if step is None or step.job is None:  # its job row was deleted: nothing to follow
        return _stop(pilot, run, f"{STEP_LABELS[run.step]}: its job is gone")
    job = _newest_attempt(step.job)
    if job.pk != step.job_id:
        step.job = job
        step.save(update_fields=["job", "updated_at"])
    if job.status in Job.ACTIVE:
        return f"waiting:{step.name}"
    if job.status != Job.Status.SUCCEEDED:
        why = job.error or job.status
        return _stop(pilot, run, f"{STEP_LABELS[step.name]}: job #{job.pk} {job.status}: {why}")
    _take_outputs(run, step.name, job)
    if step.name == GENERATE:
        run.state = AutopilotRun.State.DONE
        run.next_round = job.outputs.get("round")
        run.finished_at = timezone.now()
        run.save()
        if run.gate and not run.gate["passed"]:
            _pause_if_gates_keep_failing(pilot, run)
        return "done"
    if step.name == PROMOTE:
        run.promoted = True
        run.save(update_fields=["promoted", "updated_at"])
        if run.reward_id is not None:
            # The reward model the gate accepted becomes the active one too: the next round's
            # active selection and later evaluations score with it (rounds.active_reward_model).
            model_promote(version=run.reward)
        return _start_step(pilot, run, GENERATE)
    if step.name == EVALUATE:
        return _decide(pilot, run)
    order = run_steps(stage)
    return _start_step(pilot, run, order[order.index(step.name) + 1])


def _take_outputs(run: AutopilotRun, step: str, job: Job) -> None:
    """Record the model versions a step made on the run (the record other code reads)."""
    field = {REWARD: "reward", POLICY: "policy"}.get(step)
    if field and job.outputs.get("model_version"):
        setattr(run, f"{field}_id", job.outputs["model_version"])
        run.save(update_fields=[f"{field}_id", "updated_at"])


def _decide(pilot: Autopilot, run: AutopilotRun) -> str:
    """The gate on the evaluated policy: recorded on the run (and in the audit log); promote
    only if it passed, else go straight to the next round."""
    config = run.config
    policy = ModelVersion.objects.get(pk=run.policy_id)
    reward = ModelVersion.objects.get(pk=run.reward_id)
    thresholds = GateThresholds(
        min_win_rate_low=config["min_win_rate_low"],
        max_kl=config["max_kl"],
        min_reward_accuracy=config["min_reward_accuracy"],
        # Runs started before these settings existed are judged without them.
        max_kl_to_base=config.get("max_kl_to_base", 1e9),
        min_lc_win_rate=config.get("min_lc_win_rate", 0.0),
        max_length_ratio=config.get("max_length_ratio", 1e9),
    )
    decision = gate_decide(gate_inputs(policy.metrics, reward.metrics), thresholds)
    run.gate = {**decision.to_dict(), "policy": policy.pk, "reward": reward.pk}
    run.step = GATE
    run.save(update_fields=["gate", "step", "updated_at"])
    record(
        "autopilot.gate", project=run.project, target=f"run {run.number}: {policy.name}",
        data=run.gate,
    )  # fmt: skip
    return _start_step(pilot, run, PROMOTE if decision.passed else GENERATE)


def _failed_gates(pilot: Autopilot, limit: int) -> list[int]:
    """The numbers of the newest runs whose gate failed in a row, newest first (at most `limit`).

    Only done runs count (a stopped run has no verdict: it neither counts nor breaks the
    streak), a passed gate ends the streak, and so does the last resume: only runs that
    finished after `pilot.resumed_at` count, so a resumed autopilot needs as many new failures
    before it pauses again.
    """
    done = AutopilotRun.objects.filter(project_id=pilot.project_id, state=AutopilotRun.State.DONE)
    if pilot.resumed_at is not None:
        done = done.filter(finished_at__gt=pilot.resumed_at)
    streak = []
    for number, gate in done.order_by("-number").values_list("number", "gate")[:limit]:
        if not gate or gate["passed"]:
            break
        streak.append(number)
    return streak


def _pause_if_gates_keep_failing(pilot: Autopilot, run: AutopilotRun) -> None:
    """Pause, with the reason, when the run's gate is the `max_failed_gates`-th failure in a row
    (the run's copy of the setting; a run started before the setting existed has no cap)."""
    cap = run.config.get("max_failed_gates", 0)
    if not cap:
        return
    streak = _failed_gates(pilot, cap)
    if len(streak) < cap:
        return
    runs = f"run {run.number}" if cap == 1 else f"runs {streak[-1]}-{streak[0]}"
    gates = "gate failed" if cap == 1 else "gates failed in a row"
    reason = (
        f"{cap} {gates} ({runs}): no policy was promoted (the last: {run.gate.get('reason')}); "
        "check the gate's thresholds or the data, then resume."
    )
    pilot.paused = True
    pilot.pause_reason = reason
    pilot.save(update_fields=["paused", "pause_reason", "updated_at"])
    record(
        "autopilot.pause", project=run.project, target=f"run {run.number}",
        data={"reason": reason, "runs": sorted(streak), "max_failed_gates": cap},
    )  # fmt: skip
    log.warning("autopilot of project %s paused: %s", run.project_id, reason)


def _start_step(pilot: Autopilot, run: AutopilotRun, step: str) -> str:
    """Launch the step's job and record the step (once: unique per run); a refusal stops."""
    kind = step_kind(step, run.config["stage"])
    try:
        with transaction.atomic():  # a savepoint: a refused launch leaves no half of it
            job = services.job_launch(project=run.project, kind=kind, params=step_params(run, step))
            AutopilotStep.objects.create(run=run, name=step, job=job)
    except (ServiceError, KeyError) as exc:
        return _stop(pilot, run, f"{STEP_LABELS[step]} could not start: {exc}", step=step)
    run.step = step
    run.save(update_fields=["step", "updated_at"])
    return f"started:{step}"


def _stop(pilot: Autopilot, run: AutopilotRun, reason: str, *, step: str | None = None) -> str:
    """Stop the run with its reason and pause the autopilot: no step is retried by itself."""
    run.state = AutopilotRun.State.STOPPED
    run.stop_reason = reason[:2000]
    if step:
        run.step = step
    run.save(update_fields=["state", "stop_reason", "step", "updated_at"])
    pilot.paused = True
    pilot.pause_reason = f"Run {run.number} stopped: {run.stop_reason}"
    pilot.save(update_fields=["paused", "pause_reason", "updated_at"])
    record(
        "autopilot.stop", project=run.project, target=f"run {run.number}",
        data={"step": run.step, "reason": run.stop_reason},
    )  # fmt: skip
    log.warning("autopilot of project %s stopped: %s", run.project_id, reason)
    return "stopped"


def _resume(pilot: Autopilot) -> None:
    """Unpause, clear the pause's reason and restart the failed-gate streak (`resumed_at`); a
    stopped run goes on from its step: the newest attempt of the step's job is followed, and
    retried (the ordinary retry) if it failed or was cancelled. A step that could not start is
    tried again by the advance that follows."""
    pilot.paused = False
    pilot.pause_reason = ""
    pilot.resumed_at = timezone.now()
    pilot.save(update_fields=["paused", "pause_reason", "resumed_at", "updated_at"])
    run = _open_run(pilot)
    if run is None or run.state != AutopilotRun.State.STOPPED:
        return
    step = AutopilotStep.objects.filter(run=run, name=run.step).select_related("job").first()
    if step is not None and step.job is None:  # its job row was deleted: start it afresh
        step.delete()
        step = None
    if step is not None and step.job is not None:
        job = _newest_attempt(step.job)
        if job.retryable:
            job = services.job_retry(job=job)
        step.job = job
        step.save(update_fields=["job", "updated_at"])
    elif step is None and run.step:
        # It never started: take the run back to the step before, so the advance starts it.
        order = [s for s in run_steps(run.config["stage"]) if s != GATE]
        done = AutopilotStep.objects.filter(run=run).values_list("name", flat=True)
        run.step = max(done, key=order.index, default="")
    run.state = AutopilotRun.State.RUNNING
    run.stop_reason = ""
    run.save(update_fields=["state", "stop_reason", "step", "updated_at"])
    record("autopilot.resume", project=run.project, target=f"run {run.number}")
