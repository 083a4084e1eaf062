"""One JSON error shape for every failure the API can answer with.

``{"errors": [{"field": "ranking[1]", "message": "...", "line": null}]}``, with the status the
error carries: a service's InvalidInput (400) or Conflict (409), DRF's validation, auth, 404,
405, 415 and throttling errors, and even an unexpected exception (500, logged, no traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from feedback_app.common.errors import Problem, ServiceError

log = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"

# The field named by errors that are about the request rather than a body field.
_FIELD_OF: list[tuple[type[Exception], str]] = [
    (exceptions.NotAuthenticated, "authorization"),
    (exceptions.AuthenticationFailed, "authorization"),
    (exceptions.PermissionDenied, "permission"),
    (exceptions.NotFound, "url"),
    (exceptions.MethodNotAllowed, "method"),
    (exceptions.NotAcceptable, "accept"),
    (exceptions.UnsupportedMediaType, "content_type"),
    (exceptions.ParseError, "body"),
    (exceptions.Throttled, "throttle"),
]


def _text(value: str) -> str:
    """Errors may quote what was sent: an unpaired surrogate there would make the error
    itself unencodable (a 500), so it is written as its escape instead."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {"field": _text(problem.field), "message": _text(problem.message), "line": problem.line}


def error_body(problems: list[Problem]) -> dict[str, list[dict[str, Any]]]:
    return {"errors": [problem_dict(p) for p in problems]}


def flatten(detail: Any, where: str = "") -> Iterator[Problem]:
    """Turn DRF's nested error detail into problems whose field is a path: ``a.b[2]``."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):
                name = f"{where}[{key}]"
            elif key == NON_FIELD and where:
                name = where
            else:
                name = f"{where}.{key}" if where else str(key)
            yield from flatten(value, name)
    elif isinstance(detail, list | tuple):
        if all(isinstance(item, str) for item in detail):
            for item in detail:
                yield Problem(where or NON_FIELD, str(item))
        else:
            for i, item in enumerate(detail):
                if item:  # a ListSerializer gives {} for the items that were fine
                    yield from flatten(item, f"{where}[{i}]")
    else:
        yield Problem(where or NON_FIELD, str(detail))


def _problems_for(exc: exceptions.APIException) -> list[Problem]:
    if isinstance(exc, exceptions.ValidationError):
        return list(flatten(exc.detail)) or [Problem(NON_FIELD, "invalid input")]
    field = next((f for cls, f in _FIELD_OF if isinstance(exc, cls)), NON_FIELD)
    detail = exc.detail
    message = (
        str(detail)
        if not isinstance(detail, list | dict)
        else "; ".join(p.message for p in flatten(detail))
    )
    return [Problem(field, message)]


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes the one error shape."""
    headers: dict[str, str] = {}
    if isinstance(exc, ServiceError):
        problems, code = exc.problems, exc.status_code
    else:
        if isinstance(exc, Http404):
            exc = exceptions.NotFound()
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied()
        elif isinstance(exc, SuspiciousOperation):
            # RequestDataTooBig, too many fields, a bad multipart boundary: the client's fault.
            exc = exceptions.ParseError(str(exc) or "the request could not be read")
        if isinstance(exc, exceptions.APIException):
            problems, code = _problems_for(exc), exc.status_code
            if getattr(exc, "auth_header", None):
                headers["WWW-Authenticate"] = exc.auth_header
            if getattr(exc, "wait", None):
                headers["Retry-After"] = str(int(exc.wait))
        else:
            log.exception("unexpected error in %s", context.get("view"))
            problems = [Problem("server", "unexpected error; it was logged")]
            code = status.HTTP_500_INTERNAL_SERVER_ERROR
    set_rollback()
    return Response(error_body(problems), status=code, headers=headers)


@csrf_exempt  # else a POST without a CSRF token gets Django's HTML 403 page instead
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/v1/ answer in the API's shape, not with the site's HTML 404."""
    return JsonResponse(error_body([Problem("url", f"no endpoint at {request.path}")]), status=404)
