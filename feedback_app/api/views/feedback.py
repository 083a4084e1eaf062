"""Feedback from deployment: a deployed model's end users rate or pick responses."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from feedback_app.preferences.feedback import feedback_record
from feedback_app.preferences.models import DeploymentFeedback

from .. import permissions
from ..pagination import NewestFirstPagination
from ..serializers.feedback import FeedbackInputSerializer, FeedbackSerializer


@extend_schema_view(get=extend_schema(operation_id="projects_feedback_list"))
class FeedbackApi(generics.ListAPIView):
    """Members post feedback (a deployment's service account needs no admin role); admins read."""

    serializer_class = FeedbackSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self) -> QuerySet[DeploymentFeedback]:
        project = permissions.administered_project(self.request.user, self.kwargs["project_id"])
        return DeploymentFeedback.objects.filter(project=project)

    @extend_schema(
        request=FeedbackInputSerializer,
        responses={201: FeedbackSerializer},
        operation_id="projects_feedback_create",
    )
    def post(self, request: Request, project_id: int) -> Response:
        # Whoever sees the project sends its feedback (core/access.py: members, and staff who
        # administer every project), so seeing it is the whole check.
        project = permissions.visible_project(request.user, project_id)
        data = FeedbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        feedback = feedback_record(project=project, user=request.user, **data.validated_data)
        return Response(FeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED)
