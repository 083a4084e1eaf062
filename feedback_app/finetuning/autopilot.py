"""The autopilot: the loop runs itself, one ordinary job a step.

When the open round has enough rankings (or a set share of its tasks done), a *run* starts and
goes through its steps, each an ordinary job (same page, cancel, retry):

    snapshot -> reward -> [kto_snapshot] -> policy -> evaluate -> gate -> [promote] -> generate

`policy` trains with the chosen stage (DPO, KTO, GRPO, RLOO) from the active policy (the
*parent*); `evaluate` compares it with the parent, judged by the reward model of this run; the
gate (`gate.py`, pure) decides from the win rate's interval, the KL and the reward model's
accuracy; `promote` runs only if it passed; `generate` makes the next round: head-to-head between
the new policy and its parent (the parent writing `head_to_head_share` of K) after a promotion,
from the active policy alone otherwise. The run is then done; the next one waits for the
trigger on that new round.

`autopilot_advance` moves a project's autopilot one step forward when it can. It is called when
a job finishes (`tasks.run_job`) and by the sweeper every few seconds (`manage.py sweep_jobs`),
so a job cancelled while queued or failed by the sweep moves it too. Every call locks the
project's Autopilot row (`select_for_update`; on SQLite, BEGIN IMMEDIATE serialises atomic
blocks), reads the run and its steps under that lock, and starts at most one next step; a
unique constraint on (run, step) and one on the open run of a project back it up, so two
workers advancing at once never start a step twice.

A step whose job fails or is cancelled, or that cannot start (its parameters are refused),
*stops* the run with the reason and pauses the autopilot: nothing is retried by itself, so a
broken step never loops. The admin retries the job (the ordinary retry) or fixes the settings,
then resumes; resuming follows the step's newest attempt (retrying it if it still failed).

A failed gate is a decision, not a failure: the run generates the next round from the active
policy and is done. But gates that keep failing would spend compute and annotators' time on
rounds whose policy is never promoted, so after `max_failed_gates` of them in a row (the run's
copy of the setting; 0: never) the autopilot pauses itself with the reason (`pause_reason`,
audited as `autopilot.pause`); the round the last run generated stays open for annotators. See
`_failed_gates` for what counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from feedback_app.annotation.models import Ranking, Task
from feedback_app.common import storable
from feedback_app.common.errors import InvalidInput, Problem, ServiceError
from feedback_app.core.audit import record
from feedback_app.core.models import Job, ModelVersion, Project
from training.config import (
    DPOTrainConfig,
    EvalConfig,
    GRPOTrainConfig,
    KTOTrainConfig,
    Range,
    RewardTrainConfig,
    RLOOTrainConfig,
)

from . import params as checkers
from . import services
from .gate import GateThresholds, gate_decide, gate_inputs
from .models import Autopilot, AutopilotRun, AutopilotStep
from .versions import model_promote

log = logging.getLogger(__name__)

# The steps, in order. KTO trains on a KTO snapshot, built after the pairs one; the gate is a
# decision, not a job (stored on the run); promote runs only when the gate passed.
SNAPSHOT, REWARD, KTO_SNAPSHOT, POLICY, EVALUATE, PROMOTE, GENERATE = (
    "snapshot", "reward", "kto_snapshot", "policy", "evaluate", "promote", "generate",
)  # fmt: skip
GATE = "gate"
STEP_LABELS = {
    SNAPSHOT: "Build the pairs snapshot",
    REWARD: "Train the reward model",
    KTO_SNAPSHOT: "Build the KTO snapshot",
    POLICY: "Train the policy",
    EVALUATE: "Evaluate against the parent",
    GATE: "Gate",
    PROMOTE: "Promote",
    GENERATE: "Generate the next round",
}
STAGE_KINDS = {"dpo": "train_dpo", "kto": "train_kto", "grpo": "train_grpo", "rloo": "train_rloo"}
STAGE_CONFIGS = {
    "dpo": DPOTrainConfig,
    "kto": KTOTrainConfig,
    "grpo": GRPOTrainConfig,
    "rloo": RLOOTrainConfig,
}
STEP_KINDS = {
    SNAPSHOT: "build_dataset",
    REWARD: "train_reward",
    KTO_SNAPSHOT: "build_dataset",
    EVALUATE: "evaluate",
    PROMOTE: "promote",
    GENERATE: "generate",
}


def run_steps(stage: str) -> list[str]:
    """The steps of a run with `stage`, in order (the gate sits between evaluate and promote)."""
    middle = [KTO_SNAPSHOT] if stage == "kto" else []
    return [SNAPSHOT, REWARD, *middle, POLICY, EVALUATE, GATE, PROMOTE, GENERATE]


def step_kind(step: str, stage: str) -> str:
    return STAGE_KINDS[stage] if step == POLICY else STEP_KINDS[step]


# --- settings -----------------------------------------------------------------------------------

SHARE = Range(0, 1, low_open=True)
UNIT = Range(0, 1)
KL = Range(0, 1_000_000)
H2H_SHARE = Range(0, 1, high_open=True)
RANKINGS = Range(1, 1_000_000_000, integer=True)
FAILED_GATES = Range(0, 1000, integer=True)
SETTINGS = {
    "enabled": bool,
    "paused": bool,
    "trigger": Autopilot.Trigger.values,
    "trigger_rankings": RANKINGS,
    "trigger_share": SHARE,
    "stage": Autopilot.Stage.values,
    "min_win_rate_low": UNIT,
    "max_kl": KL,
    "min_reward_accuracy": UNIT,
    "head_to_head_share": H2H_SHARE,
    "max_failed_gates": FAILED_GATES,
    "step_params": dict,
}
# The step parameters the admin may set: each step's settings, never the ids the run fills in.
STEP_PARAM_STEPS = (SNAPSHOT, REWARD, POLICY, EVALUATE, GENERATE)
RUN_SETS = {
    SNAPSHOT: {"kind"},
    REWARD: {"snapshot", "base"},
    POLICY: {"snapshot", "policy", "reward_model", "eval_prompts"},
    EVALUATE: {"policy", "reward"},
    GENERATE: {"model_versions", "split"},
}


def settings_dict(pilot: Autopilot) -> dict[str, Any]:
    """The settings as stored (and as a run copies them when it starts)."""
    return {name: getattr(pilot, name) for name in SETTINGS}


def _check_value(name: str, allowed: Any, value: Any) -> Any:
    if allowed is bool:
        if not isinstance(value, bool):
            raise InvalidInput(Problem(name, "must be true or false"))
        return value
    if allowed is dict:
        if not isinstance(value, dict):
            raise InvalidInput(Problem(name, "must be a JSON object"))
        return value
    if isinstance(allowed, list):
        if value not in allowed:
            raise InvalidInput(Problem(name, f"must be one of {allowed}"))
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not allowed.allows(value):
        raise InvalidInput(Problem(name, f"must be {allowed}"))
    return float(value) if not allowed.integer else value


def _prefixed(step: str, exc: ServiceError) -> InvalidInput:
    return InvalidInput([Problem(f"step_params.{step}.{p.field}", p.message) for p in exc.problems])


def check_step_params(project: Project, stage: str, value: dict[str, Any]) -> dict[str, Any]:
    """Each step's parameters checked by the rules of its job kind (the ids a run fills in are
    refused); stored as given, so a default that changes later still applies."""
    unknown = sorted(set(value) - set(STEP_PARAM_STEPS))
    if unknown:
        raise InvalidInput(
            Problem(f"step_params.{unknown[0]}", f"not a step; one of {list(STEP_PARAM_STEPS)}")
        )
    for step, given in value.items():
        if not isinstance(given, dict):
            raise InvalidInput(Problem(f"step_params.{step}", "must be a JSON object"))
        taken = sorted(set(given) & RUN_SETS[step])
        if taken:
            raise InvalidInput(
                Problem(f"step_params.{step}.{taken[0]}", "set by the autopilot for each run")
            )
        try:
            if step == SNAPSHOT:
                checkers.check_build_dataset(project, given)
            elif step == REWARD:
                checkers.check_config(RewardTrainConfig, given)
            elif step == POLICY:
                checkers.check_config(STAGE_CONFIGS[stage], given)
            elif step == EVALUATE:
                rest = {k: v for k, v in given.items() if k != "prompt_limit"}
                checkers.check_config(EvalConfig, rest)
                _limit(given)
            else:  # generate
                rest = {k: v for k, v in given.items() if k not in ROUND_FIELDS}
                unknown = sorted(set(rest) - set(checkers.GENERATE_FIELDS))
                if unknown:
                    raise InvalidInput(Problem(unknown[0], "unknown parameter"))
                checkers.check_config(
                    checkers.GenerateConfig, {"num_samples": project.candidates_per_task, **rest}
                )
                _limit(given)
                _round_size(given)
        except ServiceError as exc:
            raise _prefixed(step, exc) from exc
    return value


# The generate step's round: `round_size` prompts not asked before, chosen by the project's
# selection rule (active selection scores `pool_size` of them), as a generate job takes them.
ROUND_FIELDS = ("prompt_limit", "round_size", "pool_size")


def _round_size(given: dict[str, Any]) -> None:
    size, pool = given.get("round_size"), given.get("pool_size")
    for field, value in (("round_size", size), ("pool_size", pool)):
        if value is not None and (
            isinstance(value, bool) or not checkers.PROMPT_LIMIT.allows(value)
        ):
            raise InvalidInput(Problem(field, f"must be {checkers.PROMPT_LIMIT}"))
    if pool is not None and size is None:
        raise InvalidInput(Problem("pool_size", "only with round_size"))
    if pool is not None and pool < size:
        raise InvalidInput(Problem("pool_size", "must be at least round_size"))


def _limit(given: dict[str, Any]) -> None:
    value = given.get("prompt_limit")
    if value is not None and (isinstance(value, bool) or not checkers.PROMPT_LIMIT.allows(value)):
        raise InvalidInput(Problem("prompt_limit", f"must be {checkers.PROMPT_LIMIT}"))


def check_settings(project: Project, data: Any, current: dict[str, Any]) -> dict[str, Any]:
    """The settings after applying `data` (a JSON object of some of them) to `current`."""
    if not isinstance(data, dict):
        raise InvalidInput(Problem("body", "send a JSON object of settings"))
    storable.check_json(data)
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise InvalidInput(Problem(unknown[0], "unknown setting"))
    merged = dict(current)
    for name, value in data.items():
        merged[name] = _check_value(name, SETTINGS[name], value)
    merged["step_params"] = check_step_params(project, merged["stage"], merged["step_params"])
    return merged


def autopilot_get(*, project: Project) -> Autopilot:
    """The project's autopilot, unsaved with the defaults (off) if it was never set."""
    return Autopilot.objects.filter(project=project).first() or Autopilot(project=project)


