"""What a locked-out login attempt gets (django-axes' AXES_LOCKOUT_CALLABLE).

Failures are counted per account and per address (settings: AXES_LOCKOUT_PARAMETERS); once
either reaches AXES_FAILURE_LIMIT the login page, the admin's login and the API's token
endpoint all answer 429 until the cool-off passes or an admin lifts it (README, "Failed logins").
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from feedback_app.common.answers import error_answer, wants_json
from feedback_app.common.errors import Problem
from feedback_app.core.audit import Origin, client_address, record


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


def _about_attempts(attempt: AccessAttempt) -> dict:
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


def lockouts_lift(*, attempts: QuerySet[AccessAttempt], origin: Origin | None = None) -> int:
    """Forget failed logins (axes' rows), which lifts their lockout; each recorded."""
    lifted = 0
    with transaction.atomic():
        for attempt in attempts:
            about = _about_attempts(attempt)
            deleted, _ = AccessAttempt.objects.filter(pk=attempt.pk).delete()
            if deleted:
                record("lockout.lift", origin=origin, **about)
                lifted += 1
    return lifted
