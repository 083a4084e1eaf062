"""Admin pages of the quality figures: thin views over the stored report, and its refresh."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET, require_POST

from feedback_app.annotation.quality_refresh import refresh_pending, send_refresh
from feedback_app.core.access import project_administered_or_404

from .dashboards import PAGES, page_context
from .reports import quality_report


def _page_number(request: HttpRequest) -> int:
    """`?page=` of the long tables; anything but a small positive number is page 1."""
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isdigit() and len(raw) < 6 else 1


@login_required
@require_GET
def quality(request: HttpRequest, project_id: int, figure: str = "agreement") -> HttpResponse:
    """One dashboard: the stored figure, how old it is, and a refresh button."""
    project = project_administered_or_404(request.user, project_id)
    if figure not in PAGES:
        raise Http404("No such figure")
    wanted = ("leaderboard", "reward_models") if figure == "leaderboard" else (figure,)
    view = quality_report(project=project, figures=wanted)
    context = {
        "project": project,
        "view": view,
        "computed_at": view.report.computed_at.strftime("%Y-%m-%d %H:%M:%S") if view.report else "",
        "age": timesince(view.report.computed_at) if view.report else "",
        "pending": refresh_pending(
            project_id=project.pk,
            computed_at=view.report.computed_at if view.report else None,
        ),
        "page": figure,
        "pages": PAGES,
        **page_context(figure, view.figures, _page_number(request)),
    }
    return TemplateResponse(request, f"preferences/quality_{figure}.html", context, using="jinja2")


@login_required
@require_POST
def quality_refresh(request: HttpRequest, project_id: int) -> HttpResponse:
    """Ask a worker to recompute every figure now."""
    project = project_administered_or_404(request.user, project_id)
    send_refresh(project.pk)
    messages.info(request, "Refresh requested: the figures update when a worker has run it.")
    figure = request.POST.get("figure", "")
    figure = figure if figure in PAGES else "agreement"
    return redirect("preferences:quality-figure", project_id=project.pk, figure=figure)
