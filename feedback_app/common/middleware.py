"""Answers given before or around a view: too large a body (413), the database busy (503), a
method the view does not take (405 with words, not Django's empty answer).

Both would otherwise be a 500 or a long hang: Django reads a multipart upload of any size to
disk and DRF reads a raw body whole into memory, and a write that cannot get its lock in time
raises ``OperationalError`` ("database is locked" on SQLite, ``lock_timeout`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .answers import error_answer
from .db import is_lock_timeout
from .errors import Problem

# Seconds a client is told to wait before trying again after a 503.
RETRY_AFTER_SECONDS = 5


def accepts_body_up_to(setting: str) -> Callable:
    """Let a function view take bodies up to ``settings.<setting>`` bytes (default below)."""

    def mark(view: Callable) -> Callable:
        view.max_body_setting = setting
        return view

    return mark


def _limit_for(view_func: Callable) -> int:
    # Function views carry the mark themselves; class views (Django's and DRF's) on the class.
    owner = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None) or view_func
    setting = getattr(owner, "max_body_setting", None) or "DATA_UPLOAD_MAX_MEMORY_SIZE"
    return int(getattr(settings, setting))


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


class RequestLimitsMiddleware:
    """413 for a body longer than its view accepts, decided from Content-Length before reading.

    Django's WSGI handler reads at most Content-Length bytes (a body without one is empty), so
    the header is the whole truth about what would be read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = _limit_for(view_func)
        if length <= limit:
            return None
        problem = Problem(
            "body", f"{_megabytes(length)} is more than the {_megabytes(limit)} accepted here"
        )
        return error_answer(request, [problem], status=413, title="Too large")


class DatabaseBusyMiddleware:
    """503 with Retry-After when a write could not get its lock in time: busy, not broken."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_lock_timeout(exc):
            return None
        return busy_answer(request)


def busy_problem() -> Problem:
    return Problem(
        "database",
        f"busy with other writes (an import, say); nothing was changed: try again in "
        f"{RETRY_AFTER_SECONDS} s",
    )


def busy_answer(request: HttpRequest) -> HttpResponse:
    return error_answer(
        request,
        [busy_problem()],
        status=503,
        title="Busy, try again",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class MethodNotAllowedMiddleware:
    """A 405 that says which methods the URL takes, in words (a page, or the API's JSON).

    Django's `require_POST` answers a GET with an empty 405: a blank page for whoever followed a
    link to a form's action (the autopilot's, say; issue 26). The Allow header is kept.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or response.streaming or response.content:
            return response
        allow = response.get("Allow", "")
        message = f"{request.method} is not taken here; this address takes {allow or 'nothing'}"
        if "POST" in allow:
            message += ": use the form on the page that links here"
        return error_answer(
            request,
            [Problem("method", message)],
            status=405,
            title="Not allowed",
            headers={"Allow": allow},
        )
