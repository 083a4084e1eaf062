"""The audit log, read-only: what admins and scripts did, who, when and from where."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from feedback_app.common.storable import ID_PATTERN
from feedback_app.core.models import AuditEvent

from .. import permissions
from ..filters import AuditEventFilter, ListFilterBackend
from ..pagination import NewestFirstPagination


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_name",
            "via",
            "address",
            "action",
            "project",
            "target",
            "data",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "actor": {"help_text": "The user's id; null once the account is removed."},
            "actor_name": {"help_text": "The username when they acted (kept after removal)."},
            "address": {"help_text": "The client address of the request; null from a script."},
            "data": {"help_text": "What changed; never a secret."},
        }


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Events newest first. Staff read all of them; a project's admins the events of their
    projects; others nothing (403). Filters narrow the list; none widens it."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsAuthenticated, permissions.AdministersAProject]
    pagination_class = NewestFirstPagination
    filter_backends = [ListFilterBackend]
    filterset_class = AuditEventFilter
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return permissions.visible_audit_events(self.request.user)
