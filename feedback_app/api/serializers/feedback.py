"""Feedback from deployed models (views/feedback.py)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from feedback_app.preferences.models import DeploymentFeedback

from .projects import PROMPT_SCHEMA


class FeedbackInputSerializer(serializers.Serializer):
    """Passed to `feedback_record` as sent; it checks the rules and names the field."""

    kind = serializers.ChoiceField(
        choices=DeploymentFeedback.Kind.choices,
        help_text="thumbs: a rating of one response; choice: one of two responses picked.",
    )
    source = extend_schema_field({"type": "string", "maxLength": 200})(serializers.JSONField())
    prompt = extend_schema_field(PROMPT_SCHEMA)(serializers.JSONField())
    response = extend_schema_field({"type": "string"})(serializers.JSONField(required=False))
    rating = extend_schema_field({"type": "string", "enum": ["up", "down"]})(
        serializers.JSONField(required=False)
    )
    chosen = extend_schema_field({"type": "string"})(serializers.JSONField(required=False))
    rejected = extend_schema_field({"type": "string"})(serializers.JSONField(required=False))
    model_version = extend_schema_field({"type": "integer", "nullable": True})(
        serializers.JSONField(required=False)
    )
    end_user = extend_schema_field({"type": "string"})(serializers.JSONField(required=False))
    metadata = extend_schema_field(OpenApiTypes.OBJECT)(serializers.JSONField(required=False))


class FeedbackSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeploymentFeedback
        fields = [
            "id",
            "project",
            "kind",
            "source",
            "prompt_text",
            "prompt_messages",
            "response",
            "rating",
            "chosen",
            "rejected",
            "model_version",
            "end_user",
            "metadata",
            "created_at",
        ]
        read_only_fields = fields