@transaction.atomic
def autopilot_update(*, project: Project, data: Any, user=None, request=None) -> Autopilot:
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
            "autopilot.update", actor=user, request=request, project=project,
            target=str(pilot), data={"changed": sorted(changed)},
        )  # fmt: skip
    if resume:
        _resume(pilot)
    _advance(pilot)
    return pilot


# --- the engine ---------------------------------------------------------------------------------


def autopilot_advance(*, project_id: int) -> str:
    """Move the project's autopilot forward if it can; what it did or waits for, in a word.

    Locks the project's Autopilot row for the whole decision (see the module docstring): a
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


@dataclass(frozen=True)
class RoundProgress:
    """How far the open round is, for the trigger: rankings, and tasks done of its tasks."""

    round: int
    rankings: int
    tasks: int
    tasks_done: int

    @property
    def share_done(self) -> float:
        return self.tasks_done / self.tasks if self.tasks else 0.0


def round_progress(*, project: Project) -> RoundProgress:
    """The open (newest) round's rankings and finished tasks; gold tasks are not counted."""
    current = Task.objects.filter(project=project).aggregate(n=Max("round"))["n"] or 0
    tasks = Task.objects.filter(project=project, round=current, gold__isnull=True).aggregate(
        total=Count("pk"), done=Count("pk", filter=Q(submitted_count__gte=F("target_annotations")))
    )
    rankings = Ranking.objects.filter(
        task__project=project, task__round=current, task__gold__isnull=True
    ).count()
    return RoundProgress(current, rankings, tasks["total"], tasks["done"])


