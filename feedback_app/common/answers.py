"""Error answers that pages and the API share: JSON under /api/, a small HTML page elsewhere.

The API's error shape (``{"errors": [{"field", "message", "line"}]}``) is built here so that
answers made before a view runs (too large a body, the database busy) look exactly like the
ones the API's own exception handler makes (`api/errors.py`).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from .errors import Problem

API_PREFIX = "/api/"


def _text(value: str) -> str:
    """Errors may quote what was sent: an unpaired surrogate there would make the error
    itself unencodable (a 500), so it is written as its escape instead."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {"field": _text(problem.field), "message": _text(problem.message), "line": problem.line}


def error_body(problems: list[Problem]) -> dict[str, list[dict[str, Any]]]:
    return {"errors": [problem_dict(p) for p in problems]}


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_answer(
    request: HttpRequest,
    problems: list[Problem],
    *,
    status: int,
    title: str,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """The error in the API's JSON shape, or a page saying it in words."""
    if wants_json(request):
        response: HttpResponse = JsonResponse(error_body(problems), status=status)
    else:
        html = render_to_string(
            "error.html", {"title": title, "problems": problems, "status": status}, request
        )
        response = HttpResponse(html, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
