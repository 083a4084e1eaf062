"""The audit log page: events newest first, filtered, a page at a time."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from . import access
from .audit import ACTIONS, events_filtered
from .forms import AuditFilterForm

EVENTS_PER_PAGE = 50


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """Staff see every event, a project's admins their projects' (core/access.py); others get a
    404, like every admin page."""
    if not access.administers_a_project(request.user):
        raise Http404("No such page")
    projects = list(access.projects_administered_by(request.user).order_by("name"))
    form = AuditFilterForm(request.GET, projects=projects)
    events = access.audit_events_visible_to(request.user)
    rows, older = [], None
    if form.is_valid():
        found = list(
            events_filtered(events, **form.filters()).select_related("project")[
                : EVENTS_PER_PAGE + 1
            ]
        )
        rows = [(e, ACTIONS.get(e.action, ""), _data_text(e.data)) for e in found[:EVENTS_PER_PAGE]]
        if len(found) > EVENTS_PER_PAGE:
            older = _query(request.GET, before=found[EVENTS_PER_PAGE - 1].pk)
    context = {
        "form": form,
        "rows": rows,
        "older": older,
        "newest": _query(request.GET, before=None) if request.GET.get("before") else None,
    }
    return TemplateResponse(
        request, "core/audit.html", context, status=200 if form.is_valid() else 400
    )


def _data_text(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True) if data else ""


def _query(params: QueryDict, *, before: int | None) -> str:
    """The same filters, another page."""
    query = params.copy()
    query.pop("before", None)
    if before is not None:
        query["before"] = str(before)
    return "?" + query.urlencode()