def trigger_met(pilot: Autopilot, progress: RoundProgress) -> bool:
    if not progress.tasks:
        return False
    if pilot.trigger == Autopilot.Trigger.RANKINGS:
        return progress.rankings >= pilot.trigger_rankings
    return progress.share_done >= pilot.trigger_share


def _start_run(pilot: Autopilot) -> AutopilotRun | None:
    """A new run, if the open round is new since the last run and the trigger is met."""
    project = pilot.project
    progress = round_progress(project=project)
    last = AutopilotRun.objects.filter(project=project).order_by("-number").first()
    if last is not None and last.round >= progress.round:
        return None  # this round was trained on already: wait for the next one
    if not trigger_met(pilot, progress):
        return None
    parent = ModelVersion.objects.filter(
        project=project, kind=ModelVersion.Kind.POLICY, is_active=True
    ).first()
    if parent is None:
        return None
    run = AutopilotRun.objects.create(
        project=project,
        number=(last.number + 1) if last else 1,
        round=progress.round,
        config=settings_dict(pilot),
        parent=parent,
    )
    log.info(
        "autopilot of project %s: run %s started on round %s", project.pk, run.number, run.round
    )
    return run


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


def _step_params(run: AutopilotRun, step: str) -> dict[str, Any]:
    """The job parameters of a step: the admin's step settings, plus what this run made."""
    config = run.config
    own = dict(config.get("step_params", {}).get(step, {}))
    steps = {s.name: s.job for s in AutopilotStep.objects.filter(run=run).select_related("job")}

    def made(name: str, key: str) -> Any:
        return steps[name].outputs[key]

    if step == SNAPSHOT:
        return own
    if step == REWARD:
        return {**own, "snapshot": made(SNAPSHOT, "snapshot"), "base": run.parent_id}
    if step == KTO_SNAPSHOT:
        pairs = config.get("step_params", {}).get(SNAPSHOT, {})
        split = {k: pairs[k] for k in ("test_fraction", "seed") if k in pairs}
        return {**split, "kind": "kto"}
    if step == POLICY:
        stage = config["stage"]
        snapshot = made(KTO_SNAPSHOT if stage == "kto" else SNAPSHOT, "snapshot")
        out = {**own, "snapshot": snapshot, "policy": run.parent_id}
        if stage != "dpo":
            out["eval_prompts"] = 0  # the evaluate step evaluates, with this run's judge
        if stage in ("grpo", "rloo"):
            out["reward_model"] = run.reward_id
        return out
    if step == EVALUATE:
        return {"prompt_limit": 16, **own, "policy": run.policy_id, "reward": run.reward_id}
    if step == PROMOTE:
        return {"model_version": run.policy_id}
    # GENERATE: head-to-head with the parent after a promotion, else the active policy alone
    k = run.project.candidates_per_task
    parent_share = round(k * config["head_to_head_share"])
    if run.promoted and parent_share >= 1 and run.parent_id:
        parent_share = min(parent_share, k - 1)
        return {**own, "model_versions": [run.policy_id, run.parent_id],
                "split": [k - parent_share, parent_share]}  # fmt: skip
    return {**own, "model_versions": [None]}


