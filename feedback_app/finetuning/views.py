"""Admin pages of the loop: overview with launch forms, a live job page, model versions, and
the review queue."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from feedback_app.common.errors import InvalidInput, Problem, ServiceError
from feedback_app.common.storable import is_id
from feedback_app.core import preparing
from feedback_app.core.access import is_project_admin, project_administered_or_404
from feedback_app.core.audit import Origin
from feedback_app.core.eta import job_eta_text
from feedback_app.core.models import Job, ModelVersion, Project
from feedback_app.preferences import review as review_queue

from . import autopilot, guards_report, guide, jobs, rounds_report, selectors, services, versions
from .forms import AutopilotForm
from .kinds import FORMS, KINDS


def _admin_job(request: HttpRequest, job_id: int) -> Job:
    job = get_object_or_404(Job.objects.select_related("project"), pk=job_id)
    if not is_project_admin(request.user, job.project):
        raise Http404("No such job")
    return job


def _gate_outlook(project: Project, pilot: autopilot.AutopilotStatus) -> str:
    """Before a run: what the gate's win-rate check needs at the evaluation's sample size."""
    return autopilot.run_outlook(project=project, config=autopilot.settings_dict(pilot.pilot))[1]


def _loop_page(request, project, forms=None, status=200, autopilot_form=None) -> TemplateResponse:
    forms = forms or {}
    pilot = autopilot.autopilot_status(project=project)
    overview = selectors.loop_overview(project=project)
    step = guide.next_step(selectors.loop_state(project=project, overview=overview))
    launchers = {
        kind: forms.get(kind) or cls(project=project, prefix=kind) for kind, cls in FORMS.items()
    }
    context = {
        "autopilot": pilot,
        "autopilot_form": autopilot_form
        or AutopilotForm(initial=AutopilotForm.initial_from(autopilot.settings_dict(pilot.pilot))),
        "project": project,
        "overview": overview,
        "next": step,
        "steps": [(name, guide.STEP_LABELS[name]) for name in guide.STEPS],
        "recommended_form": launchers.get(step.kind) if step.kind else None,
        "advanced_open": any(f.errors for k, f in launchers.items() if k != step.kind),
        "gate_outlook": _gate_outlook(project, pilot),
        "jobs": selectors.recent_jobs(project=project),
        "worker_absent": selectors.worker_absent(project=project),
        "preparing": preparing.round_preparing(project=project, user=request.user),
        "forms": launchers,
        "kinds": {name: kind.label for name, kind in KINDS.items()},
    }
    return TemplateResponse(request, "finetuning/loop.html", context, status=status)


@login_required
@require_GET
def loop(request: HttpRequest, project_id: int) -> HttpResponse:
    return _loop_page(request, project_administered_or_404(request.user, project_id))


@login_required
@require_POST
def launch(request: HttpRequest, project_id: int, kind: str) -> HttpResponse:
    project = project_administered_or_404(request.user, project_id)
    if kind not in FORMS:
        raise Http404("No such job kind")
    form = FORMS[kind](request.POST, project=project, prefix=kind)
    if form.is_valid():
        try:
            job = services.job_launch(
                project=project, kind=kind, params=form.params(), origin=Origin.of(request)
            )
        except ServiceError as exc:
            for problem in exc.problems:
                name = problem.field if problem.field in form.fields else None
                form.add_error(name, problem.message if name else str(problem))
        else:
            messages.success(request, f"{job.get_kind_display()} queued as job #{job.pk}.")
            return redirect("finetuning:job", job_id=job.pk)
    return _loop_page(request, project, forms={kind: form}, status=400)


@login_required
@require_POST
def autopilot_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    """Save the autopilot's settings from the loop page (the API's rules: one checker)."""
    project = project_administered_or_404(request.user, project_id)
    form = AutopilotForm(request.POST)
    if form.is_valid():
        try:
            autopilot.autopilot_update(
                project=project, data=form.cleaned_data, origin=Origin.of(request)
            )
        except ServiceError as exc:
            for problem in exc.problems:
                name = problem.field.split(".")[0]
                name = name if name in form.fields else None
                form.add_error(name, str(problem))
        else:
            messages.success(request, "Autopilot settings saved.")
            return redirect("finetuning:loop", project_id=project.pk)
    return _loop_page(request, project, status=400, autopilot_form=form)


@login_required
@require_POST
def autopilot_pause(request: HttpRequest, project_id: int, action: str) -> HttpResponse:
    """Pause the autopilot, or resume it (a stopped run goes on, its failed job retried)."""
    project = project_administered_or_404(request.user, project_id)
    changes = {
        "pause": ({"paused": True}, "Autopilot paused."),
        "resume": ({"paused": False}, "Autopilot resumed."),
        "on": ({"enabled": True}, "Autopilot on."),
        "off": ({"enabled": False}, "Autopilot off."),
    }
    if action not in changes:
        raise Http404("No such action")
    data, said = changes[action]
    try:
        autopilot.autopilot_update(project=project, data=data, origin=Origin.of(request))
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, said)
    return redirect("finetuning:loop", project_id=project.pk)


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _admin_job(request, job_id)
    produced_id = job.outputs.get("model_version") if isinstance(job.outputs, dict) else None
    if job.kind == "evaluate":
        produced_id = job.params.get("policy")
    produced = (
        ModelVersion.objects.filter(project=job.project, pk=produced_id).first()
        if isinstance(produced_id, int) and not isinstance(produced_id, bool)
        else None
    )
    step = None
    if job.status == Job.Status.SUCCEEDED:
        overview = selectors.loop_overview(project=job.project)
        step = guide.next_step(selectors.loop_state(project=job.project, overview=overview))
    context = {
        "job": job,
        "produced": produced,
        "next": step,
        "results": _job_results(job, produced),
        "project": job.project,
        "status": selectors.job_status(job),
        "params_json": json.dumps(job.params, indent=2, sort_keys=True),
        "outputs_json": json.dumps(job.outputs, indent=2, sort_keys=True),
        "autopilot_step": autopilot.job_step(job=job),
        "ran_on": _ran_on(job),
    }
    return TemplateResponse(request, "finetuning/job.html", context)


# Where and how a job ran (`outputs["ran_on"]`, training.profile.WorkerProfile.describe()) and
# which engine generated (`outputs["engine"]`, training.engines.EngineChoice), as the page
# labels them.
RAN_ON_LABELS = (
    ("host", "Host"), ("launcher", "Launcher"), ("processes", "Processes"),
    ("backend", "Backend"), ("device", "Device"), ("mixed_precision", "Precision"),
    ("accelerate_config", "Accelerate config"), ("deepspeed_config", "DeepSpeed config"),
    ("sharded", "Sharded (FSDP, ZeRO-3)"),
    ("threads_per_process", "Threads per process"),
)  # fmt: skip
ENGINE_LABELS = (
    ("name", "Generation engine"), ("reason", "Why"), ("vllm_version", "vLLM"),
    ("use_vllm", "TRL use_vllm"),
)  # fmt: skip


def _ran_on(job: Job) -> list[tuple[str, Any]]:
    """The job's "where and how it ran" rows, recorded by the worker before the work started."""
    out = job.outputs if isinstance(job.outputs, dict) else {}
    rows: list[tuple[str, Any]] = []
    for key, labels in (("ran_on", RAN_ON_LABELS), ("engine", ENGINE_LABELS)):
        found = out.get(key)
        if isinstance(found, dict):
            rows += [(label, found[k]) for k, label in labels if found.get(k) not in (None, "")]
    return rows


