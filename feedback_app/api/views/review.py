"""The review queue (pairs the reward model confidently disagrees with people about) and an
admin's two answers: ask for one more vote on the task, or drop a ranking from datasets."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.storable import in_int64, is_id
from feedback_app.preferences import review

from .. import permissions

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


class ReviewItemSerializer(serializers.Serializer):
    task = serializers.IntegerField(source="task_id")
    prompt = serializers.CharField(source="task.prompt.__str__", help_text="Its start.")
    chosen = serializers.IntegerField(source="chosen_id", help_text="The people's majority.")
    chosen_text = serializers.CharField(source="chosen.text")
    rejected = serializers.IntegerField(source="rejected_id")
    rejected_text = serializers.CharField(source="rejected.text")
    votes_for = serializers.IntegerField(help_text="Votes for `chosen`.")
    votes_against = serializers.IntegerField()
    ties = serializers.IntegerField()
    margin = serializers.FloatField(help_text="reward(rejected) - reward(chosen).")
    reward_model = serializers.IntegerField(source="model_version_id")


class ReviewQueueSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Items in the whole queue.")
    results = ReviewItemSerializer(many=True, help_text="The most confident first.")


class MoreVotesInputSerializer(serializers.Serializer):
    task = serializers.IntegerField()
    reason = serializers.CharField(required=False, allow_blank=True)


class MoreVotesSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    task = serializers.IntegerField(source="task_id")
    target_before = serializers.IntegerField()
    target_after = serializers.IntegerField()
    reason = serializers.CharField()
    requested_by = serializers.IntegerField(source="requested_by_id")
    created_at = serializers.DateTimeField()


class DropInputSerializer(serializers.Serializer):
    ranking = serializers.IntegerField()
    reason = serializers.CharField(required=False, allow_blank=True)


class DropSerializer(serializers.Serializer):
    ranking = serializers.IntegerField(source="ranking_id")
    reason = serializers.CharField()
    dropped_by = serializers.IntegerField(source="dropped_by_id")
    created_at = serializers.DateTimeField()


def _body(request: Request, id_name: str) -> tuple[int, object]:
    """(the id named `id_name`, the reason) from a JSON object body; 400s name the field."""
    data = request.data
    if not isinstance(data, dict):
        raise InvalidInput(
            Problem("body", f'send a JSON object: {{"{id_name}": id, "reason": ""}}')
        )
    value = data.get(id_name)
    if isinstance(value, bool) or not (
        (isinstance(value, int) and value > 0 and in_int64(value))
        or (isinstance(value, str) and is_id(value))
    ):
        raise InvalidInput(Problem(id_name, "must be an id"))
    return int(value), data.get("reason", "")


def _limit(request: Request) -> int:
    values = request.query_params.getlist("limit")
    if not values:
        return DEFAULT_LIMIT
    if len(values) > 1:  # as every list's filters (api/filters.py): a typo, not "the last one"
        raise InvalidInput(Problem("limit", "given more than once"))
    raw = values[0]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= MAX_LIMIT):
        raise InvalidInput(Problem("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))
    return int(raw)


class ReviewQueueApi(APIView):
    """The project's review queue, as the last `review_scores` job stored it (project admins)."""

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description=f"1..{MAX_LIMIT}, default 100")],
        responses={200: ReviewQueueSerializer},
        operation_id="projects_review_list",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        limit = _limit(request)
        items = review.review_items(project=project)
        body = {"count": items.count(), "results": list(items[:limit])}
        return Response(ReviewQueueSerializer(body).data)


class MoreVotesApi(APIView):
    """Ask for one more ranking of a task: its rankings wanted rise by one (recorded)."""

    @extend_schema(
        request=MoreVotesInputSerializer,
        responses={201: MoreVotesSerializer},
        operation_id="projects_review_more_votes",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        task_id, reason = _body(request, "task")
        made = review.task_more_votes(
            project=project, task_id=task_id, by=request.user, reason=reason
        )
        return Response(MoreVotesSerializer(made).data, status=status.HTTP_201_CREATED)


class DropRankingApi(APIView):
    """Drop a ranking from future datasets (recorded with who and why; the ranking is kept)."""

    @extend_schema(
        request=DropInputSerializer,
        responses={201: DropSerializer},
        operation_id="projects_review_drop",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        ranking_id, reason = _body(request, "ranking")
        drop = review.ranking_drop(
            project=project, ranking_id=ranking_id, by=request.user, reason=reason
        )
        return Response(DropSerializer(drop).data, status=status.HTTP_201_CREATED)
