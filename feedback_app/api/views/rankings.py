"""Rankings, for admins: filtered by project, annotator, round and time."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated

from feedback_app.annotation.models import Ranking
from feedback_app.common.storable import ID_PATTERN

from .. import permissions
from ..filters import ListFilterBackend, RankingFilter
from ..serializers.annotation import RankingSerializer


class RankingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every ranking of the projects the user administers, oldest first."""

    serializer_class = RankingSerializer
    permission_classes = [IsAuthenticated, permissions.AdministersAProject]
    lookup_value_regex = ID_PATTERN
    filter_backends = [ListFilterBackend]
    filterset_class = RankingFilter

    def get_queryset(self) -> QuerySet[Ranking]:
        return Ranking.objects.filter(
            task__project__in=permissions.administered_projects(self.request.user)
        ).select_related("task", "annotator")
