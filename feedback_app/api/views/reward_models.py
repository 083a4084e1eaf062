"""A reward model served to other engines (OpenRLHF, verl): `POST .../get_reward`.

The shape is OpenRLHF's `serve_rm.py`: `{"query": [text, ...]}` in, `{"rewards": [float, ...]}`
out, one reward a query in order. Token-authenticated like the rest of the API; the admins of
the version's project (and staff) only (`core.access.reward_models_served_to`). The bounds and
the scoring are `finetuning.reward_serving`'s.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.finetuning import reward_serving

from .. import permissions


class GetRewardInputSerializer(serializers.Serializer):
    query = serializers.ListField(
        child=serializers.CharField(max_length=reward_serving.MAX_QUERY_CHARS),
        max_length=reward_serving.MAX_QUERIES,
        help_text=(
            "Full texts (prompt and response), as OpenRLHF sends them; at most "
            f"{reward_serving.MAX_QUERIES} a request, "
            f"{reward_serving.MAX_QUERY_CHARS} characters each. "
            "Other keys (prompts, labels) are ignored."
        ),
    )


class GetRewardSerializer(serializers.Serializer):
    rewards = serializers.ListField(
        child=serializers.FloatField(), help_text="One reward a query, in order (higher: better)."
    )


class GetRewardApi(APIView):
    """Score texts with a reward model version (OpenRLHF's remote reward shape)."""

    @extend_schema(
        request=GetRewardInputSerializer,
        responses={200: GetRewardSerializer},
        operation_id="reward_models_get_reward",
    )
    def post(self, request: Request, version_id: int) -> Response:
        version = permissions.served_reward_model(request.user, version_id)
        queries = reward_serving.check_queries(request.data)
        return Response({"rewards": reward_serving.reward_scores(version=version, queries=queries)})
