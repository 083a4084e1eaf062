"""Query-string filters of the list endpoints (django-filter), strict as the rest of the API.

Stricter than django-filter's defaults, which take an empty value for "not given" and keep the
last of repeated ones: both are refused, so a typo never widens a query silently. Ids are
bounded to what a 64-bit column holds. A bad value is a 400 naming the parameter, like every
other input error (api/errors.py). The schema lists each filter (drf-spectacular reads them).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from feedback_app.annotation.models import Ranking
from feedback_app.common import storable
from feedback_app.common.instants import InstantField
from feedback_app.core import audit
from feedback_app.core.models import AuditEvent, Job, ModelVersion


class StrictQueryForm(forms.Form):
    """Refuses a filter given twice or given empty: both are typos, not "no filter"."""

    def clean(self) -> dict[str, Any]:
        for name in self.fields:
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else []
            if len(values) > 1:
                self.add_error(name, "given more than once")
            elif values == [""]:
                self.add_error(name, "must not be empty")
        return super().clean()


class StrictFilterSet(django_filters.FilterSet):
    class Meta:
        form = StrictQueryForm


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": storable.INT64_MAX})
class IdFilter(django_filters.NumberFilter):
    """An id: a whole number that fits a 64-bit column, so no lookup overflows."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, min_value=1, max_value=storable.INT64_MAX, **kwargs)


@extend_schema_field({"type": "string", "format": "date-time"})
class InstantFilter(django_filters.Filter):
    """A date and time (ISO 8601), parsed by common/instants.py: one beyond what a datetime
    holds in UTC is a 400 naming the parameter, not an overflow in the query."""

    field_class = InstantField


class RankingFilter(StrictFilterSet):
    project = IdFilter(field_name="task__project_id")
    annotator = IdFilter(field_name="annotator_id")
    round = IdFilter(field_name="task__round")
    since = InstantFilter(
        field_name="created_at", lookup_expr="gte", help_text="Submitted at or after."
    )

    class Meta(StrictFilterSet.Meta):
        model = Ranking
        fields: list[str] = []


class JobFilter(StrictFilterSet):
    project = IdFilter(field_name="project_id")
    kind = django_filters.ChoiceFilter(choices=Job.Kind.choices)
    status = django_filters.ChoiceFilter(choices=Job.Status.choices)

    class Meta(StrictFilterSet.Meta):
        model = Job
        fields: list[str] = []


class ModelVersionFilter(StrictFilterSet):
    project = IdFilter(field_name="project_id")
    kind = django_filters.ChoiceFilter(choices=ModelVersion.Kind.choices)

    class Meta(StrictFilterSet.Meta):
        model = ModelVersion
        fields: list[str] = []


@extend_schema_field(
    {"type": "string", "pattern": f"^{audit.ACTION_PATTERN}$", "maxLength": audit.ACTION_MAX}
)
class ActionFilter(django_filters.CharFilter):
    """An action (`job.launch`) or an area (`job`: every `job.*` action)."""

    field_class = forms.RegexField

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(
            *args,
            regex=f"^{audit.ACTION_PATTERN}$",
            max_length=audit.ACTION_MAX,
            error_messages={"invalid": "an action like job.launch, or an area like job"},
            **kwargs,
        )

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        return qs.filter(audit.action_lookup(value)) if value else qs


class AuditEventFilter(StrictFilterSet):
    project = IdFilter(field_name="project_id")
    actor = IdFilter(field_name="actor_id", help_text="The id of the user who acted.")
    action = ActionFilter(help_text="An action (job.launch) or an area (job: every job.*).")
    via = django_filters.ChoiceFilter(choices=AuditEvent.Via.choices)
    since = InstantFilter(field_name="created_at", lookup_expr="gte", help_text="At or after.")
    until = InstantFilter(field_name="created_at", lookup_expr="lt", help_text="Before (not at).")

    class Meta(StrictFilterSet.Meta):
        model = AuditEvent
        fields: list[str] = []


class ListFilterBackend(DjangoFilterBackend):
    """Filters lists only: a detail URL with a query string reads the object, as before."""

    def filter_queryset(self, request, queryset: QuerySet, view) -> QuerySet:
        if getattr(view, "action", "list") != "list":
            return queryset
        return super().filter_queryset(request, queryset, view)


def query_options(request, serializer_class) -> dict:
    """Query parameters that are options, not filters (the pairs export's), checked by a
    serializer with the same strictness: a bad, repeated or empty one is a 400 naming it."""
    fields = serializer_class().fields
    for name in fields:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise ValidationError({name: ["given more than once"]})
        if values == [""]:
            raise ValidationError({name: ["must not be empty"]})
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data
