"""Errors that services raise and interfaces (pages, API, commands) turn into 4xx answers.

Each names the field it is about, so a user is told what to fix; none is ever a 500.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (`field`, a line when there is one) and what."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.message}"


class ServiceError(Exception):
    status_code = 400

    def __init__(self, problems: list[Problem] | Problem | str, *, field: str = "non_field_errors"):
        if isinstance(problems, str):
            problems = [Problem(field, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    @property
    def field(self) -> str:
        return self.problems[0].field


class InvalidInput(ServiceError):
    """The request itself is wrong: fix it and send again."""

    status_code = 400


class Conflict(ServiceError):
    """The request is well formed but clashes with what is stored."""

    status_code = 409


class NotAllowed(ServiceError, PermissionDenied):
    """The user may not do this in this project (core/access.py decides): 403.

    Also Django's PermissionDenied, so a page that does not catch it answers 403, never 500.
    """

    status_code = 403

    def __init__(self, problems: list[Problem] | Problem | str, *, field: str = "permission"):
        super().__init__(problems, field=field)


class NotFound(ServiceError, Http404):
    """Not there, or not for this user to know of (core/access.py decides): 404 either way.

    Also Django's Http404, so a page answers its 404 page; the API's error layer answers 404
    in its one shape."""

    status_code = 404

    def __init__(
        self, problems: list[Problem] | Problem | str = "not found", *, field: str = "url"
    ):
        super().__init__(problems, field=field)
