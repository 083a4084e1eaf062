"""Admin pages of the loop: overview with launch forms, a live job page, model versions, and
the review queue."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from feedback_app.common.errors import InvalidInput, Problem, ServiceError
from feedback_app.common.storable import is_id
from feedback_app.core.access import is_project_admin, project_administered_or_404
from feedback_app.core.audit import Origin
from feedback_app.core.models import Job, ModelVersion
from feedback_app.preferences import review as review_queue

from . import autopilot, jobs, rounds_report, selectors, services, versions
from .forms import AutopilotForm
from .kinds import FORMS, KINDS


def _admin_job(request: HttpRequest, job_id: int) -> Job:
    job = get_object_or_404(Job.objects.select_related("project"), pk=job_id)
    if not is_project_admin(request.user, job.project):
        raise Http404("No such job")
    return job


def _loop_page(request, project, forms=None, status=200, autopilot_form=None) -> TemplateResponse:
    forms = forms or {}
    pilot = autopilot.autopilot_status(project=project)
    context = {
        "autopilot": pilot,
        "autopilot_form": autopilot_form
        or AutopilotForm(initial=AutopilotForm.initial_from(autopilot.settings_dict(pilot.pilot))),
        "project": project,
        "overview": selectors.loop_overview(project=project),
        "jobs": selectors.recent_jobs(project=project),
        "worker_absent": selectors.worker_absent(project=project),
        "forms": {
            kind: forms.get(kind) or cls(project=project, prefix=kind)
            for kind, cls in FORMS.items()
        },
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
                project=project, data=form.cleaned_data, user=request.user, request=request
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
    if action not in ("pause", "resume"):
        raise Http404("No such action")
    try:
        autopilot.autopilot_update(
            project=project, data={"paused": action == "pause"}, user=request.user,
            request=request,
        )  # fmt: skip
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, "Autopilot paused." if action == "pause" else "Autopilot resumed.")
    return redirect("finetuning:loop", project_id=project.pk)


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _admin_job(request, job_id)
    context = {
        "job": job,
        "project": job.project,
        "status": selectors.job_status(job),
        "params_json": json.dumps(job.params, indent=2, sort_keys=True),
        "outputs_json": json.dumps(job.outputs, indent=2, sort_keys=True),
        "autopilot_step": autopilot.job_step(job=job),
    }
    return TemplateResponse(request, "finetuning/job.html", context)


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
    versions = selectors.model_versions(project=project)
    return TemplateResponse(
        request, "finetuning/models.html", {"project": project, "versions": versions}
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
    versions.model_promote(version=version, origin=Origin.of(request))
    messages.success(
        request, f"{version.name} is now the active {version.get_kind_display().lower()}."
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
    return TemplateResponse(
        request, "finetuning/review.html", {"project": project, "rows": rows}, status=status
    )


REVIEW_PAGE_ITEMS = 50


def _posted_id(request: HttpRequest, name: str) -> int:
    raw = request.POST.get(name, "")
    if not is_id(raw):
        raise InvalidInput(Problem(name, "must be an id"))
    return int(raw)