def _job_results(job: Job, produced: ModelVersion | None) -> dict:
    """A job's outputs in the shape its page shows them (tables and cards, not JSON)."""
    out = job.outputs if isinstance(job.outputs, dict) else {}
    results: dict = {}
    if job.kind == "evaluate" and "win_rate" in out:
        results["evaluation"] = {
            "win_rate": out.get("win_rate"),
            "low": out.get("win_rate_low"),
            "high": out.get("win_rate_high"),
            "comparisons": out.get("comparisons"),
            "verdict": guide.verdict(
                out.get("win_rate"), out.get("win_rate_low"), out.get("win_rate_high")
            ),
            "kl": guide.kl_display(out.get("kl_to_parent"), out.get("kl_to_parent_stderr")),
            "judge": out.get("judge"),
            "examples": out.get("examples") or [],
        }
    if job.kind == "build_dataset" and "pairs" in out:
        results["snapshot"] = [
            (label, out[key])
            for key, label in (
                ("rankings", "Rankings"), ("candidate_pairs", "Candidate pairs"),
                ("pairs", "Pairs"), ("train", "Train"), ("test", "Test"),
                ("train_prompts", "Train prompts"), ("test_prompts", "Test prompts"),
            )
            if key in out
        ]  # fmt: skip
    guards = guards_report.job_guards(job)  # a stage against a reward model (issue 22)
    if guards:
        results["guards"] = guards
    metrics = out.get("metrics")
    if isinstance(metrics, dict):
        results["metrics"] = [
            (k, v) for k, v in sorted(metrics.items()) if isinstance(v, int | float | str)
        ]
    return results


@login_required
@require_GET
def jobs_running(request: HttpRequest) -> HttpResponse:
    """The top bar's "jobs running": queued and running jobs of the projects one administers."""
    running = selectors.running_jobs(user=request.user)
    return TemplateResponse(request, "finetuning/jobs.html", {"running": running})


