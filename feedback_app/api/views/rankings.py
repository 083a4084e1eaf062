"""Rankings, for admins: filtered by project, annotator, round and time."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated

from feedback_app.annotation.models import Ranking
from feedback_app.common.storable import ID_PATTERN

from .. import permissions
from ..serializers import RankingFilterSerializer, RankingSerializer


def filters(request, serializer_class) -> dict:
    """Query parameters checked by a serializer: a bad one is a 400 naming it.

    Stricter than DRF on query strings, which takes an empty value for "not given" and keeps
    the last of repeated ones: both are refused, so a typo never widens a query silently.
    """
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


@extend_schema_view(list=extend_schema(parameters=[RankingFilterSerializer]))
class RankingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every ranking of the projects the user administers, oldest first."""

    serializer_class = RankingSerializer
    permission_classes = [IsAuthenticated, permissions.AdministersAProject]
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[Ranking]:
        qs = Ranking.objects.filter(
            task__project__in=permissions.administered_projects(self.request.user)
        ).select_related("task", "annotator")
        if self.action != "list":
            return qs
        f = filters(self.request, RankingFilterSerializer)
        if "project" in f:
            qs = qs.filter(task__project_id=f["project"])
        if "annotator" in f:
            qs = qs.filter(annotator_id=f["annotator"])
        if "round" in f:
            qs = qs.filter(task__round=f["round"])
        if "since" in f:
            qs = qs.filter(created_at__gte=f["since"])
        return qs
