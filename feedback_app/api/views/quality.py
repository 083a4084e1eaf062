"""The quality figures as JSON: the stored report of a project, whole or one figure at a time.

Admins of the project only. Reads the row a worker wrote (`preferences.reports`), never the
rankings; `POST .../quality/refresh/` asks a worker to write it again.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.annotation.quality_refresh import send_refresh
from feedback_app.preferences.reports import ReportView, quality_report

from .. import permissions
from ..parsers import refuse_unreadable_body
from ..serializers.quality import (
    FIGURE_CHOICES,
    FIGURE_SERIALIZERS,
    QualityReportSerializer,
    RefreshSerializer,
    ReportStatusSerializer,
)


def _status(view: ReportView) -> dict:
    r = view.report
    return {
        "computed_at": r.computed_at if r else None,
        "version": r.version if r else None,
        "seconds": r.seconds if r else None,
        "rankings_count": r.rankings_count if r else None,
        "new_rankings": view.new_rankings,
        "stale": view.stale,
    }


def _figures(view: ReportView) -> dict | None:
    return view.figures if view.report is not None and view.current else None


class QualityApi(APIView):
    """Every quality figure of the project (docs/quality.md), with when it was computed."""

    @extend_schema(responses=QualityReportSerializer, operation_id="projects_quality")
    def get(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        view = quality_report(project=project)
        # Served as stored: the serializers document the shape (a test checks they match it);
        # running 200 annotators' rows through them tripled the response time.
        status_data = ReportStatusSerializer(_status(view)).data
        return Response({**status_data, "figures": _figures(view)})


class QualityFigureApi(APIView):
    """One quality figure of the project; `figure` is null until the first refresh."""

    @extend_schema(
        parameters=[OpenApiParameter("figure", OpenApiTypes.STR, "path", enum=FIGURE_CHOICES)],
        responses=inline_serializer(
            "QualityFigure",
            {
                "status": ReportStatusSerializer(),
                "figure": serializers.JSONField(
                    allow_null=True,
                    help_text="Shaped as QualityReport.figures.<figure>; null until a refresh.",
                ),
            },
        ),
        operation_id="projects_quality_figure",
    )
    def get(self, request: Request, project_id: int, figure: str) -> Response:
        project = permissions.administered_project(request.user, project_id)
        if figure not in FIGURE_SERIALIZERS:
            raise NotFound(f"figure: one of {', '.join(FIGURE_CHOICES)}")
        view = quality_report(project=project, figures=(figure,))
        figures = _figures(view)
        value = None if figures is None else figures[figure]
        return Response({"status": ReportStatusSerializer(_status(view)).data, "figure": value})


class QualityRefreshApi(APIView):
    """Ask a worker to recompute every figure now (202: queued, not done)."""

    @extend_schema(
        request=None, responses={202: RefreshSerializer}, operation_id="projects_quality_refresh"
    )
    def post(self, request: Request, project_id: int) -> Response:
        refuse_unreadable_body(request)
        project = permissions.administered_project(request.user, project_id)
        send_refresh(project.pk)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
