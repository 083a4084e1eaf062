"""The rounds report as JSON: per round, rankings, agreement, the policy's evaluation (and in a
head-to-head round the people's win rate beside it) and the reward model's accuracy
(finetuning/rounds_report.py). Admins of the project only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback_app.finetuning.rounds_report import rounds_report

from .. import permissions


class RoundFiguresSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    tasks = serializers.IntegerField()
    rankings = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True, help_text="Pairwise, ties count.")
    selection_rule = serializers.CharField(
        help_text="How the prompts were chosen: reward_margin, random or all."
    )
    selection_pool = serializers.IntegerField(allow_null=True)
    policy = serializers.IntegerField(allow_null=True, help_text="The policy that generated it.")
    policy_name = serializers.CharField()
    win_rate_vs_parent = serializers.FloatField(allow_null=True)
    win_rate_vs_base = serializers.FloatField(allow_null=True)
    kl_to_base = serializers.FloatField(allow_null=True, help_text="Nats per sample.")
    reward_model = serializers.IntegerField(
        allow_null=True, help_text="The reward model trained after this round."
    )
    reward_model_name = serializers.CharField()
    reward_accuracy = serializers.FloatField(allow_null=True, help_text="Held-out pairs.")
    human_win_rate = serializers.FloatField(
        allow_null=True,
        help_text="Head-to-head rounds: the newer policy's win rate over the older in people's "
        "rankings (a ranking counts once); null outside a head-to-head.",
    )
    human_low = serializers.FloatField(allow_null=True, help_text="95 % Wilson interval, low.")
    human_high = serializers.FloatField(allow_null=True, help_text="95 % Wilson interval, high.")
    human_rankings = serializers.IntegerField(help_text="Rankings the human win rate rests on.")
    human_verdict = serializers.CharField(
        help_text="What the autopilot did with it: confirmed, rolled back, unclear, or empty."
    )


class RoundsApi(APIView):
    """Every round of the project, oldest first."""

    @extend_schema(
        responses=serializers.ListSerializer(child=RoundFiguresSerializer()),
        operation_id="projects_rounds",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = permissions.administered_project(request.user, project_id)
        figures = [f.as_dict() for f in rounds_report(project=project)]
        return Response(RoundFiguresSerializer(figures, many=True).data)
