"""The top bar's "jobs running" indicator, for every page that extends a base template."""

from __future__ import annotations

from functools import cached_property

from django.http import HttpRequest


class JobsRunning:
    """Counted only when a template reads `count` (the ranking page never does: its queries
    are pinned), and only for admins of at least one project."""

    def __init__(self, user) -> None:
        self.user = user

    @cached_property
    def count(self) -> int:
        from feedback_app.core.access import administers_a_project

        from .selectors import running_jobs_count

        if not administers_a_project(self.user):
            return 0
        return running_jobs_count(user=self.user)


def jobs_running(request: HttpRequest) -> dict:
    return {"jobs_running": JobsRunning(request.user)}
