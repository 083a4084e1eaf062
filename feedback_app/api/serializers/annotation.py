"""The annotation workflow: the next task, a ranking, a demonstration, a skip
(views/annotation.py, views/rankings.py)."""

from __future__ import annotations

from string import ascii_uppercase
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from feedback_app.annotation.models import Assignment, Demonstration, Ranking
from feedback_app.annotation.rankings import FLAGS
from feedback_app.annotation.selectors import Progress, candidates_in_display_order


class PromptContentSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    messages = serializers.ListField(child=serializers.DictField(), allow_null=True)


class CandidateShownSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField(help_text="A, B, C ... in display order.")
    text = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    remaining = serializers.IntegerField(help_text="An upper bound (see docs/architecture.md).")


class NextTaskSerializer(serializers.Serializer):
    task = serializers.IntegerField()
    project = serializers.IntegerField()
    round = serializers.IntegerField()
    prompt = PromptContentSerializer()
    candidates = CandidateShownSerializer(many=True, help_text="In this annotator's order.")
    lease_expires_at = serializers.DateTimeField()
    progress = ProgressSerializer()

    @staticmethod
    def payload(assignment: Assignment, progress: Progress) -> dict[str, Any]:
        task = assignment.task
        candidates = candidates_in_display_order(assignment)
        return {
            "task": task.pk,
            "project": task.project_id,
            "round": task.round,
            "prompt": {"text": task.prompt.text, "messages": task.prompt.messages},
            "candidates": [
                {"id": c.pk, "label": ascii_uppercase[i], "text": c.text}
                for i, c in enumerate(candidates)
            ],
            "lease_expires_at": assignment.expires_at,
            "progress": {"done": progress.done, "remaining": progress.remaining},
        }


class RankingInputSerializer(serializers.Serializer):
    """Passed to `ranking_submit` as sent: the one ranking validator checks it there."""

    ranking = extend_schema_field(
        {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer"}},
            "description": "Groups of candidate ids, best first; a group of several is a tie.",
            "example": [[12], [10, 13], [11]],
        }
    )(serializers.JSONField())
    rationale = extend_schema_field({"type": "string"})(
        serializers.JSONField(required=False, default="")
    )
    flags = extend_schema_field({"type": "array", "items": {"type": "string", "enum": FLAGS}})(
        serializers.JSONField(required=False, default=list)
    )


class RankingSerializer(serializers.ModelSerializer):
    ranking = serializers.JSONField(source="groups")
    project = serializers.IntegerField(source="task.project_id")
    round = serializers.IntegerField(source="task.round")
    annotator_username = serializers.CharField(source="annotator.get_username")
    flags = serializers.ListField(child=serializers.ChoiceField(choices=FLAGS))

    class Meta:
        model = Ranking
        fields = [
            "id",
            "task",
            "project",
            "round",
            "annotator",
            "annotator_username",
            "ranking",
            "display_order",
            "rationale",
            "flags",
            "time_spent_ms",
            "created_at",
        ]
        read_only_fields = fields


class SubmittedRankingSerializer(serializers.ModelSerializer):
    """What a submit answers: the same for a repeat of the same payload."""

    ranking = serializers.JSONField(source="groups")
    flags = serializers.ListField(child=serializers.ChoiceField(choices=FLAGS))

    class Meta:
        model = Ranking
        fields = ["id", "task", "ranking", "display_order", "rationale", "flags", "time_spent_ms"]
        read_only_fields = fields


class DemonstrationInputSerializer(serializers.Serializer):
    """Passed to `demonstration_submit` as sent: it checks the text and the candidate."""

    text = extend_schema_field({"type": "string", "description": "The ideal answer."})(
        serializers.JSONField()
    )
    edited_from = extend_schema_field(
        {"type": "integer", "nullable": True, "description": "The candidate edited, or null."}
    )(serializers.JSONField(required=False, default=None))


class DemonstrationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Demonstration
        fields = ["id", "task", "annotator", "text", "edited_from", "created_at", "updated_at"]
        read_only_fields = fields


class SkipResultSerializer(serializers.Serializer):
    task = serializers.IntegerField()
    status = serializers.CharField()
