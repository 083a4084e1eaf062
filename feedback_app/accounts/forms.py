"""The account page's token form (the password form is Django's PasswordChangeForm)."""

from __future__ import annotations

from django import forms

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
