"""The annotation workflow: one view a step (next task, submit a ranking, skip)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.annotation import demonstrations, handout, selectors, services, submit
from feedback_app.annotation.models import Task

from .. import permissions
from ..parsers import refuse_unreadable_body
from ..serializers.annotation import (
    DemonstrationInputSerializer,
    DemonstrationSerializer,
    NextTaskSerializer,
    RankingInputSerializer,
    SkipResultSerializer,
    SubmittedRankingSerializer,
)


def _task_visible(request: Request, task_id: int) -> None:
    """404 unless the task is in a project the user sees (its existence is not revealed).

    Whether they may annotate it (403 if not) is the service's rule, checked by the service.
    """
    if not Task.objects.filter(
        pk=task_id, project__in=permissions.visible_projects(request.user)
    ).exists():
        raise NotFound(f"no task {task_id} in your projects")


class NextTaskApi(APIView):
    """Lease the next task (or the one already held): prompt and candidates in display order."""

    @extend_schema(
        responses={
            200: NextTaskSerializer,
            204: OpenApiResponse(description="Nothing left for this annotator."),
        },
        operation_id="projects_tasks_next",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = permissions.visible_project(request.user, project_id)
        assignment = handout.task_assign_next(project=project, annotator=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        progress = selectors.annotator_progress(project=project, annotator=request.user)
        return Response(NextTaskSerializer(NextTaskSerializer.payload(assignment, progress)).data)


class RankingSubmitApi(APIView):
    """Submit a ranking of a task handed to you; sending the same payload again is a no-op."""

    @extend_schema(
        request=RankingInputSerializer,
        responses={201: SubmittedRankingSerializer},
        operation_id="tasks_ranking_submit",
    )
    def post(self, request: Request, task_id: int) -> Response:
        _task_visible(request, task_id)
        data = RankingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = submit.ranking_submit(
            task_id=task_id,
            annotator=request.user,
            groups=data.validated_data["ranking"],
            rationale=data.validated_data["rationale"],
            flags=data.validated_data["flags"],
        )
        # 201 for a repeat too: the same payload gets the same answer as the first time.
        return Response(
            SubmittedRankingSerializer(result.ranking).data, status=status.HTTP_201_CREATED
        )


class SkipApi(APIView):
    """Give a leased task back for good: it is not offered to you again."""

    @extend_schema(request=None, responses={200: SkipResultSerializer}, operation_id="tasks_skip")
    def post(self, request: Request, task_id: int) -> Response:
        refuse_unreadable_body(request)
        _task_visible(request, task_id)
        assignment = services.task_skip(task_id=task_id, annotator=request.user)
        return Response({"task": assignment.task_id, "status": assignment.status})


class DemonstrationSubmitApi(APIView):
    """Write an ideal answer for a task, or edit one of its candidates (`edited_from`).

    Writing again replaces your earlier demonstration of the task.
    """

    @extend_schema(
        request=DemonstrationInputSerializer,
        responses={201: DemonstrationSerializer},
        operation_id="tasks_demonstration_submit",
    )
    def post(self, request: Request, task_id: int) -> Response:
        _task_visible(request, task_id)
        data = DemonstrationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        demo = demonstrations.demonstration_submit(
            task_id=task_id,
            annotator=request.user,
            text=data.validated_data["text"],
            edited_from=data.validated_data["edited_from"],
        )
        return Response(DemonstrationSerializer(demo).data, status=status.HTTP_201_CREATED)
