"""Pages: the annotator's ranking page, guidelines, and the admin import and gold pages."""

from __future__ import annotations

from string import ascii_uppercase

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from feedback_app.common.errors import NotAllowed, ServiceError
from feedback_app.common.middleware import accepts_body_up_to
from feedback_app.core import access, preparing
from feedback_app.core.audit import Origin
from feedback_app.core.models import Project

from . import demonstrations, gold, handout, selectors, services, submit
from .forms import ImportForm, ranks_from_post
from .importing import parse_jsonl
from .models import Assignment, Task
from .rankings import FLAGS


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    projects = access.projects_visible_to(request.user).filter(archived=archived)
    administered = set(access.projects_administered_by(request.user).values_list("pk", flat=True))
    projects = list(projects)
    found = preparing.rounds_preparing(
        project_ids=[p.pk for p in projects], administered=administered
    )
    for project in projects:
        project.preparing = found.get(project.pk)
    return TemplateResponse(
        request,
        "annotation/home.html",
        {"projects": projects, "administered": administered, "archived": archived},
    )


def _task_page(
    request: HttpRequest,
    project: Project,
    assignment: Assignment | None,
    *,
    errors: list | None = None,
    status: int = 200,
) -> TemplateResponse:
    context = {
        "project": project,
        "progress": selectors.annotator_progress(project=project, annotator=request.user),
        "errors": errors or [],
        "assignment": assignment,
        "posted": request.POST if request.method == "POST" else {},
        "preparing": None,
    }
    if assignment is None:
        context["preparing"] = preparing.round_preparing(project=project, user=request.user)
    if assignment is not None:
        candidates = selectors.candidates_in_display_order(assignment)
        prompt = assignment.task.prompt
        context.update(
            task=assignment.task,
            prompt=prompt,
            candidates=[
                {"label": ascii_uppercase[i], "key": i + 1, "candidate": c}
                for i, c in enumerate(candidates)
            ],
            ranks=range(1, len(candidates) + 1),
            flags=FLAGS,
        )
    return TemplateResponse(request, "annotation/annotate.html", context, status=status)


@login_required
@require_GET
def annotate(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access.project_annotated_or_404(request.user, project_id)
    assignment = handout.task_assign_next(project=project, annotator=request.user)
    return _task_page(request, project, assignment)


def _posted_demonstration(post) -> tuple[str, int | None] | None:
    """The demonstration on the ranking form (text, edited candidate), or None if left blank."""
    text, edited = post.get("demonstration", ""), post.get("edited_from", "")
    if not text.strip():
        return None
    return text, int(edited) if edited.isdigit() and len(edited) <= 18 else None


def _submit(request: HttpRequest, project_id: int, task_id: int) -> None:
    submit.ranking_submit(
        task_id=task_id,
        annotator=request.user,
        groups=ranks_from_post(request.POST),
        rationale=request.POST.get("rationale", ""),
        flags=request.POST.getlist("flags"),
        project_id=project_id,
    )


@login_required
@require_POST
def submit_ranking(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    demo = _posted_demonstration(request.POST)
    try:
        if demo is None:
            _submit(request, project_id, task_id)
        else:
            # Both or neither: a refused demonstration leaves the ranking unsaved, so the page
            # comes back with the field named and everything the annotator did still there.
            with transaction.atomic():
                _submit(request, project_id, task_id)
                demonstrations.demonstration_submit(
                    task_id=task_id, annotator=request.user, text=demo[0], edited_from=demo[1]
                )
    except NotAllowed as exc:
        raise Http404("No such task") from exc  # not a member: the project is not revealed
    except ServiceError as exc:
        assignment = _handed_assignment(request, project_id, task_id)
        project = assignment.task.project
        return _task_page(request, project, assignment, errors=exc.problems, status=exc.status_code)
    messages.success(request, "Ranking saved.")
    return redirect("annotation:annotate", project_id=project_id)


def _handed_assignment(request: HttpRequest, project_id: int, task_id: int) -> Assignment:
    """The annotator's assignment of the task, or 404 (the service checked membership)."""
    assignment = (
        Assignment.objects.select_related("task__prompt", "task__project")
        .filter(task_id=task_id, task__project_id=project_id, annotator=request.user)
        .first()
    )
    if assignment is None:
        raise Http404("This task was not handed to you")
    return assignment


@login_required
@require_POST
def skip_task(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    try:
        services.task_skip(task_id=task_id, annotator=request.user)
    except NotAllowed as exc:
        raise Http404("No such task") from exc  # not a member: the project is not revealed
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, "Skipped; you will not see that task again.")
    return redirect("annotation:annotate", project_id=project_id)


@login_required
@require_GET
def guidelines(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access.project_annotated_or_404(request.user, project_id)
    return TemplateResponse(request, "annotation/guidelines.html", {"project": project})


@login_required
@accepts_body_up_to("IMPORT_MAX_BYTES")
def import_prompts(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access.project_administered_or_404(request.user, project_id)
    form = ImportForm(request.POST or None, request.FILES or None)
    problems: list = []
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            records = parse_jsonl(form.cleaned_data["file"].read(), k=project.candidates_per_task)
            result = services.prompts_import(
                project=project, records=records, origin=Origin.of(request)
            )
        except ServiceError as exc:
            problems, status = exc.problems, exc.status_code
        else:
            messages.success(
                request,
                f"Imported {result.created} prompts ({result.tasks} tasks); "
                f"{result.existing} were already in the project.",
            )
            return redirect("annotation:import", project_id=project.pk)
    elif request.method == "POST":
        status = 400
    return TemplateResponse(
        request,
        "annotation/import.html",
        {"project": project, "form": form, "problems": problems},
        status=status,
    )


@login_required
def gold_task(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    """Admin page: mark a task's expected order (a gold task), change it, or clear it."""
    project = access.project_administered_or_404(request.user, project_id)
    task = get_object_or_404(Task.objects.select_related("prompt"), pk=task_id, project=project)
    problems: list = []
    status = 200
    if request.method == "POST":
        try:
            groups = None if "clear" in request.POST else ranks_from_post(request.POST)
            gold.task_gold_set(project=project, task_id=task.pk, groups=groups)
        except ServiceError as exc:
            problems, status = exc.problems, exc.status_code
        else:
            messages.success(
                request, "Gold order cleared." if groups is None else "Gold order saved."
            )
            return redirect("annotation:gold", project_id=project.pk, task_id=task.pk)
    candidates = list(task.candidates.order_by("position"))
    rank = {cid: i + 1 for i, group in enumerate(task.gold or []) for cid in group}
    return TemplateResponse(
        request,
        "annotation/gold.html",
        {
            "project": project,
            "task": task,
            "rows": [(c, rank.get(c.pk, "")) for c in candidates],
            "problems": problems,
        },
        status=status,
    )