@login_required
@require_GET
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    return JsonResponse(selectors.job_status(_admin_job(request, job_id)))


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _admin_job(request, job_id)
    try:
        job = jobs.job_cancel(job=job, origin=Origin.of(request))
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, "Cancel requested.")
    return redirect("finetuning:job", job_id=job.pk)


@login_required
@require_POST
def job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _admin_job(request, job_id)
    try:
        new = services.job_retry(job=job, origin=Origin.of(request))
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("finetuning:job", job_id=job.pk)
    return redirect("finetuning:job", job_id=new.pk)


@login_required
@require_GET
def model_list(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_administered_or_404(request.user, project_id)
    rows = [
        (
            v,
            guide.verdict(
                v.metrics.get("win_rate"), v.metrics.get("win_rate_low"),
                v.metrics.get("win_rate_high"),
            ),
            guide.kl_display(v.metrics.get("kl_to_parent"), v.metrics.get("kl_to_parent_stderr"))
            if "kl_to_parent" in v.metrics else None,
            guide.promote_warning(v.metrics),
        )
        for v in selectors.model_versions(project=project)
    ]  # fmt: skip
    return TemplateResponse(
        request, "finetuning/models.html", {"project": project, "versions": rows}
    )


@login_required
@require_GET
def rounds(request: HttpRequest, project_id: int) -> HttpResponse:
    """Per round: rankings, agreement, the policy's evaluation, the reward model's accuracy."""
    project = project_administered_or_404(request.user, project_id)
    figures = rounds_report.rounds_report(project=project)
    context = {
        "project": project,
        "rounds": figures,
        "charts": rounds_report.rounds_charts(figures),
    }
    return TemplateResponse(request, "finetuning/rounds.html", context, using="jinja2")


@login_required
@require_POST
def model_promote(request: HttpRequest, project_id: int, version_id: int) -> HttpResponse:
    project = project_administered_or_404(request.user, project_id)
    version = get_object_or_404(ModelVersion, pk=version_id, project=project)
    try:
        versions.model_promote_confirmed(
            version=version, confirm=bool(request.POST.get("confirm")), origin=Origin.of(request)
        )
    except InvalidInput:
        # The confirmation step: why this promotion needs a second thought, and a checkbox
        # the server requires.
        context = {
            "project": project,
            "version": version,
            "warning": guide.promote_warning(version.metrics or {}),
        }
        return TemplateResponse(request, "finetuning/promote_confirm.html", context)
    messages.success(
        request, f"{version.label} is now the active {version.get_kind_display().lower()}."
    )
    return redirect("finetuning:models", project_id=project.pk)


@login_required
def review(request: HttpRequest, project_id: int) -> HttpResponse:
    """The review queue: pairs the reward model confidently disagrees with people about; an
    admin asks for more votes on a task or drops a ranking (both recorded)."""
    project = project_administered_or_404(request.user, project_id)
    status = 200
    if request.method == "POST":
        action, reason = request.POST.get("action"), request.POST.get("reason", "")
        try:
            target = _posted_id(request, "task" if action == "more_votes" else "ranking")
            if action == "more_votes":
                review_queue.task_more_votes(
                    project=project, task_id=target, by=request.user, reason=reason
                )
                messages.success(request, f"Task {target} wants one more ranking.")
            elif action == "drop":
                review_queue.ranking_drop(
                    project=project, ranking_id=target, by=request.user, reason=reason
                )
                messages.success(request, f"Ranking {target} is left out of future datasets.")
            else:
                raise InvalidInput(Problem("action", "must be more_votes or drop"))
        except ServiceError as exc:
            for p in exc.problems:
                messages.error(request, f"{p.field}: {p.message}")
            status = exc.status_code
        else:
            return redirect("finetuning:review", project_id=project.pk)
    items = list(review_queue.review_items(project=project)[:REVIEW_PAGE_ITEMS])
    rankings = review_queue.rankings_of_tasks(task_ids={i.task_id for i in items})
    rows = [(item, rankings.get(item.task_id, [])) for item in items]
    scoring = selectors.last_review_scoring(project=project)
    context = {
        "project": project,
        "rows": rows,
        "scoring": scoring,
        "scoring_eta": job_eta_text(scoring) if scoring else None,
    }
    return TemplateResponse(request, "finetuning/review.html", context, status=status)


REVIEW_PAGE_ITEMS = 50


def _posted_id(request: HttpRequest, name: str) -> int:
    raw = request.POST.get(name, "")
    if not is_id(raw):
        raise InvalidInput(Problem(name, "must be an id"))
    return int(raw)
