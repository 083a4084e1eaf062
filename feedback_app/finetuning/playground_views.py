"""The playground: an admin asks two policy versions the same prompt side by side and says
which answer is better (or gives one a thumb), stored as deployment feedback with the version.

The page renders at once with both panels pending; static/js/playground.js then asks each
panel's answer (one bounded call to a server that already runs, `serving.playground_answer`)
and fills it in. The verdict buttons post the two answers back with the versions.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods, require_POST

from feedback_app.common.errors import InvalidInput
from feedback_app.core.access import project_administered_or_404
from feedback_app.core.models import ModelVersion

from . import serving


def _policies(project):
    return ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.POLICY).order_by(
        "-id"
    )


@login_required
@require_http_methods(["GET", "POST"])
def playground(request: HttpRequest, project_id: int) -> HttpResponse:
    """GET: the form. POST: the same page with the two versions' panels pending."""
    project = project_administered_or_404(request.user, project_id)
    policies = list(_policies(project))
    context = {
        "project": project,
        "policies": policies,
        "served": bool(serving.server_urls()),
        "prompt": "",
        "a": policies[0] if policies else None,
        "b": policies[1] if len(policies) > 1 else None,
        "asked": False,
        "error": None,
    }
    status = 200
    if request.method == "POST":
        try:
            context["prompt"] = serving.check_prompt(request.POST.get("prompt"))
            context["a"] = serving.playground_version(
                project=project, version_id=request.POST.get("a"), field="a"
            )
            context["b"] = serving.playground_version(
                project=project, version_id=request.POST.get("b"), field="b"
            )
            context["asked"] = True
            context["pair"] = [("a", context["a"]), ("b", context["b"])]
        except InvalidInput as exc:
            context["error"], status = exc, 400
    return TemplateResponse(request, "finetuning/playground.html", context, status=status)


@login_required
@require_POST
def playground_answer(request: HttpRequest, project_id: int) -> HttpResponse:
    """One panel's answer (an HTML fragment): one bounded call to the version's server."""
    project = project_administered_or_404(request.user, project_id)
    side = "b" if request.POST.get("side") == "b" else "a"
    context = {"project": project, "side": side, "answer": None, "error": None}
    try:
        version = serving.playground_version(
            project=project, version_id=request.POST.get("version"), field="version"
        )
        context["version"] = version
        context["answer"] = serving.playground_answer(
            version=version, prompt=request.POST.get("prompt")
        )
    except InvalidInput as exc:
        context["error"] = exc
    return TemplateResponse(request, "finetuning/_playground_answer.html", context)


@login_required
@require_POST
def playground_feedback(request: HttpRequest, project_id: int) -> HttpResponse:
    """Store the verdict on the two answers, then back to the playground."""
    project = project_administered_or_404(request.user, project_id)
    try:
        answers = {
            side: (
                serving.playground_version(
                    project=project, version_id=request.POST.get(f"{side}_version"), field=side
                ),
                request.POST.get(f"{side}_text"),
            )
            for side in ("a", "b")
        }
        serving.playground_feedback_record(
            project=project,
            user=request.user,
            prompt=request.POST.get("prompt"),
            verdict=request.POST.get("verdict"),
            answers=answers,
        )
    except InvalidInput as exc:
        messages.error(request, f"Not saved: {exc}")
        return redirect("finetuning:playground", project_id=project.pk)
    messages.success(request, "Saved as deployment feedback.")
    return redirect("finetuning:playground", project_id=project.pk)
