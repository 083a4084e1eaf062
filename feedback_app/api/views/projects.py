"""Projects (a plain resource) and the bulk prompt import."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.annotation import services
from feedback_app.annotation.importing import check_records, parse_jsonl
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.storable import ID_PATTERN
from feedback_app.core.audit import Origin
from feedback_app.core.models import Project
from feedback_app.workspace import projects as project_services

from .. import permissions
from ..parsers import JSONLParser, JSONParser, NDJSONParser, refuse_unreadable_body
from ..serializers.projects import (
    ImportResultSerializer,
    ProjectSerializer,
    PromptRecordSerializer,
    PromptUploadSerializer,
)


class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Projects the user sees; staff create them, a project's admins edit it."""

    serializer_class = ProjectSerializer
    permission_classes = [IsAuthenticated, permissions.IsStaffToCreate]
    lookup_value_regex = ID_PATTERN

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "archived",
                bool,
                description="true: archived projects only; false (default): active ones only.",
            )
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:  # noqa: ANN002, ANN003
        return super().list(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Project]:
        projects = permissions.visible_projects(self.request.user)
        if self.action == "list":
            projects = projects.filter(archived=_archived_param(self.request))
        return projects

    def perform_create(self, serializer: ProjectSerializer) -> None:
        serializer.instance = project_services.project_create(
            data=dict(serializer.validated_data), origin=Origin.of(self.request)
        )

    def perform_update(self, serializer: ProjectSerializer) -> None:
        serializer.instance = project_services.project_update(
            project=serializer.instance,
            data=dict(serializer.validated_data),
            origin=Origin.of(self.request),
        )

    @extend_schema(
        request=None, responses={200: ProjectSerializer}, operation_id="projects_archive"
    )
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str) -> Response:
        """Archive: hidden from annotators and read-only until restored (never deleted)."""
        refuse_unreadable_body(request)
        project = permissions.administered_project(request.user, int(pk))
        project = project_services.project_archive(project=project, origin=Origin.of(request))
        return Response(ProjectSerializer(project).data)

    @extend_schema(
        request=None, responses={200: ProjectSerializer}, operation_id="projects_restore"
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        """Restore an archived project."""
        refuse_unreadable_body(request)
        project = permissions.administered_project(request.user, int(pk))
        project = project_services.project_archive(
            project=project, archived=False, origin=Origin.of(request)
        )
        return Response(ProjectSerializer(project).data)


def _archived_param(request: Request) -> bool:
    values = request.query_params.getlist("archived")
    if not values:
        return False
    if len(values) > 1 or values[0] not in ("true", "false"):
        raise InvalidInput(Problem("archived", "true or false"))
    return values[0] == "true"


class PromptImportApi(APIView):
    """Import prompts (and candidates) all or nothing, by the import page's rules and messages.

    Send a JSON list of prompt objects, a JSONL file as multipart `file`, or a raw JSONL body
    (`Content-Type: application/jsonl`). Problems name the line (the item number for a list).
    """

    parser_classes = [JSONParser, MultiPartParser, JSONLParser, NDJSONParser]
    max_body_setting = "IMPORT_MAX_BYTES"  # common/middleware.py answers 413 beyond it

    @extend_schema(
        request={
            "application/json": PromptRecordSerializer(many=True),
            "multipart/form-data": PromptUploadSerializer,
            "application/jsonl": {"type": "string"},
        },
        responses={201: ImportResultSerializer},
        examples=[
            OpenApiExample(
                "Text and chat prompts",
                request_only=True,
                media_type="application/json",
                value=[
                    {"prompt": "Name a prime number.", "candidates": ["2", "4", "9"]},
                    {"prompt": [{"role": "user", "content": "Hi!"}]},
                ],
            )
        ],
        operation_id="projects_prompts_import",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        k = project.candidates_per_task
        data = request.data
        if isinstance(data, bytes):
            records = parse_jsonl(data, k=k)
        elif isinstance(data, list):
            records = check_records(enumerate(data, start=1), k=k)
        elif "file" in request.FILES:
            records = parse_jsonl(request.FILES["file"].read(), k=k)
        else:
            raise InvalidInput(
                Problem("body", "send a JSON list of prompts, or a JSONL file as `file`")
            )
        result = services.prompts_import(
            project=project, records=records, origin=Origin.of(request)
        )
        return Response(ImportResultSerializer(result).data, status=status.HTTP_201_CREATED)
