"""The audit log's one writer: every action that changes a project, its members, its data, its
jobs or someone's tokens is recorded by the service that does it (issue 13, one convention since
issue 20).

Actions are dotted names, area first (`project.update`, `member.add`, `job.launch`,
`token.create`); `data` holds what changed, never a secret (no token, no password).

Who records: the service, as Zulip's actions do (`do_change_icon_source(..., acting_user)`). It
takes an `origin` (who asked, through which interface, from which address) and never an
HttpRequest; interfaces (pages, API views, the Django admin, commands) build the origin with
`Origin.of(request)` or `Origin.cli()` and call the service. A service validates first and then
writes and records in one transaction, so a refused or failed action records nothing by
construction. What an event is *about* (its project, target and data) is written once per kind
of object by the `about_*` functions below, so every interface records the same action alike:

    record("job.launch", origin=origin, **about_job(job))

Two exceptions to "one transaction": the prompt import (annotation/services.py) and the archive
import (workspace/archive/staged.py) write in chunks, each its own short transaction, on
purpose; each records once, after the last chunk.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from .models import AuditEvent, Job, ModelVersion, Project

# The actions recorded today, with the label the audit page shows. Others may be recorded; the
# page shows them by name.
ACTIONS: dict[str, str] = {
    "project.create": "project created",
    "project.update": "project settings changed",
    "project.archive": "project archived",
    "project.restore": "project restored",
    "project.export": "project archive downloaded",
    "project.import": "project imported from an archive",
    "member.add": "member added",
    "member.role": "member's role changed",
    "member.remove": "member removed",
    "invitation.send": "invitation sent",
    "invitation.accept": "invitation accepted",
    "invitation.revoke": "invitation revoked",
    "judge.add": "AI judge added",
    "judge.remove": "AI judge removed",
    "account.deactivate": "account deactivated",
    "account.activate": "account reactivated",
    "prompts.import": "prompts imported",
    "job.launch": "job launched",
    "job.retry": "job retried",
    "job.cancel": "job cancelled",
    "model.promote": "model version promoted",
    "token.create": "API token created",
    "token.revoke": "API token revoked",
    "lockout.lift": "login lockout lifted",
    "lockout.prune": "old login records pruned",
    "account.password": "password changed (other sessions ended)",
    "autopilot.update": "autopilot settings changed",
    "autopilot.gate": "autopilot's promotion gate decided",
    "autopilot.stop": "autopilot stopped a run",
    "autopilot.pause": "autopilot paused after failed gates in a row",
    "autopilot.resume": "autopilot resumed",
    "autopilot.outlook": "autopilot started a run whose gate cannot pass",
    "autopilot.confirm": "people confirmed the autopilot's promotion",
    "autopilot.rollback": "people preferred the parent: promotion rolled back",
}
ACTION_MAX = AuditEvent._meta.get_field("action").max_length
# What the `action` filter accepts: an action (`job.launch`) or an area (`job`, every `job.*`).
ACTION_PATTERN = r"[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*"
# Longer strings in `data` are cut: an audit row says that guidelines changed, it does not keep
# two copies of 20 000 characters.
VALUE_MAX = 200


def client_address(request: HttpRequest | None) -> str | None:
    """Where a request came from: REMOTE_ADDR, unless LOGIN_CLIENT_IP_HEADER names the header a
    trusted reverse proxy sets; then that header's last entry, the one the proxy itself appended
    (earlier ones the client can forge). The failed-login lockout counts by the same address
    (accounts/lockout.py). Anything that is not an IP address is not one: REMOTE_ADDR then."""
    if request is None:
        return None
    header = settings.LOGIN_CLIENT_IP_HEADER
    if header:
        entries = [e.strip() for e in request.META.get(header, "").split(",") if e.strip()]
        if entries and _is_ip(entries[-1]):
            return entries[-1]
    address = request.META.get("REMOTE_ADDR") or None
    return address if address and _is_ip(address) else None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Origin:
    """Who asked for an action and from where: what the audit event says besides the action.

    `interface` is one of AuditEvent.Via (page, api, cli, system); `user` is None for the
    system (the autopilot, a sweep) and for commands run without `--as`."""

    user: AbstractBaseUser | None = None
    interface: str = AuditEvent.Via.SYSTEM
    address: str | None = None

    @classmethod
    def of(cls, request: HttpRequest) -> Origin:
        """The origin of a page or API request: its signed-in user, "api" for /api/ paths,
        "page" for the others, and the client's address (`client_address`)."""
        user = getattr(request, "user", None)
        return cls(
            user=user if user is not None and user.is_authenticated else None,
            interface=AuditEvent.Via.API
            if request.path.startswith("/api/")
            else AuditEvent.Via.PAGE,
            address=client_address(request),
        )

    @classmethod
    def cli(cls, user: AbstractBaseUser | None = None) -> Origin:
        """A management command: trusted as whoever runs it on the server."""
        return cls(user=user, interface=AuditEvent.Via.CLI)

    @property
    def trusted(self) -> bool:
        """Commands and the system itself act as the operator: access rules bind people."""
        return self.interface in (AuditEvent.Via.CLI, AuditEvent.Via.SYSTEM)


