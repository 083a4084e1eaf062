"""The audit page's filters. Empty fields are "any" (an HTML form sends them all); a bad value
is a 400 with the page showing which field is wrong."""

from __future__ import annotations

from typing import Any

from django import forms

from feedback_app.common.instants import day_end, day_start
from feedback_app.common.storable import is_id

from .audit import ACTION_MAX, ACTION_PATTERN, ACTIONS
from .models import AuditEvent, Project


class AuditFilterForm(forms.Form):
    project = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    actor = forms.CharField(max_length=150, required=False, help_text="username")
    action = forms.RegexField(
        regex=f"^{ACTION_PATTERN}$",
        max_length=ACTION_MAX,
        required=False,
        help_text="an action (job.launch) or an area (job)",
        error_messages={"invalid": "an action like job.launch, or an area like job"},
    )
    via = forms.ChoiceField(choices=[("", "any"), *AuditEvent.Via.choices], required=False)
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, projects: list[Project], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "any"), *((p.pk, p.name) for p in projects)]
        self.actions = sorted(ACTIONS)

    def clean_before(self) -> int | None:
        raw = self.cleaned_data["before"]
        if raw in ("", None):
            return None
        if not is_id(raw):
            raise forms.ValidationError("not an event id")
        return int(raw)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "is before From")
        return data

    def filters(self) -> dict[str, Any]:
        """The cleaned values as `core.audit.events_filtered` takes them; days are whole days
        in the site's time zone, both ends included."""
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        return {
            "project": data.get("project"),
            "actor_name": data.get("actor") or None,
            "action": data.get("action") or None,
            "via": data.get("via") or None,
            # A bound beyond what a datetime holds in UTC excludes nothing: no bound then.
            "since": day_start(since) if since else None,
            "until": day_end(until) if until else None,
            "before": data.get("before"),
        }
