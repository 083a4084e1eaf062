"""What a locked-out login attempt gets (django-axes' AXES_LOCKOUT_CALLABLE), how a lockout is
lifted (audited, by any means) and how axes' records are pruned.

Failures are counted per account and per address (settings: AXES_LOCKOUT_PARAMETERS); once
either reaches AXES_FAILURE_LIMIT the login page, the admin's login and the API's token
endpoint all answer 429 until the cool-off passes or an admin lifts it (README, "Failed logins").

A lift deletes the failed-login records (`AccessAttempt`): `lockout_lift` is the one path, taken
by the Django admin and by axes' own reset commands (`axes_reset`, `axes_reset_ip`,
`axes_reset_username`, `axes_reset_ip_username`, which accounts/management/commands replaces),
and it records a `lockout.lift` event per record. axes itself deletes records in two more
places, which are no lift by anyone: a successful login forgets that account's failures, and
records older than the cool-off are dropped (their lockout already ended by time).

axes keeps a row per login (`AccessLog`) and, if enabled, per failure (`AccessFailureLog`),
forever; `lockout_records_prune` drops those older than LOGIN_RECORDS_KEEP_DAYS and expired
attempts, once an hour from the sweeper (`manage.py sweep_jobs`), recording `lockout.prune`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from axes.helpers import get_cool_off
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from feedback_app.common.answers import error_answer, wants_json
from feedback_app.common.errors import Problem
from feedback_app.core.audit import SYSTEM, Origin, client_address, record


def lockout_message(minutes: int | None) -> str:
    wait = f"try again in {minutes} minutes" if minutes else "an admin must unlock it"
    return (
        "too many failed logins for this account or from this address: "
        f"{wait}, or ask an admin to lift the lockout"
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429 with Retry-After: the API's JSON error (field `credentials`) or the lockout page."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else None
    minutes = math.ceil(seconds / 60) if seconds else None
    headers = {"Retry-After": str(seconds)} if seconds else {}
    message = lockout_message(minutes)
    if wants_json(request):
        problems = [Problem("credentials", message)]
        return error_answer(request, problems, status=429, title="Locked out", headers=headers)
    response = TemplateResponse(
        request, "accounts/locked_out.html", {"message": message, "minutes": minutes}, status=429
    )
    for name, value in headers.items():
        response[name] = value
    return response.render()


def client_ip(request: HttpRequest) -> str | None:
    """The address failures are counted for (AXES_CLIENT_IP_CALLABLE): the audit log's.

    REMOTE_ADDR unless LOGIN_CLIENT_IP_HEADER names the header a trusted proxy sets; then that
    header's last entry, the one the proxy itself appended (earlier ones the client can forge).
    """
    return client_address(request)


def about_attempt(attempt: AccessAttempt) -> dict:
    """Failed logins of one account from one address, forgotten: no form data (axes keeps
    what was posted, passwords masked), only who, from where and how many."""
    failures = attempt.failures_since_start
    return {
        "target": f"{attempt.username or '?'} from {attempt.ip_address or '?'}",
        "data": {
            "username": attempt.username,
            "ip_address": attempt.ip_address,
            "failures": failures,
            "locked": failures >= settings.AXES_FAILURE_LIMIT,
        },
    }


def lockout_lift(
    *,
    attempts: QuerySet[AccessAttempt],
    origin: Origin | None,
) -> int:
    """Delete these failed-login records (lifting any lockout they hold) and record a
    `lockout.lift` event for each, in one transaction; the number deleted."""
    with transaction.atomic():
        rows = list(attempts.select_for_update())
        abouts = [about_attempt(a) for a in rows]
        AccessAttempt.objects.filter(pk__in=[a.pk for a in rows]).delete()
        for about in abouts:
            record("lockout.lift", origin=origin, **about)
    return len(rows)


@dataclass(frozen=True)
class PruneResult:
    logins: int  # AccessLog rows
    failure_logs: int  # AccessFailureLog rows
    expired_attempts: int  # AccessAttempt rows older than the cool-off

    def __bool__(self) -> bool:
        return bool(self.logins or self.failure_logs or self.expired_attempts)


def lockout_records_prune(
    *, now: datetime | None = None, origin: Origin | None = SYSTEM
) -> PruneResult:
    """Drop axes' login records older than LOGIN_RECORDS_KEEP_DAYS and failed-login records
    whose cool-off has passed (they lock nothing); one `lockout.prune` event says how many."""
    now = now or timezone.now()
    keep = now - timedelta(days=settings.LOGIN_RECORDS_KEEP_DAYS)
    expired = now - settings.AXES_COOLOFF_TIME if settings.AXES_COOLOFF_TIME else None
    with transaction.atomic():
        logins, _ = AccessLog.objects.filter(attempt_time__lt=keep).delete()
        failure_logs, _ = AccessFailureLog.objects.filter(attempt_time__lt=keep).delete()
        attempts = 0
        if expired is not None:
            attempts, _ = AccessAttempt.objects.filter(attempt_time__lt=expired).delete()
        result = PruneResult(logins, failure_logs, attempts)
        if result:
            data = {"logins": logins, "failure_logs": failure_logs, "expired_attempts": attempts,
                    "keep_days": settings.LOGIN_RECORDS_KEEP_DAYS}  # fmt: skip
            record("lockout.prune", origin=origin, target="login records", data=data)
    return result