def _start_step(pilot: Autopilot, run: AutopilotRun, step: str) -> str:
    """Launch the step's job and record the step (once: unique per run); a refusal stops."""
    kind = step_kind(step, run.config["stage"])
    try:
        with transaction.atomic():  # a savepoint: a refused launch leaves no half of it
            job = services.job_launch(
                project=run.project, kind=kind, params=_step_params(run, step)
            )
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


# --- what the page and the API show -------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    name: str
    label: str
    job: Job | None
    status: str  # the job's status; "passed"/"failed" for the gate; "pending", "skipped"


@dataclass(frozen=True)
class AutopilotStatus:
    pilot: Autopilot
    state: str  # off, waiting, running, paused, stopped
    detail: str
    progress: RoundProgress
    run: AutopilotRun | None  # the open run, else the newest
    steps: list[StepView]


def run_step_views(run: AutopilotRun) -> list[StepView]:
    """Every step of a run in order, with its job (the newest attempt) or why it has none."""
    jobs_by_step = {
        s.name: s.job for s in AutopilotStep.objects.filter(run=run).select_related("job")
    }
    views = []
    for name in run_steps(run.config.get("stage", "dpo")):
        job = jobs_by_step.get(name)
        if name == GATE:
            status = ("passed" if run.gate["passed"] else "failed") if run.gate else "pending"
        elif job is not None:
            status = job.status
        elif name == PROMOTE and run.gate and not run.gate["passed"]:
            status = "skipped"
        else:
            status = "pending"
        views.append(StepView(name, STEP_LABELS[name], job, status))
    return views


