"""What the page and the API show of the autopilot: its state in a word, the open round's progress
towards the trigger, the steps of a run, and which step a job is."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, Max, Q

from feedback_app.annotation.models import Ranking, Task
from feedback_app.core.models import Job, ModelVersion, Project

from ..models import Autopilot, AutopilotRun, AutopilotStep
from .settings import autopilot_get
from .steps import GATE, PROMOTE, STEP_LABELS, run_steps


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
