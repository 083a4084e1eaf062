"""Tokens in the Django admin: see and revoke (delete) them; they are made on the account page.

Lockouts are lifted in axes' own admin (Axes > Access attempts: delete the user's attempts).
Both deletions go through the accounts services, which write them to the audit log
(`token.revoke`, `lockout.lift`) with the admin who did it; the key of a token never is.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from knox.models import AuthToken

from feedback_app.core.audit import Origin

from .lockout import lockout_lift
from .models import ApiToken
from .passwords import password_changed
from .tokens import tokens_delete

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
        tokens_delete(tokens=ApiToken.objects.filter(pk=obj.pk), origin=Origin.of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens_delete(tokens=queryset, origin=Origin.of(request))


class AuditedAccessAttemptAdmin(AccessAttemptAdmin):
    """axes' admin for failed logins; deleting attempts lifts a lockout, and is recorded
    (accounts/lockout.py, `lockout_lift`: the one path every lift takes)."""

    def delete_model(self, request: HttpRequest, obj: AccessAttempt) -> None:
        lockout_lift(attempts=AccessAttempt.objects.filter(pk=obj.pk), origin=Origin.of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        lockout_lift(attempts=queryset, origin=Origin.of(request))


# Importing axes.admin registered axes' own (settings.AXES_ENABLE_ADMIN): ours takes its place.
if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, AuditedAccessAttemptAdmin)


class PasswordAuditedUserAdmin(UserAdmin):
    """Django's user admin; setting someone's password there (a reset) ends their sessions and
    is recorded (accounts/passwords.py). Their API tokens stay: revoke them above if needed."""

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = ""):  # noqa: A002, ANN201
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # the form was saved
            user = self.get_object(request, unquote(id))
            own = user is not None and user.pk == request.user.pk
            password_changed(
                user=user,
                origin=Origin.of(request),
                keep_session=request.session.session_key if own else None,
                revoke_tokens=False,
                how="admin",
            )
        return response


_User = get_user_model()
if admin.site.is_registered(_User):
    admin.site.unregister(_User)
admin.site.register(_User, PasswordAuditedUserAdmin)
