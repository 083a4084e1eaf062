"""Tokens in the Django admin: see and revoke (delete) them; they are made on the account page.

Lockouts are lifted in axes' own admin (Axes > Access attempts: delete the user's attempts).
Both deletions are written to the audit log (`token.revoke`, `lockout.lift`) with the admin who
did it; the key of a token never is.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from knox.models import AuthToken

from feedback_app.core.audit import about_token, record

from .models import ApiToken

# knox registers its own token model, which this project swaps for ApiToken.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "token_key", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("name", "user__username")
    readonly_fields = ("name", "user", "token_key", "created", "expiry")
    exclude = ("digest",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token's key is shown once, to its owner, on the account page

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        about = about_token(obj)  # before the delete clears its id
        super().delete_model(request, obj)
        record("token.revoke", request=request, **about)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        abouts = [about_token(t) for t in queryset.select_related("user")]
        super().delete_queryset(request, queryset)
        for about in abouts:
            record("token.revoke", request=request, **about)


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


class AuditedAccessAttemptAdmin(AccessAttemptAdmin):
    """axes' admin for failed logins; deleting attempts lifts a lockout, and is recorded."""

    def delete_model(self, request: HttpRequest, obj: AccessAttempt) -> None:
        about = _about_attempts(obj)
        super().delete_model(request, obj)
        record("lockout.lift", request=request, **about)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        abouts = [_about_attempts(a) for a in queryset]
        super().delete_queryset(request, queryset)
        for about in abouts:
            record("lockout.lift", request=request, **about)


# Importing axes.admin registered axes' own (settings.AXES_ENABLE_ADMIN): ours takes its place.
if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, AuditedAccessAttemptAdmin)
