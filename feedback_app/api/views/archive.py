"""Project archives: a project's admins download one; staff create a project from one."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.core import access
from feedback_app.core.audit import Origin
from feedback_app.finetuning import services
from feedback_app.workspace import archive

from .. import permissions
from ..serializers.archive import ArchiveUploadSerializer
from ..serializers.loop import JobSerializer


class ProjectArchiveApi(APIView):
    """The whole project as one zip archive, streamed (docs/api.md, "Project archives")."""

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                response={"type": "string", "format": "binary"},
                description="manifest.json, project.json and one JSONL member a table.",
            )
        },
        operation_id="projects_archive_export",
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project = permissions.administered_project(request.user, project_id)
        response = StreamingHttpResponse(
            archive.archive_export(project=project, origin=Origin.of(request)),
            content_type="application/zip",
        )
        response["Content-Disposition"] = f'attachment; filename="project-{project.pk}.zip"'
        response["X-Accel-Buffering"] = "no"
        return response


class ArchiveImportApi(APIView):
    """Create a new project from an archive, all or nothing (staff only): the upload is checked
    (400s naming the member) and a job writes its rows; 202 with the job (its `project` is the
    new project, hidden until the job succeeds; its `outputs` the rows per member)."""

    parser_classes = [MultiPartParser]
    max_body_setting = "ARCHIVE_MAX_BYTES"  # common/middleware.py answers 413 beyond it

    @extend_schema(
        request={"multipart/form-data": ArchiveUploadSerializer},
        responses={202: JobSerializer},
        operation_id="projects_archive_import",
    )
    def post(self, request: Request) -> Response:
        access.check_creates_projects(Origin.of(request))  # before reading the upload
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput(Problem("file", "send the archive as the multipart field `file`"))
        name = request.data.get("name") or None
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise InvalidInput(Problem("name", "at most 200 characters of text"))
        job = services.archive_import_launch(file=upload, name=name, origin=Origin.of(request))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
