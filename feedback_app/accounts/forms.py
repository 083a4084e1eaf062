"""The account page's forms: a token's, and the password change (Django's, with a choice)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import PasswordChangeForm as DjangoPasswordChangeForm

from .tokens import DEFAULT_EXPIRY_DAYS, EXPIRY_DAYS, NAME_MAX


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX, help_text="What will use it, e.g. “nightly pairs export”."
    )
    expiry_days = forms.TypedChoiceField(
        label="Expires after",
        choices=list(EXPIRY_DAYS.items()),
        coerce=int,
        initial=DEFAULT_EXPIRY_DAYS,
    )


class PasswordChangeForm(DjangoPasswordChangeForm):
    """Django's form, and whether the user's API tokens go too (their other sessions always
    end: accounts/passwords.py)."""

    revoke_tokens = forms.BooleanField(
        required=False,
        label="Also revoke all my API tokens",
        help_text="Your other sessions end either way. Scripts using a token stop working.",
    )
