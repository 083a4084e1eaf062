"""Projects (a plain resource) and the bulk prompt import."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.annotation import services
from feedback_app.annotation.importing import check_records, parse_jsonl
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.storable import ID_PATTERN
from feedback_app.core.audit import about_import, about_project, changes, project_values, record
from feedback_app.core.models import Project

from .. import permissions
from ..parsers import JSONLParser, JSONParser, NDJSONParser
from ..serializers import (
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

    def get_queryset(self) -> QuerySet[Project]:
        return permissions.visible_projects(self.request.user)

    def perform_create(self, serializer: ProjectSerializer) -> None:
        project = serializer.save()
        record("project.create", request=self.request, **about_project(project))

    def perform_update(self, serializer: ProjectSerializer) -> None:
        before = project_values(serializer.instance)
        project = serializer.save()
        changed = changes(before, project_values(project))
        if changed:  # a PUT of the same settings changes nothing, and records nothing
            about = about_project(project, changed=changed)
            record("project.update", request=self.request, **about)


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
        result = services.prompts_import(project=project, records=records)
        record("prompts.import", request=request, **about_import(project, result))
        return Response(ImportResultSerializer(result).data, status=status.HTTP_201_CREATED)
