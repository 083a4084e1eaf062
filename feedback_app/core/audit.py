"""The audit log's one writer: every admin or script action that changes a project, its members,
its data, its jobs or someone's tokens calls `record` (issue 13).

Actions are dotted names, area first (`project.update`, `member.add`, `job.launch`,
`token.create`); `data` holds what changed, never a secret (no token, no password).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from .models import AuditEvent, Project


def client_address(request: HttpRequest | None) -> str | None:
    """Where a request came from. REMOTE_ADDR only: a proxy's X-Forwarded-For is forgeable
    unless the deployment strips it, and settings say nothing about trusted proxies."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
    via: str | None = None,
    project: Project | None = None,
    target: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. With `request`, the actor and address come from it; `via` defaults to
    "api" for /api/ paths, "page" for other requests and "system" without one."""
    if request is not None:
        if actor is None and getattr(request, "user", None) is not None:
            actor = request.user if request.user.is_authenticated else None
        if via is None:
            via = AuditEvent.Via.API if request.path.startswith("/api/") else AuditEvent.Via.PAGE
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        via=via or AuditEvent.Via.SYSTEM,
        address=client_address(request),
        project=project,
        target=str(target)[:200],
        data=data or {},
    )