def autopilot_status(*, project: Project) -> AutopilotStatus:
    """The autopilot at a glance: its state in a word and a sentence, the open round's
    progress towards the trigger, and the steps of the current (else the last) run."""
    pilot = autopilot_get(project=project)
    progress = round_progress(project=project)
    run = (
        AutopilotRun.objects.filter(project=project)
        .select_related("parent", "policy", "reward")
        .order_by("-number")
        .first()
    )
    if run is not None and run.state == AutopilotRun.State.STOPPED:
        state, detail = "stopped", f"Run {run.number} stopped: {run.stop_reason}"
    elif not pilot.enabled:
        state, detail = "off", "Off: the loop runs only when an admin launches its jobs."
    elif pilot.paused and pilot.pause_reason:
        state, detail = "paused", f"Paused: {pilot.pause_reason}"
    elif pilot.paused:
        state, detail = "paused", "Paused: no step starts until it is resumed."
    elif run is not None and run.state == AutopilotRun.State.RUNNING:
        state, detail = "running", f"Run {run.number}: {STEP_LABELS.get(run.step, run.step)}."
    else:
        state, detail = "waiting", _waiting(pilot, progress)
    return AutopilotStatus(
        pilot, state, detail, progress, run, run_step_views(run) if run is not None else []
    )


def _waiting(pilot: Autopilot, progress: RoundProgress) -> str:
    if not progress.tasks:
        return "Waiting for a first round: generate or import one."
    if not ModelVersion.objects.filter(
        project_id=pilot.project_id, kind=ModelVersion.Kind.POLICY, is_active=True
    ).exists():
        return "Waiting for an active policy to train from."
    last = AutopilotRun.objects.filter(project_id=pilot.project_id).order_by("-number").first()
    if last is not None and last.round >= progress.round:
        return f"Waiting for a new round: run {last.number} trained on round {last.round}."
    if pilot.trigger == Autopilot.Trigger.RANKINGS:
        return (
            f"Waiting: round {progress.round} has {progress.rankings} of "
            f"{pilot.trigger_rankings} rankings."
        )
    return (
        f"Waiting: round {progress.round} has {progress.tasks_done} of {progress.tasks} tasks "
        f"done ({progress.share_done:.0%}); it starts at {pilot.trigger_share:.0%}."
    )


@dataclass(frozen=True)
class JobStep:
    run: AutopilotRun
    label: str


def job_step(*, job: Job) -> JobStep | None:
    """The autopilot step a job is (or was retried for), for its page; None for other jobs."""
    ids, parent = [job.pk], job.retry_of_id
    while parent is not None and len(ids) < 100:  # a retry of a step's job is that step too
        ids.append(parent)
        parent = Job.objects.filter(pk=parent).values_list("retry_of_id", flat=True).first()
    step = AutopilotStep.objects.filter(job_id__in=ids).select_related("run").first()
    return JobStep(step.run, STEP_LABELS[step.name]) if step is not None else None
