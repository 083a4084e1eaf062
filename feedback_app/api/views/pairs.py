"""Preference pairs export: streamed JSONL in TRL's format, or JSON pages with a cursor."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.common.storable import is_id
from feedback_app.preferences import rows
from feedback_app.preferences.pairs import PairPolicy

from .. import permissions
from ..filters import query_options
from ..pagination import BAD_CURSOR
from ..serializers.pairs import PairFilterSerializer, PairPageSerializer


class PairsApi(APIView):
    """Pairs aggregated from the project's rankings, as TRL's DPOTrainer and RewardTrainer read.

    A thin view over `preferences.rows`, the pipeline snapshots use: the same rankings and
    policy give the same rows. Standard rows (`prompt`, `chosen`, `rejected` as text) unless a
    row the export keeps has a chat prompt; then conversational rows (message lists) throughout.
    Ordered by task, then candidate pair, then feedback pairs.
    """

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # `?format=jsonl|json` is this view's own parameter, not DRF's renderer override.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[PairFilterSerializer],
        responses={
            (200, "application/jsonl"): OpenApiResponse(
                response={"type": "string"},
                description="format=jsonl (default): one JSON row a line, streamed.",
                examples=[
                    OpenApiExample(
                        "standard",
                        value='{"chosen":" 2","prompt":"Name a prime.","rejected":" 4"}\n',
                    )
                ],
            ),
            (200, "application/json"): PairPageSerializer,
        },
        operation_id="projects_pairs_export",
    )
    def get(self, request: Request, project_id: int):
        project = permissions.administered_project(request.user, project_id)
        f = query_options(request, PairFilterSerializer)
        after = 0
        if "cursor" in f:
            if not is_id(f["cursor"]):
                raise ValidationError({"cursor": [BAD_CURSOR]})
            after = int(f["cursor"])
        q = rows.RowQuery(
            policy=PairPolicy(
                min_votes=f["min_votes"],
                min_agreement=f["min_agreement"],
                drop_all_bad=f["drop_all_bad"],
                drop_unsafe=f["drop_unsafe"],
                include_feedback=f["include_feedback"],
                include_edits=f["include_edits"],
                with_margin=f["with_margin"],
                flagged_weight=f["flagged_weight"],
                votes=f["votes"],
                judge_weight=f["judge_weight"],
            ),
            round=f.get("round"),
            model=f.get("model"),
            since=f.get("since"),
            metadata=f["metadata"],
            after_task=after,
        )
        if f["format"] == "json":
            results, last = rows.page(project, q, size=f["page_size"])
            return Response({"results": results, "next": None if last is None else str(last)})
        response = StreamingHttpResponse(
            rows.stream_jsonl(project, q), content_type="application/jsonl"
        )
        response["Content-Disposition"] = f'attachment; filename="pairs-{project.pk}.jsonl"'
        response["X-Accel-Buffering"] = "no"  # let a proxy pass the first bytes on at once
        return response
