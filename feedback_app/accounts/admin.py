"""Tokens in the Django admin: see and revoke (delete) them; they are made on the account page.

Lockouts are lifted in axes' own admin (Axes > Access attempts: delete the user's attempts).
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from knox.models import AuthToken

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