SYSTEM = Origin()


def record(
    action: str,
    *,
    origin: Origin | None = SYSTEM,
    project: Project | None = None,
    target: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent | None:
    """Append one event, done by `origin` (left out: the system, as the autopilot's gate).

    `origin=None` records nothing: a service passes on the None its caller gave when nobody
    asked (the autopilot's steps, a runner, the demo's set-up, a test's fixture)."""
    if origin is None:
        return None
    actor = origin.user
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        via=origin.interface,
        address=origin.address,
        project=project,
        target=str(target)[:200],
        data=data or {},
    )


# --- what an event is about: one shape per kind of object ---------------------------------------


def action_lookup(value: str) -> Q:
    """The `action` filter: one action (`job.launch`), or an area (`job`: every `job.*`)."""
    return Q(action=value) if "." in value else Q(action__startswith=f"{value}.")


def events_filtered(
    events: QuerySet[AuditEvent],
    *,
    project: int | None = None,
    actor: int | None = None,
    actor_name: str | None = None,
    action: str | None = None,
    via: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
) -> QuerySet[AuditEvent]:
    """`events` narrowed by the audit page's filters (None: any); `until` is exclusive and
    `before` an event id, the page's position (newest first)."""
    lookups: dict[str, Any] = {
        "project_id": project,
        "actor_id": actor,
        "actor_name": actor_name,
        "via": via,
        "created_at__gte": since,
        "created_at__lt": until,
        "id__lt": before,
    }
    events = events.filter(**{k: v for k, v in lookups.items() if v is not None})
    return events.filter(action_lookup(action)) if action else events


def shown(value: Any) -> Any:
    """`value` as an event keeps it: long text cut to VALUE_MAX characters, saying so."""
    if isinstance(value, str) and len(value) > VALUE_MAX:
        return f"{value[:VALUE_MAX]}… ({len(value)} characters)"
    return value


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """`{field: [old, new]}` for each field of `after` whose value differs from `before`.

    >>> changes({"name": "A", "k": 3}, {"name": "B", "k": 3})
    {'name': ['A', 'B']}
    """
    return {
        name: [shown(before.get(name)), shown(value)]
        for name, value in after.items()
        if before.get(name) != value
    }


# Every setting a project holds, read from the model: a field added later is audited too.
PROJECT_FIELDS = tuple(
    f.name
    for f in Project._meta.concrete_fields
    if f.name not in ("id", "created_at", "updated_at")
)


def project_values(project: Project) -> dict[str, Any]:
    """The settings of a project an event compares (`changes`) before and after an edit."""
    return {name: getattr(project, name) for name in PROJECT_FIELDS if hasattr(project, name)}


def about_project(project: Project, *, changed: dict[str, list[Any]] | None = None) -> dict:
    """A project created (its settings) or edited (`changed`: what `changes` found)."""
    if changed is None:
        data = {"settings": {k: shown(v) for k, v in project_values(project).items()}}
    else:
        data = {"changed": changed}
    return {"project": project, "target": project.name, "data": data}


def about_import(project: Project, result: Any) -> dict:
    """Prompts imported into `project`; `result` is the import's (annotation.ImportResult)."""
    data = {"created": result.created, "existing": result.existing, "tasks": result.tasks}
    return {"project": project, "target": project.name, "data": data}


def about_job(job: Job) -> dict:
    """A job launched, retried or cancelled: its kind, parameters and status after the action."""
    data: dict[str, Any] = {"job": job.pk, "kind": job.kind, "status": job.status}
    if job.params:
        data["params"] = job.params
    if job.retry_of_id:
        data["retry_of"] = job.retry_of_id
    if job.cancel_requested:
        data["cancel_requested"] = True
    return {"project": job.project, "target": f"job {job.pk} ({job.kind})", "data": data}


def about_version(version: ModelVersion) -> dict:
    return {
        "project": version.project,
        "target": f"{version.kind} {version.name}",
        "data": {"version": version.pk, "kind": version.kind, "name": version.name},
    }


def about_token(token: Any) -> dict:
    """An API token (accounts.ApiToken): its id, name, owner and expiry; never the key, its
    digest or the key's first characters knox looks tokens up by."""
    expiry = token.expiry.isoformat() if token.expiry else None
    return {
        "target": f"token {token.pk} of {token.user.get_username()}",
        "data": {
            "token": token.pk,
            "name": shown(token.name),
            "owner": token.user.get_username(),
            "expiry": expiry,
        },
    }
